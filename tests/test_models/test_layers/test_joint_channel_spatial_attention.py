import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad


def build(channels=16, reduction=4, kernel_size=7, grid_size=7):
    return MODELS.build(
        dict(type='JointChannelSpatialAttention', channels=channels,
             reduction=reduction, kernel_size=kernel_size, grid_size=grid_size))


@pytest.mark.parametrize('grid_size', [7, (4, 6)])
@pytest.mark.parametrize('shape', [(1, 16, 9, 13), (2, 16, 20, 8), (1, 16, 3, 3),
                                   (1, 16, 7, 7)])
def test_output_shapes_at_sizes_other_than_grid(grid_size, shape):
    channel_out, spatial_out = build(grid_size=grid_size)(torch.randn(shape))
    assert channel_out.shape == shape and spatial_out.shape == shape


def test_every_parameter_gets_grad():
    block = build()
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 12, 10)))


def test_eval_is_deterministic():
    block = build().eval()
    x = torch.randn(2, 16, 11, 9)
    with torch.no_grad():
        for a, b in zip(block(x), block(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_matches_hand_computation_at_grid_size():
    """At H, W == grid_size the pooling and resize are identities: the reference CBAM
    variant, computed here with plain matrix products."""
    block = build(channels=8, reduction=2, kernel_size=3, grid_size=(3, 4))
    x = torch.randn(2, 8, 3, 4)

    def mlp(seq, v):
        w1 = seq[0].weight.flatten(1)
        w2 = seq[2].weight.flatten(1)
        return torch.relu(v @ w1.T) @ w2.T

    channel_logits = (mlp(block.channel_mlp, x.amax(dim=(2, 3))) +
                      mlp(block.channel_mlp, x.mean(dim=(2, 3))))
    descriptors = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
    spatial_logits = F.conv2d(descriptors, block.spatial_conv.weight,
                              block.spatial_conv.bias, padding=1).flatten(1)
    joint = mlp(block.joint_mlp, torch.cat([channel_logits, spatial_logits], dim=1))
    channel_weight = torch.sigmoid(joint[:, :8]).reshape(2, 8, 1, 1)
    spatial_weight = torch.sigmoid(joint[:, 8:]).reshape(2, 1, 3, 4)

    channel_out, spatial_out = block(x)
    torch.testing.assert_close(channel_out, x * channel_weight)
    torch.testing.assert_close(spatial_out, x * spatial_weight)


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
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='JointChannelSpatialAttention', **kwargs))


@pytest.mark.parametrize('shape', [(1, 12, 8, 8), (1, 16, 8)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError):
        build()(torch.randn(shape))
