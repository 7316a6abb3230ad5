import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_fusion.models.layers import DLKBlock  # noqa: F401  (registers it)
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (assert_check_inputs_switch,
                                                        count_calls)


def build(**kwargs):
    cfg = dict(type='DLKBlock', channels=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def upstream_block_parameters(channels, ratio=4):
    """Upstream's count: ONE LayerNorm and ONE layer scale for both halves."""
    c, h, r = channels, channels // 2, ratio * channels
    dlk = c * h + (h * 125 + h) + (h * 343 + h) + (4 * 343 + 2) + c * c
    module = 2 * (c * c + c) + dlk
    mlp = (c * r + r) + (r * 27 + r) + (r * c + c)
    return 2 * c + c + module + mlp


@pytest.mark.parametrize('spatial_dims, shape', [(3, (1, 8, 5, 6, 7)),
                                                 (3, (2, 8, 4, 4, 4)),
                                                 (2, (1, 8, 9, 5))])
def test_output_shape(spatial_dims, shape):
    block = build(spatial_dims=spatial_dims)
    assert block(torch.randn(shape)).shape == shape


@pytest.mark.parametrize('channels', [8, 48])
def test_separate_norms_and_layer_scales(channels):
    """Two LayerNorms and two layer scales: 3 * C parameters more than upstream."""
    block = build(channels=channels)
    assert block.norm1 is not block.norm2
    torch.testing.assert_close(block.layer_scale1, torch.full((channels, ), 1e-6))
    assert block.layer_scale1 is not block.layer_scale2
    assert sum(p.numel() for p in block.parameters()) == (
        upstream_block_parameters(channels) + 3 * channels)


def test_mlp_ratio_sets_hidden_channels():
    block = build(mlp_ratio=2)
    assert block.mlp[0].out_channels == 16
    assert block.mlp[1].groups == 16


def test_every_parameter_gets_grad():
    block = build()
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 8, 4, 5, 3)))


def test_zero_layer_scales_give_identity():
    block = build()
    with torch.no_grad():
        block.layer_scale1.zero_()
        block.layer_scale2.zero_()
    x = torch.randn(1, 8, 3, 4, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)


def test_matches_hand_computation():
    """With unit layer scales: x' = x + proj2(dlk(gelu(proj1(n1)))) + n1, n1 = norm1(x);
    out = x' + fc2(gelu(dw(fc1(norm2(x))))) with norm2 = plain LayerNorm over C."""
    block = build(layer_scale_init=1.)
    with torch.no_grad():
        block.norm1.weight.fill_(2.)
    x = torch.randn(2, 8, 4, 3, 5)

    def layer_norm(t, weight):
        return F.layer_norm(t.movedim(1, -1), (8, ), weight, None, 1e-6).movedim(-1, 1)

    n1 = layer_norm(x, torch.full((8, ), 2.))
    mid = x + block.proj2(block.dlk(F.gelu(block.proj1(n1)))) + n1
    fc1, dw, _, fc2 = block.mlp
    expected = mid + fc2(F.gelu(dw(fc1(layer_norm(mid, None)))))
    torch.testing.assert_close(block(x), expected)


def test_layer_scale_disabled():
    block = build(layer_scale_init=0)
    assert block.layer_scale1 is None and block.layer_scale2 is None
    assert not any('layer_scale' in n for n, _ in block.named_parameters())
    assert block(torch.randn(1, 8, 3, 3, 3)).shape == (1, 8, 3, 3, 3)


def test_drop_path_only_in_training():
    torch.manual_seed(0)
    plain = build(layer_scale_init=1.)
    dropping = build(layer_scale_init=1., drop_path=0.5)
    dropping.load_state_dict(plain.state_dict())
    x = torch.randn(24, 8, 2, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(dropping.eval()(x), plain.eval()(x))
        out = dropping.train()(x)
    unchanged = [torch.equal(o, i) for o, i in zip(out, x)]
    assert any(unchanged) and not all(unchanged)


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(channels=7), 'even'),
    (dict(mlp_ratio=0), 'mlp_ratio'),
    (dict(drop_path=1.), 'drop_path'),
    (dict(drop_path=-0.1), 'drop_path'),
    (dict(layer_scale_init=-1e-6), 'layer_scale_init'),
    (dict(act_cfg='GELU'), 'act_cfg'),
    (dict(spatial_dims=1), 'spatial_dims'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize('shape', [(1, 8, 6, 6), (1, 4, 4, 4, 4)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        build()(torch.randn(shape))


def test_check_inputs_switch(monkeypatch):

    def make(**kwargs):
        return MODELS.build(dict(type='DLKBlock', channels=8, spatial_dims=2, **kwargs))

    good, bad = torch.randn(1, 8, 6, 5), torch.randn(1, 6, 6, 5)
    assert_check_inputs_switch(monkeypatch, make, [good], [bad],
                               'x must have 8 channels')


def test_dlk_layer_does_not_check_x_again(monkeypatch):
    block_calls = count_calls(monkeypatch, 'mmseg_fusion.models.layers.dlk_block')
    layer_calls = count_calls(monkeypatch, 'mmseg_fusion.models.layers.dlk_layer')
    block = MODELS.build(dict(type='DLKBlock', channels=8, spatial_dims=2))
    assert block.dlk.check_inputs is False
    block(torch.randn(1, 8, 6, 5))
    assert len(block_calls) == 1 and layer_calls == []
    with pytest.raises(ValueError, match='x must have 8 channels'):
        block(torch.randn(1, 6, 6, 5))
