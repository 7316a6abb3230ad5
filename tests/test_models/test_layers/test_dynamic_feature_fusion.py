import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (assert_3d_repeats_2d,
                                                        assert_check_inputs_switch)


def build(channels=8, spatial_dims=2):
    return MODELS.build(
        dict(type='DynamicFeatureFusion', channels=channels, spatial_dims=spatial_dims))


@pytest.mark.parametrize('spatial_dims, shape', [
    (2, (1, 8, 7, 5)),
    (2, (2, 8, 16, 12)),
    (3, (1, 8, 5, 6, 7)),
    (3, (2, 8, 4, 4, 4)),
])
def test_output_shape(spatial_dims, shape):
    block = build(spatial_dims=spatial_dims)
    assert block(torch.randn(shape), torch.randn(shape)).shape == shape


@pytest.mark.parametrize('spatial_dims, shape', [(2, (2, 8, 6, 5)),
                                                 (3, (2, 8, 3, 4, 5))])
def test_every_parameter_gets_grad(spatial_dims, shape):
    block = build(spatial_dims=spatial_dims)
    x, skip = torch.randn(shape), torch.randn(shape)
    assert_every_parameter_gets_grad(block, block(x, skip))


def test_default_state_dict_keys():
    """Checkpoints keep loading: the parameter names are fixed."""
    assert list(build().state_dict()) == [
        'conv_atten.weight', 'conv_redu.weight', 'conv1.weight', 'conv1.bias',
        'conv2.weight', 'conv2.bias'
    ]


def test_3d_on_repeated_slices_equals_2d():
    x, skip = torch.randn(2, 8, 6, 5), torch.randn(2, 8, 6, 5)
    assert_3d_repeats_2d(build(), build(spatial_dims=3), [x, skip], depths=(3, 3))


@pytest.mark.parametrize('spatial_dims, shape', [(2, (2, 8, 5, 6)),
                                                 (3, (2, 8, 3, 4, 5))])
def test_matches_hand_computation(spatial_dims, shape):
    """Reduction picks x's channels and the spatial gate is sigmoid(0) = 0.5, so the
    output is 0.5 * x * sigmoid(W_atten @ mean(cat(x, skip)))[:C]."""
    block = build(spatial_dims=spatial_dims)
    channels = shape[1]
    with torch.no_grad():
        block.conv_redu.weight.zero_()
        for c in range(channels):
            block.conv_redu.weight[c, c] = 1
        for conv in (block.conv1, block.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
    x, skip = torch.randn(shape), torch.randn(shape)
    pooled = torch.cat([x, skip], dim=1).flatten(2).mean(-1)
    weight = block.conv_atten.weight.reshape(2 * channels, 2 * channels)
    attention = torch.sigmoid(pooled @ weight.T)[:, :channels]
    expected = 0.5 * x * attention.reshape(*attention.shape, *(1, ) * spatial_dims)
    torch.testing.assert_close(block(x, skip), expected)


def test_skip_changes_output():
    block = build()
    x = torch.randn(1, 8, 6, 6)
    first, second = block(x, torch.randn_like(x)), block(x, torch.randn_like(x))
    assert not torch.allclose(first, second)


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=8, spatial_dims=1), 'spatial_dims'),
    (dict(channels=0), 'channels'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='DynamicFeatureFusion', **kwargs))


@pytest.mark.parametrize(
    'spatial_dims, x_shape, skip_shape',
    [
        (2, (1, 6, 8, 8), (1, 6, 8, 8)),  # wrong channels
        (2, (1, 8, 4, 8, 8), (1, 8, 4, 8, 8)),  # 3-D input to a 2-D block
        (3, (1, 8, 8, 8), (1, 8, 8, 8)),  # 2-D input to a 3-D block
        (2, (1, 8, 8, 8), (1, 8, 8, 6)),  # mismatched sizes
        (2, (1, 8, 8, 8), (1, 4, 8, 8)),  # wrong skip channels
    ])
def test_bad_inputs(spatial_dims, x_shape, skip_shape):
    block = build(spatial_dims=spatial_dims)
    with pytest.raises(ValueError):
        block(torch.randn(x_shape), torch.randn(skip_shape))


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch,
        lambda **kw: MODELS.build(dict(type='DynamicFeatureFusion', channels=4, **kw)),
        [torch.randn(1, 4, 6, 5), torch.randn(1, 4, 6, 5)],
        [torch.randn(1, 4, 6, 5), torch.randn(1, 4, 6, 4)],
        'same shape',
        checks=('check_feature_map', 'check_same_shape'))
