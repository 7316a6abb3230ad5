import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.backbones import DNetEncoder
from mmseg_fusion.models.layers import DLKBlock
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

SMALL = dict(widths=(8, 16, 32, 64, 128), depths=(1, 1, 1, 1, 1), salience_channels=8)


def build(**kwargs):
    cfg = dict(type='DNetEncoder', **SMALL)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_registered():
    assert MODELS.get('DNetEncoder') is DNetEncoder


@pytest.mark.parametrize('batch', [1, 2])
def test_small_variant_output_tuple(batch):
    encoder = build(in_channels=2)
    assert encoder.out_channels == (8, 8, 16, 32, 64, 128)
    assert encoder.size_divisor == 32
    outs = encoder(torch.randn(batch, 2, 32, 64, 32))
    assert isinstance(outs, tuple)
    sizes = [(32, 64, 32), (16, 32, 16), (8, 16, 8), (4, 8, 4), (2, 4, 2), (1, 2, 1)]
    assert [tuple(o.shape) for o in outs
            ] == [(batch, c, *s) for c, s in zip(encoder.out_channels, sizes)]


def test_three_stages_and_stem_kernel():
    encoder = build(
        widths=(4, 8, 6), depths=(1, 2, 1), salience_channels=5, stem_kernel=3)
    assert encoder.out_channels == (5, 4, 8, 6)
    assert encoder.size_divisor == 8
    assert encoder.downsamples[0].kernel_size == (3, 3, 3)
    assert [len(stage) for stage in encoder.stages] == [1, 2, 1]
    outs = encoder(torch.randn(1, 1, 8, 16, 24))
    assert [tuple(o.shape) for o in outs] == [(1, 5, 8, 16, 24), (1, 4, 4, 8, 12),
                                              (1, 8, 2, 4, 6), (1, 6, 1, 2, 3)]


def test_every_parameter_gets_grad():
    encoder = build(
        widths=(4, 8, 16), depths=(1, 1, 1), salience_channels=4, layer_scale_init=0.1)
    outs = encoder(torch.randn(2, 1, 8, 8, 16))
    assert_every_parameter_gets_grad(encoder, outs)


def test_drop_path_rises_linearly_over_blocks():
    encoder = build(widths=(4, 8), depths=(2, 3), drop_path_rate=0.4)
    blocks = [m for m in encoder.modules() if isinstance(m, DLKBlock)]
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in blocks]
    assert rates == pytest.approx([0., 0.1, 0.2, 0.3, 0.4])


def test_full_size_parameter_count():
    """Upstream's encoder, counted by hand from its code, has 29,768,220 parameters;
    separate norms/layer scales add 3 * C per block, the salience mixer's own
    BatchNorm adds 2 * 48 and the salience conv drops its bias (48)."""
    encoder = DNetEncoder()
    assert encoder.out_channels == (48, 48, 96, 192, 384, 768)
    widths = (48, 96, 192, 384, 768)
    total = sum(p.numel() for p in encoder.parameters())
    assert total == 29_768_220 + 2 * 3 * sum(widths) + 96 - 48 == 29_777_196


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=0), 'in_channels'),
    (dict(widths=(8, 15)), 'widths'),
    (dict(widths=()), 'widths'),
    (dict(widths=16), 'widths'),
    (dict(depths=(1, 1)), 'depths'),
    (dict(depths=(1, 0, 1, 1, 1)), 'depths'),
    (dict(salience_channels=0), 'salience_channels'),
    (dict(stem_kernel=4), 'stem_kernel'),
    (dict(drop_path_rate=1.), 'drop_path_rate'),
    (dict(layer_scale_init=-1.), 'layer_scale_init'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize('shape, match', [
    ((1, 1, 64, 64), r'3-D model.*got \(1, 1, 64, 64\)'),
    ((1, 3, 32, 32, 32), r'in_channels=1 .*got shape \(1, 3, 32, 32, 32\)'),
    ((1, 1, 32, 48, 33), r'size_divisor=32.*\(32, 64, 64\)'),
])
def test_bad_inputs(shape, match):
    with pytest.raises(ValueError, match=match):
        build()(torch.randn(shape))


def test_blocks_do_not_check_the_input_again(monkeypatch):
    calls = {
        name: count_calls(monkeypatch, f'mmseg_fusion.models.layers.{name}')
        for name in ('salience_layer', 'dlk_block', 'dlk_layer')
    }
    encoder = build(widths=(4, 8), depths=(1, 1), salience_channels=4)
    encoder(torch.randn(1, 1, 4, 4, 4))
    assert calls == {name: [] for name in calls}
    with pytest.raises(ValueError, match='x must have in_channels=1 channels'):
        encoder(torch.randn(1, 2, 4, 4, 4))
