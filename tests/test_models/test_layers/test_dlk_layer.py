import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_fusion.models.layers import DLKLayer  # noqa: F401  (registers it)
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import assert_check_inputs_switch


def build(channels=8, spatial_dims=3):
    return MODELS.build(
        dict(type='DLKLayer', channels=channels, spatial_dims=spatial_dims))


def make_branches_hand_computable(layer, small_gain=1., large_gain=2.):
    """proj keeps the first C/2 channels; the depthwise kernels become centre taps, so
    x1 = small_gain * x[:, :C/2] and x2 = large_gain * x1."""
    half = layer.channels // 2
    with torch.no_grad():
        layer.proj.weight.zero_()
        for c in range(half):
            layer.proj.weight[c, c] = 1
        for conv, gain in ((layer.dw_conv1, small_gain), (layer.dw_conv2, large_gain)):
            conv.weight.zero_()
            centre = tuple(k // 2 for k in conv.kernel_size)
            conv.weight[(slice(None), 0) + centre] = gain
            conv.bias.zero_()


@pytest.mark.parametrize('spatial_dims, shape', [(3, (1, 8, 5, 6, 7)),
                                                 (3, (2, 8, 4, 4, 4)),
                                                 (2, (1, 8, 7, 5))])
def test_output_shape(spatial_dims, shape):
    assert build(spatial_dims=spatial_dims)(torch.randn(shape)).shape == shape


def test_parameters_match_upstream_layout():
    """1x1 C -> C/2 (no bias), depthwise 5^3 and 7^3 (bias), 7^3 conv 2 -> 2, 1x1 C -> C
    (no bias)."""
    layer = build(channels=48)
    assert layer.dw_conv2.dilation == (3, 3, 3)
    assert layer.dw_conv2.padding == (9, 9, 9)
    expected = 48 * 24 + (24 * 125 + 24) + (24 * 343 + 24) + (4 * 343 + 2) + 48 * 48
    assert sum(p.numel() for p in layer.parameters()) == expected


def test_every_parameter_gets_grad():
    layer = build()
    assert_every_parameter_gets_grad(layer, layer(torch.randn(2, 8, 5, 4, 6)))


def test_spatial_selection_weights_each_branch_with_its_own_map():
    """Constant spatial maps sigmoid(b0), sigmoid(b1) and a channel gate sigmoid(0) =
    0.5: out = 0.5 * cat(sigmoid(b0) * x1, sigmoid(b1) * x2) + x."""
    layer = build()
    make_branches_hand_computable(layer)
    biases = torch.tensor([0.7, -1.3])
    with torch.no_grad():
        layer.spatial_select.weight.zero_()
        layer.spatial_select.bias.copy_(biases)
        layer.channel_select.weight.zero_()
    x = torch.randn(2, 8, 4, 5, 3)
    x1 = x[:, :4]
    w0, w1 = torch.sigmoid(biases)
    expected = 0.5 * torch.cat([w0 * x1, w1 * 2 * x1], dim=1) + x
    torch.testing.assert_close(layer(x), expected)


def test_spatial_selection_uses_mean_and_max_over_branches():
    """The maps are sigmoid(conv7(cat(mean_C, max_C))) of cat(x1, x2), per voxel."""
    layer = build()
    make_branches_hand_computable(layer, small_gain=1., large_gain=-0.5)
    with torch.no_grad():
        layer.channel_select.weight.zero_()
    x = torch.randn(1, 8, 6, 5, 7)
    x1 = x[:, :4]
    branches = torch.cat([x1, -0.5 * x1], dim=1)
    descriptor = torch.stack([branches.mean(1), branches.max(1).values], dim=1)
    maps = torch.sigmoid(
        F.conv3d(
            descriptor,
            layer.spatial_select.weight,
            layer.spatial_select.bias,
            padding=3))
    expected = 0.5 * torch.cat([maps[:, :1] * x1, maps[:, 1:] * -0.5 * x1], 1) + x
    torch.testing.assert_close(layer(x), expected)


def test_channel_attention_from_global_average():
    """With both spatial maps at sigmoid(0) = 0.5, the channel gate is
    sigmoid(W @ mean(s)) of the selected features s = 0.5 * cat(x1, x2)."""
    layer = build()
    make_branches_hand_computable(layer)
    with torch.no_grad():
        layer.spatial_select.weight.zero_()
        layer.spatial_select.bias.zero_()
    x = torch.randn(2, 8, 3, 4, 5)
    selected = 0.5 * torch.cat([x[:, :4], 2 * x[:, :4]], dim=1)
    gate = torch.sigmoid(
        selected.flatten(2).mean(-1) @ layer.channel_select.weight.reshape(8, 8).T)
    torch.testing.assert_close(layer(x), selected * gate[..., None, None, None] + x)


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(channels=7), 'even'),
    (dict(channels=8, spatial_dims=1), 'spatial_dims'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='DLKLayer', **kwargs))


@pytest.mark.parametrize('shape', [(1, 8, 6, 6), (1, 6, 4, 4, 4)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        build()(torch.randn(shape))


def test_check_inputs_switch(monkeypatch):

    def make(**kwargs):
        return MODELS.build(dict(type='DLKLayer', channels=8, spatial_dims=2, **kwargs))

    good, bad = torch.randn(1, 8, 6, 5), torch.randn(1, 6, 6, 5)
    assert_check_inputs_switch(monkeypatch, make, [good], [bad],
                               'x must have 8 channels')
