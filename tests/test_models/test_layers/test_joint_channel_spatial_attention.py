import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        depth_reach)


def build(channels=16, reduction=4, kernel_size=7, grid_size=7, **kwargs):
    return MODELS.build(
        dict(
            type='JointChannelSpatialAttention',
            channels=channels,
            reduction=reduction,
            kernel_size=kernel_size,
            grid_size=grid_size,
            **kwargs))


@pytest.mark.parametrize('grid_size', [7, (4, 6)])
@pytest.mark.parametrize('shape', [(1, 16, 9, 13), (2, 16, 20, 8), (1, 16, 3, 3),
                                   (1, 16, 7, 7)])
def test_output_shapes_at_sizes_other_than_grid(grid_size, shape):
    channel_out, spatial_out = build(grid_size=grid_size)(torch.randn(shape))
    assert channel_out.shape == shape and spatial_out.shape == shape


def test_every_parameter_gets_grad():
    block = build()
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 12, 10)))


def test_default_state_dict_keys():
    """The spatial convolution is now the shared SpatialAttention (an nn.Sequential),
    so its keys gained '.0'; the other names are unchanged."""
    assert list(build().state_dict()) == [
        'channel_mlp.0.weight', 'channel_mlp.2.weight', 'spatial_conv.0.weight',
        'spatial_conv.0.bias', 'joint_mlp.0.weight', 'joint_mlp.2.weight'
    ]


def test_checkpoints_with_the_former_keys_load():
    """A state dict saved before the rename ('spatial_conv.weight', '.bias') loads
    strictly and gives the same block."""
    block = build()
    old = {
        k.replace('spatial_conv.0.', 'spatial_conv.'): v.clone() + 1
        for k, v in block.state_dict().items()
    }
    assert 'spatial_conv.weight' in old
    fresh = build()
    fresh.load_state_dict(old, strict=True)
    torch.testing.assert_close(fresh.spatial_conv[0].weight, old['spatial_conv.weight'])
    torch.testing.assert_close(fresh.spatial_conv[0].bias, old['spatial_conv.bias'])


def hand_computation(block, x, act=torch.relu):
    """The reference CBAM variant at x's size == grid_size (pooling and resize are
    identities), with plain matrix products; any spatial_dims."""
    n, c = x.shape[:2]
    spatial = tuple(range(2, x.dim()))
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    ones = (1, ) * len(spatial)

    def mlp(seq, v):
        w1 = seq[0].weight.flatten(1)
        w2 = seq[2].weight.flatten(1)
        return act(v @ w1.T) @ w2.T

    channel_logits = (
        mlp(block.channel_mlp, x.amax(dim=spatial)) +
        mlp(block.channel_mlp, x.mean(dim=spatial)))
    descriptors = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
    weight = block.spatial_conv[0].weight
    spatial_logits = conv(
        descriptors, weight, block.spatial_conv[0].bias,
        padding=weight.shape[-1] // 2).flatten(1)
    joint = mlp(block.joint_mlp, torch.cat([channel_logits, spatial_logits], dim=1))
    channel_weight = torch.sigmoid(joint[:, :c]).reshape(n, c, *ones)
    spatial_weight = torch.sigmoid(joint[:, c:]).reshape(n, 1, *x.shape[2:])
    return x * channel_weight, x * spatial_weight


@pytest.mark.parametrize('act_cfg, act', [(dict(type='ReLU'), torch.relu),
                                          (dict(type='SiLU'), F.silu),
                                          (None, lambda v: v)])
def test_matches_hand_computation_at_grid_size(act_cfg, act):
    block = build(
        channels=8, reduction=2, kernel_size=3, grid_size=(3, 4), act_cfg=act_cfg)
    x = torch.randn(2, 8, 3, 4)
    for got, expected in zip(block(x), hand_computation(block, x, act)):
        torch.testing.assert_close(got, expected)


def test_3d_matches_hand_computation_at_grid_size():
    block = build(
        channels=8, reduction=2, kernel_size=3, grid_size=(2, 3, 4), spatial_dims=3)
    assert block.joint_mlp[0].in_channels == 8 + 2 * 3 * 4
    x = torch.randn(2, 8, 2, 3, 4)
    for got, expected in zip(block(x), hand_computation(block, x)):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize('grid_size', [3, (2, 4, 3)])
@pytest.mark.parametrize('shape', [(2, 16, 4, 9, 7), (1, 16, 1, 3, 3)])
def test_3d_output_shapes(grid_size, shape):
    channel_out, spatial_out = build(
        grid_size=grid_size, spatial_dims=3)(
            torch.randn(shape))
    assert channel_out.shape == shape and spatial_out.shape == shape


def test_3d_every_parameter_gets_grad():
    block = build(kernel_size=3, grid_size=(2, 3, 3), spatial_dims=3)
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 4, 6, 5)))


def test_3d_on_repeated_slices_equals_2d():
    """A (1, gh, gw) grid gives the 2-D joint MLP's width."""
    assert_3d_repeats_2d(
        build(grid_size=(4, 3)),
        build(grid_size=(1, 4, 3), spatial_dims=3), [torch.randn(2, 16, 9, 7)],
        depths=(5, ))


def test_3d_spatial_attention_reaches_across_depth():
    block = build(kernel_size=3, grid_size=(3, 3, 3), spatial_dims=3)
    assert depth_reach(block, [torch.randn(1, 16, 3, 5, 5)]) > 0


def test_weights_are_shared_across_positions_and_channels():
    """At a size other than grid_size, channel_out / x depends on the channel only and
    spatial_out / x on the position only, within (0, 1)."""
    block = build()
    x = torch.rand(2, 16, 10, 13) + 0.5
    channel_out, spatial_out = block(x)
    channel_weight, spatial_weight = channel_out / x, spatial_out / x
    torch.testing.assert_close(channel_weight,
                               channel_weight[:, :, :1, :1].expand_as(channel_weight))
    torch.testing.assert_close(spatial_weight,
                               spatial_weight[:, :1].expand_as(spatial_weight))
    assert 0 < spatial_weight.min() and spatial_weight.max() < 1
    assert spatial_weight[:, 0].flatten(1).std(dim=1).min() > 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=8, reduction=16), 'reduction'),
    (dict(channels=16, kernel_size=4), 'kernel_size'),
    (dict(channels=16, grid_size=0), 'grid_size'),
    (dict(channels=16, grid_size=(3, )), 'grid_size'),
    (dict(channels=0), 'channels'),
    (dict(channels=16, spatial_dims=3, grid_size=(3, 4)), 'grid_size'),
    (dict(channels=16, spatial_dims=1), 'spatial_dims'),
    (dict(channels=16, act_cfg=dict(typ='ReLU')), 'act_cfg'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='JointChannelSpatialAttention', **kwargs))


@pytest.mark.parametrize('shape', [(1, 12, 8, 8), (1, 16, 8), (1, 16, 4, 8, 8)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError):
        build()(torch.randn(shape))


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch, lambda **kw: MODELS.build(
            dict(type='JointChannelSpatialAttention', channels=16, reduction=4, **kw)),
        [torch.randn(1, 16, 7, 6)], [torch.randn(1, 8, 7, 6)],
        'x must have 16 channels')
