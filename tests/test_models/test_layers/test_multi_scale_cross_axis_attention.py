import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.layers import ChannelsFirstLayerNorm
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import assert_check_inputs_switch


def build(channels=8, **kwargs):
    return MODELS.build(
        dict(type='MultiScaleCrossAxisAttention', channels=channels, **kwargs))


@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20), (1, 8, 24, 17)])
@pytest.mark.parametrize('norm_with_bias', [True, False])
def test_output_shape(shape, norm_with_bias):
    module = build(num_heads=4, norm_with_bias=norm_with_bias)
    assert module(torch.randn(shape)).shape == shape


def test_structure_follows_arguments():
    module = build(num_heads=2, kernel_sizes=(3, 5), norm_with_bias=False)
    assert [c.kernel_size for c in module.x_axis_convs] == [(1, 3), (1, 5)]
    assert [c.kernel_size for c in module.y_axis_convs] == [(3, 1), (5, 1)]
    assert [name for name, _ in module.norm.named_parameters()] == ['weight']
    norm = build().norm
    assert isinstance(norm, ChannelsFirstLayerNorm) and norm.eps == 1e-5
    assert not any('temperature' in name for name, _ in module.named_parameters())


@pytest.mark.parametrize('norm_with_bias', [True, False])
def test_every_parameter_gets_grad(norm_with_bias):
    module = build(num_heads=2, norm_with_bias=norm_with_bias)
    out = module(torch.randn(2, 8, 11, 9))
    assert_every_parameter_gets_grad(module, out)


def test_default_state_dict_keys():
    """Checkpoints keep loading: the parameter names are fixed."""
    assert list(build(kernel_sizes=(3, 5)).state_dict()) == [
        'norm.weight', 'norm.bias', 'x_axis_convs.0.weight', 'x_axis_convs.0.bias',
        'x_axis_convs.1.weight', 'x_axis_convs.1.bias', 'y_axis_convs.0.weight',
        'y_axis_convs.0.bias', 'y_axis_convs.1.weight', 'y_axis_convs.1.bias',
        'project_out.weight', 'project_out.bias'
    ]
    assert list(build(kernel_sizes=(3, ), norm_with_bias=False).state_dict()) == [
        'norm.weight', 'x_axis_convs.0.weight', 'x_axis_convs.0.bias',
        'y_axis_convs.0.weight', 'y_axis_convs.0.bias', 'project_out.weight',
        'project_out.bias'
    ]


def test_bias_free_norm_by_hand():
    """Restormer's BiasFree norm: x / sqrt(var_C(x) + 1e-5) * weight, no mean."""
    norm = build(norm_with_bias=False).norm
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 8, 5, 6) + 3
    var = x.var(1, keepdim=True, unbiased=False)
    torch.testing.assert_close(
        norm(x), x / torch.sqrt(var + 1e-5) * norm.weight[:, None, None])


@pytest.mark.parametrize('spatial_dims', [3, 1])
def test_volumes_are_refused(spatial_dims):
    """The cross-axis attention is defined on the two axes of an image."""
    with pytest.raises(ValueError, match=r'spatial_dims must be 2.*2-D only'):
        build(spatial_dims=spatial_dims)
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        build()(torch.randn(1, 8, 4, 9, 9))


def test_zero_projection_returns_input():
    module = build(num_heads=4)
    torch.nn.init.zeros_(module.project_out.weight)
    torch.nn.init.zeros_(module.project_out.bias)
    x = torch.randn(2, 8, 9, 13)
    torch.testing.assert_close(module(x), x)


def test_hand_computed_case():
    # Kernel-1 strips (x axis weight 1, y axis weight 2, no bias) and an identity
    # projection make the x-axis map n(x) and the y-axis map 2 n(x), n the layer norm.
    # With one head, rows take queries from the y-axis map and keys/values from the
    # x-axis map; columns the other way round.
    module = build(channels=4, num_heads=1, kernel_sizes=(1, ))
    with torch.no_grad():
        module.x_axis_convs[0].weight.fill_(1.)
        module.y_axis_convs[0].weight.fill_(2.)
        module.x_axis_convs[0].bias.zero_()
        module.y_axis_convs[0].bias.zero_()
        module.project_out.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        module.project_out.bias.zero_()
    x = torch.randn(1, 4, 5, 6)
    mean = x.mean(1, keepdim=True)
    normed = (x - mean) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)

    def attend(query, key_value):  # (L, D) tokens
        q = torch.nn.functional.normalize(query, dim=-1)
        k = torch.nn.functional.normalize(key_value, dim=-1)
        return torch.softmax(q @ k.T, dim=-1) @ key_value + q

    rows = normed[0].permute(1, 2, 0).reshape(5, 6 * 4)  # a token per row: (w c)
    cols = normed[0].permute(2, 1, 0).reshape(6, 5 * 4)  # a token per column: (h c)
    rows = attend(2 * rows, rows).reshape(5, 6, 4).permute(2, 0, 1)
    cols = attend(cols, 2 * cols).reshape(6, 5, 4).permute(2, 1, 0)
    torch.testing.assert_close(module(x)[0], rows + cols + x[0])


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(num_heads=3), 'num_heads'),
    (dict(num_heads=0), 'num_heads'),
    (dict(kernel_sizes=(7, 10)), 'kernel_sizes'),
    (dict(kernel_sizes=()), 'kernel_sizes'),
    (dict(kernel_sizes=7), 'kernel_sizes'),
    (dict(norm_with_bias='WithBias'), 'norm_with_bias'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(
            dict(dict(type='MultiScaleCrossAxisAttention', channels=8), **kwargs))


def test_wrong_input_channels():
    with pytest.raises(ValueError, match='x must have 8 channels'):
        build()(torch.randn(1, 16, 9, 9))


@pytest.mark.parametrize('size', [5, 257])
@pytest.mark.parametrize('dim', [-1, -2])
def test_merged_strip_conv_equals_the_separate_convolutions(size, dim):
    """The summed kernel, as a banded matrix product (axes up to 256) or as one
    convolution (longer axes), gives the sum of the per-kernel-size convolutions."""
    from mmseg_fusion.models.layers.multi_scale_cross_axis_attention import (
        _merged_strip_kernel, _strip_conv)
    module = build(channels=4, num_heads=2, kernel_sizes=(1, 3, 7))
    convs = module.x_axis_convs if dim == -1 else module.y_axis_convs
    shape = (2, 4, 3, size) if dim == -1 else (2, 4, size, 3)
    x = torch.randn(shape)
    expected = sum(conv(x) for conv in convs)
    got = _strip_conv(x, *_merged_strip_kernel(convs), dim=dim)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch, lambda **kw: MODELS.build(
            dict(
                type='MultiScaleCrossAxisAttention',
                channels=8,
                num_heads=2,
                kernel_sizes=(3, 5),
                **kw)), [torch.randn(1, 8, 6, 5)], [torch.randn(1, 4, 6, 5)],
        'x must have 8 channels')
