import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmseg_fusion.models.necks.stage_refine_neck import StageRefineNeck
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

IN_CHANNELS = (8, 16, 32)
SINGLE_INPUT_BLOCKS = [
    dict(type='SAFM'),
    dict(type='MultiFeatureExtraction'),
    dict(type='OSRAttention', num_heads=4),
    dict(type='JointChannelSpatialAttention', reduction=2),
]


@MODELS.register_module(name='StageRefineNeckTestScale', force=True)
class ScaleBlock(nn.Module):
    """Test block: ``scale * x`` with a per-channel scale starting at ``init``."""

    def __init__(self, channels: int, init: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), init))

    def forward(self, x):
        return self.scale * x


@MODELS.register_module(name='StageRefineNeckTestPair', force=True)
class PairBlock(nn.Module):
    """Test block returning ``(x, 2 * x)``, like JointChannelSpatialAttention's pair."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x):
        return x, 2 * x


@MODELS.register_module(name='StageRefineNeckTestShrink', force=True)
class ShrinkBlock(nn.Module):
    """Test block that wrongly halves the channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x):
        return x[:, :x.shape[1] // 2]


def encoder_stages(batch, size):
    encoder = MODELS.build(
        dict(type='UNetEncoder', base_channels=8, num_stages=3, in_channels=1))
    with torch.no_grad():
        return encoder(torch.randn(batch, 1, *size))


def build_neck(**kwargs):
    cfg = dict(
        type='StageRefineNeck',
        in_channels=IN_CHANNELS,
        block_cfg=dict(type='StageRefineNeckTestScale'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_registered_and_one_block_per_selected_stage():
    assert MODELS.get('StageRefineNeck') is StageRefineNeck
    neck = build_neck(stages=(0, 2))
    assert set(neck.blocks.keys()) == {'0', '2'}
    assert neck.blocks['0'].scale.shape[1] == 8
    assert neck.blocks['2'].scale.shape[1] == 32
    assert len(build_neck().blocks) == 3


def test_zero_block_with_residual_returns_the_input():
    stages = encoder_stages(2, (33, 47))
    outs = build_neck(residual=True)(stages)
    assert len(outs) == 3
    for out, x in zip(outs, stages):
        assert torch.equal(out, x)


def test_block_output_replaces_the_stage_without_residual():
    stages = encoder_stages(1, (33, 47))
    outs = build_neck(
        block_cfg=dict(type='StageRefineNeckTestScale', init=3.0), stages=(1, ))(
            stages)
    assert outs[0] is stages[0] and outs[2] is stages[2]
    torch.testing.assert_close(outs[1], 3 * stages[1])


@pytest.mark.parametrize('residual, factor', [(False, 3), (True, 4)])
def test_tuple_output_is_summed(residual, factor):
    stages = encoder_stages(1, (33, 47))
    outs = build_neck(
        block_cfg=dict(type='StageRefineNeckTestPair'), residual=residual)(
            stages)
    for out, x in zip(outs, stages):
        torch.testing.assert_close(out, factor * x)


@pytest.mark.parametrize('block_cfg', SINGLE_INPUT_BLOCKS)
@pytest.mark.parametrize('batch, size, residual', [(1, (33, 47), False),
                                                   (2, (64, 48), True)])
def test_real_blocks_shapes_and_gradients(block_cfg, batch, size, residual):
    neck = build_neck(block_cfg=block_cfg, residual=residual)
    assert all(type(b).__name__ == block_cfg['type'] for b in neck.blocks.values())
    stages = [torch.randn_like(s).requires_grad_() for s in encoder_stages(batch, size)]
    outs = neck(stages)
    assert [o.shape for o in outs] == [s.shape for s in stages]
    assert_every_parameter_gets_grad(neck, outs)
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in stages)


def test_refined_stages_only_get_gradient_through_their_block():
    neck = build_neck(block_cfg=dict(type='SAFM'), stages=(2, ))
    stages = encoder_stages(1, (64, 48))
    outs = neck(stages)
    assert outs[0] is stages[0] and outs[1] is stages[1]
    assert outs[2].shape == stages[2].shape and not torch.equal(outs[2], stages[2])
    assert_every_parameter_gets_grad(neck, outs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=()), 'in_channels'),
    (dict(in_channels=(8, -1)), r'in_channels\[1\] must be a positive int, got -1'),
    (dict(block_cfg='SAFM'), 'block_cfg'),
    (dict(block_cfg=dict(type='NoSuchRefineBlock')), 'NoSuchRefineBlock'),
    (dict(block_cfg=dict(type='SAFM', channels=8)), 'channels'),
    (dict(stages=(3, )), 'stages'),
    (dict(stages=(-1, )), 'stages'),
    (dict(stages=(0, 0)), 'stages'),
    (dict(stages=()), 'stages'),
    (dict(residual='yes'), 'residual'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_neck(**kwargs)


@MODELS.register_module(name='StageRefineNeckTestVolume', force=True)
class VolumeBlock(nn.Module):
    """Test block that is 3-D by default (no spatial_dims in its config)."""
    spatial_dims = 3

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x):
        return x


@pytest.mark.parametrize('block_cfg',
                         [dict(block, spatial_dims=3)
                          for block in SINGLE_INPUT_BLOCKS] +
                         [dict(type='StageRefineNeckTestVolume')])
def test_3d_block_is_refused_at_build_time(block_cfg):
    """The neck is 2-D: a 3-D block could be built but never run."""
    with pytest.raises(
            ValueError,
            match=r'block_cfg must build a 2-D block: '
            r'StageRefineNeck is 2-D and expects spatial_dims=2, got '
            r'spatial_dims=3'):
        build_neck(block_cfg=block_cfg)


def test_invalid_inputs():
    stages = encoder_stages(1, (32, 32))
    neck = build_neck()
    with pytest.raises(ValueError, match='3 stages'):
        neck(stages[:2])
    with pytest.raises(ValueError, match=r'inputs\[1\] must have 16 channels'):
        neck((stages[0], stages[0], stages[2]))
    shrinking = build_neck(block_cfg=dict(type='StageRefineNeckTestShrink'))
    with pytest.raises(ValueError, match='same shape'):
        shrinking(stages)


@pytest.mark.parametrize('block_cfg', SINGLE_INPUT_BLOCKS)
def test_blocks_do_not_check_the_stages_again(monkeypatch, block_cfg):
    neck = build_neck(block_cfg=dict(block_cfg, check_inputs=True))
    assert not any(block.check_inputs for block in neck.blocks.values())
    module = type(neck.blocks['0']).__module__
    block_calls = count_calls(monkeypatch, module)
    neck_calls = count_calls(monkeypatch, 'mmseg_fusion.models.necks.stage_refine_neck')
    neck(encoder_stages(1, (16, 12)))
    assert len(neck_calls) == len(IN_CHANNELS) and block_calls == []
    stages = list(encoder_stages(1, (16, 12)))
    stages[1] = torch.randn(1, 8, 8, 6)
    with pytest.raises(ValueError, match=r'inputs\[1\] must have 16 channels'):
        neck(stages)
