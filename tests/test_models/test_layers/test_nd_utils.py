import pytest
import torch
import torch.nn as nn

from mmseg_fusion.models.layers import ChannelsFirstLayerNorm
from mmseg_fusion.models.layers.nd_utils import (adaptive_avg_pool, adaptive_max_pool,
                                                 build_act, build_norm,
                                                 check_block_spatial_dims,
                                                 check_spatial_dims, conv_nd,
                                                 linear_mode, owned_block_cfg)


@pytest.mark.parametrize('spatial_dims, conv, mode', [(2, nn.Conv2d, 'bilinear'),
                                                      (3, nn.Conv3d, 'trilinear')])
def test_ops_follow_spatial_dims(spatial_dims, conv, mode):
    assert conv_nd(spatial_dims) is conv
    assert linear_mode(spatial_dims) == mode
    x = torch.randn(2, 3, *(4, ) * spatial_dims)
    assert adaptive_avg_pool(x, 1).shape == (2, 3, *(1, ) * spatial_dims)
    torch.testing.assert_close(
        adaptive_max_pool(x, 1).flatten(1),
        x.flatten(2).amax(-1))


@pytest.mark.parametrize('value', [1, 4, True, 3.0, '2', None])
def test_check_spatial_dims(value):
    if value in (2, 3) and type(value) is int:
        assert check_spatial_dims(value) == value
    else:
        with pytest.raises(ValueError, match='spatial_dims must be one of'):
            check_spatial_dims(value)


@pytest.mark.parametrize('spatial_dims, cfg, layer', [
    (2, dict(type='BN'), nn.BatchNorm2d),
    (3, dict(type='BN'), nn.BatchNorm3d),
    (3, dict(type='BN3d'), nn.BatchNorm3d),
    (2, dict(type='IN', affine=True), nn.InstanceNorm2d),
    (3, dict(type='IN'), nn.InstanceNorm3d),
    (3, dict(type=nn.BatchNorm3d), nn.BatchNorm3d),
    (3, dict(type='SyncBN'), nn.SyncBatchNorm),
    (3, dict(type='GN', num_groups=2), nn.GroupNorm),
    (3, dict(type='LN'), ChannelsFirstLayerNorm),
])
def test_norm_follows_spatial_dims(spatial_dims, cfg, layer):
    """'BN' and 'IN' take the block's rank; every norm runs on the block's maps."""
    norm = build_norm(cfg, 4, spatial_dims)
    assert isinstance(norm, layer)
    if layer in (nn.BatchNorm2d, nn.BatchNorm3d):
        assert type(norm) is layer
    x = torch.randn(2, 4, *(3, ) * spatial_dims)
    assert norm(x).shape == x.shape


def test_layer_norm_is_over_channels():
    norm = build_norm(dict(type='LN'), 4, 2)
    x = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(norm(x).mean(1), torch.zeros(2, 3, 5), atol=1e-6, rtol=0)
    assert norm.eps == 1e-5  # mmcv's default, as nn.LayerNorm's


def test_none_gives_identity():
    assert isinstance(build_norm(None, 4, 3), nn.Identity)
    assert isinstance(build_act(None), nn.Identity)
    assert isinstance(build_act(dict(type='GELU')), nn.GELU)


@pytest.mark.parametrize('spatial_dims, cfg, match', [
    (3, dict(type='BN2d'), "'BN2d' is a 2-D norm"),
    (2, dict(type='IN3d'), "'IN3d' is a 3-D norm"),
    (2, dict(type='BN1d'), "'BN1d' is a 1-D norm"),
    (3, dict(type=nn.BatchNorm2d), "'BatchNorm2d' is a 2-D norm"),
    (2, dict(type='GN'), 'num_groups'),
    (2, 'BN', 'norm_cfg must be a config dict'),
    (2, dict(eps=1e-3), 'norm_cfg must be a config dict'),
])
def test_bad_norm_cfg(spatial_dims, cfg, match):
    with pytest.raises(ValueError, match=match):
        build_norm(cfg, 4, spatial_dims)


def test_bad_act_cfg():
    with pytest.raises(ValueError, match='act_cfg must be a config dict'):
        build_act('ReLU')


class _Volumetric(nn.Module):
    spatial_dims = 3


def test_check_block_spatial_dims():
    check_block_spatial_dims('skip', dict(type='GatedFusion'), 'Head')
    check_block_spatial_dims('skip', dict(type='X', spatial_dims=2), 'Head')
    check_block_spatial_dims('skip', dict(type='X'), 'Head', block=nn.Identity())
    with pytest.raises(
            ValueError,
            match=r'skip must build a 2-D block: Head is 2-D '
            r'and expects spatial_dims=2, got spatial_dims=3'):
        check_block_spatial_dims('skip', dict(type='X', spatial_dims=3), 'Head')
    with pytest.raises(ValueError, match='got spatial_dims=3'):
        check_block_spatial_dims('skip', dict(type='X'), 'Head', block=_Volumetric())
    check_block_spatial_dims(
        'skip', dict(type='X'), 'Head', expected=3, block=_Volumetric())


def test_owned_block_cfg_turns_off_the_block_input_checks():
    cfg = dict(type='GatedFusion', check_inputs=True)
    assert owned_block_cfg(
        cfg, channels=4) == dict(
            type='GatedFusion', channels=4, check_inputs=False)
    assert cfg == dict(type='GatedFusion', check_inputs=True)
    # A class as the type, and a block without the argument (left as given).
    assert owned_block_cfg(
        dict(type=ChannelsFirstLayerNorm), channels=4) == dict(
            type=ChannelsFirstLayerNorm, channels=4)
    assert owned_block_cfg(dict(type='SAFM'))['check_inputs'] is False
