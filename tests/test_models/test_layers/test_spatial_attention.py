import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg_fusion.models.layers import SpatialAttention
from tests.helpers import assert_every_parameter_gets_grad


def randomize_norm(norm):
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)


@pytest.mark.parametrize('spatial_dims, shape', [(2, (2, 6, 5, 7)),
                                                 (3, (2, 6, 3, 5, 4))])
def test_matches_cbam_by_hand(spatial_dims, shape):
    """x * sigmoid(BN(conv([max_C x, mean_C x]))), BN with running statistics."""
    module = SpatialAttention(kernel_size=3, spatial_dims=spatial_dims).eval()
    randomize_norm(module[1])
    x = torch.randn(shape)
    conv = F.conv2d if spatial_dims == 2 else F.conv3d
    descriptors = torch.stack([x.amax(1), x.mean(1)], dim=1)
    logits = conv(descriptors, module[0].weight, padding=1)
    norm = module[1]
    logits = ((logits - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) *
              norm.weight + norm.bias)
    torch.testing.assert_close(module(x), x * torch.sigmoid(logits))
    assert type(norm) is (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)


def test_state_dict_keys():
    bn = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    assert list(
        SpatialAttention().state_dict()) == ['0.weight', *[f'1.{k}' for k in bn]]
    assert list(SpatialAttention(bias=True,
                                 norm_cfg=None).state_dict()) == ['0.weight', '0.bias']


def test_a_bare_convolution_state_loads():
    """A state saved from the convolution alone ('weight', 'bias') loads into it."""
    module = SpatialAttention(kernel_size=3, bias=True, norm_cfg=None)
    conv = nn.Conv2d(2, 1, 3, padding=1)
    module.load_state_dict(conv.state_dict(), strict=True)
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(
        module.logits(x),
        conv(torch.cat([x.amax(1, True), x.mean(1, True)], 1)))


def test_group_norm_gets_one_group():
    module = SpatialAttention(norm_cfg=dict(type='GN', num_groups=8)).train()
    assert isinstance(module[1], nn.GroupNorm) and module[1].num_groups == 1
    assert module(torch.randn(2, 4, 6, 6)).shape == (2, 4, 6, 6)


@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_every_parameter_gets_grad(spatial_dims):
    module = SpatialAttention(kernel_size=3, bias=True, spatial_dims=spatial_dims)
    assert_every_parameter_gets_grad(module,
                                     module(torch.randn(2, 4,
                                                        *(4, ) * spatial_dims)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(kernel_size=4), 'kernel_size must be odd'),
    (dict(kernel_size=0), 'kernel_size'),
    (dict(spatial_dims=1), 'spatial_dims'),
    (dict(spatial_dims=3, norm_cfg=dict(type='BN2d')), 'norm_cfg'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatialAttention(**kwargs)
