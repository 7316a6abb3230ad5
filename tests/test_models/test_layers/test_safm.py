import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        depth_reach)


def build(channels=16, num_levels=4, **kwargs):
    return MODELS.build(
        dict(type='SAFM', channels=channels, num_levels=num_levels, **kwargs))


@pytest.mark.parametrize('shape', [(1, 16, 5, 7), (2, 16, 8, 8), (1, 16, 13, 9),
                                   (1, 16, 2, 3), (1, 16, 1, 1)])
def test_output_shape_any_size(shape):
    """Sizes not divisible by 2**(num_levels - 1), and smaller than it, work."""
    assert build()(torch.randn(shape)).shape == shape


def test_every_parameter_gets_grad():
    block = build()
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 16, 24)))


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    assert list(build(channels=12, num_levels=3).state_dict()) == [
        'mfr.0.weight', 'mfr.0.bias', 'mfr.1.weight', 'mfr.1.bias', 'mfr.2.weight',
        'mfr.2.bias', 'aggr.weight', 'aggr.bias'
    ]
    assert isinstance(build().act, torch.nn.GELU)


def test_zero_aggregation_gives_zero():
    """out = gelu(aggr(...)) * x and gelu(0) = 0."""
    block = build()
    with torch.no_grad():
        block.aggr.weight.zero_()
        block.aggr.bias.zero_()
    assert block(torch.randn(1, 16, 9, 6)).abs().max() == 0


def _set_identity(block):
    with torch.no_grad():
        for conv in block.mfr:
            conv.weight.zero_()
            conv.weight[(slice(None), slice(None)) + (1, ) * block.spatial_dims] = 1
            conv.bias.zero_()
        block.aggr.weight.copy_(torch.eye(block.channels).reshape_as(block.aggr.weight))
        block.aggr.bias.zero_()


def test_identity_weights_match_hand_computation():
    """With identity convolutions: level 0 gives gelu(x0) * x0; at 5x7 the coarsest
    level (4 levels: 5 // 8 = 0 -> 1) pools to 1x1, i.e. the global max of its group."""
    block = build(channels=4)
    _set_identity(block)
    x = torch.randn(2, 4, 5, 7)
    out = block(x)
    torch.testing.assert_close(out[:, 0], F.gelu(x[:, 0]) * x[:, 0])
    global_max = x[:, 3].amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(out[:, 3], F.gelu(global_max) * x[:, 3])


def test_act_cfg_replaces_gelu():
    """With identity convolutions and no activation, level 0 gives x0 * x0; with
    SiLU, silu(x0) * x0."""
    x = torch.randn(2, 4, 5, 7)
    for act_cfg, act in ((None, lambda v: v), (dict(type='SiLU'), F.silu)):
        block = build(channels=4, act_cfg=act_cfg)
        _set_identity(block)
        torch.testing.assert_close(block(x)[:, 0], act(x[:, 0]) * x[:, 0])


@pytest.mark.parametrize('shape', [(2, 16, 4, 5, 7), (1, 16, 8, 8, 8),
                                   (1, 16, 1, 2, 3)])
def test_3d_output_shape_any_size(shape):
    block = build(spatial_dims=3)
    assert block.aggr.weight.shape == (16, 16, 1, 1, 1)
    assert block(torch.randn(shape)).shape == shape


def test_3d_every_parameter_gets_grad():
    block = build(spatial_dims=3)
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 4, 6, 5)))


def test_3d_identity_weights_match_hand_computation():
    """In 3-D the coarsest level (4 levels, 3x5x7: every axis // 8 -> 1) pools each
    channel of its group to its maximum over the whole volume."""
    block = build(channels=4, spatial_dims=3)
    _set_identity(block)
    x = torch.randn(2, 4, 3, 5, 7)
    out = block(x)
    torch.testing.assert_close(out[:, 0], F.gelu(x[:, 0]) * x[:, 0])
    global_max = x[:, 3].amax(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out[:, 3], F.gelu(global_max) * x[:, 3])


def test_3d_on_repeated_slices_equals_2d():
    assert_3d_repeats_2d(
        build(), build(spatial_dims=3), [torch.randn(2, 16, 9, 6)], depths=(8, ))


def test_3d_convolutions_reach_across_depth():
    assert depth_reach(build(spatial_dims=3), [torch.randn(1, 16, 3, 4, 4)]) > 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=10, num_levels=4), 'multiple of num_levels'),
    (dict(channels=16, num_levels=0), 'num_levels'),
    (dict(channels=-4), 'channels'),
    (dict(channels=16, spatial_dims=2.0), 'spatial_dims'),
    (dict(channels=16, act_cfg='GELU'), 'act_cfg'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='SAFM', **kwargs))


@pytest.mark.parametrize('shape', [(1, 12, 8, 8), (1, 16, 4, 8, 8), (16, 8, 8)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError):
        build()(torch.randn(shape))


def test_check_inputs_switch(monkeypatch):

    def make(**kwargs):
        return MODELS.build(dict(type='SAFM', channels=16, **kwargs))

    good, bad = torch.randn(1, 16, 8, 6), torch.randn(1, 8, 8, 6)
    assert_check_inputs_switch(monkeypatch, make, [good], [bad],
                               'x must have 16 channels')
