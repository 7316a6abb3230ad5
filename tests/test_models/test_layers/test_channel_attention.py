import pytest
import torch
import torch.nn.functional as F

from mmseg_fusion.models.layers import ChannelAttention
from tests.helpers import assert_every_parameter_gets_grad


def by_hand(module, x, act=torch.relu):
    """x * sigmoid(W2 act(W1 max) + W2 act(W1 mean)), pools over every spatial axis."""
    w1, w2 = module[0].weight.flatten(1), module[2].weight.flatten(1)
    spatial = tuple(range(2, x.dim()))
    pooled = (x.amax(dim=spatial), x.mean(dim=spatial))
    logits = sum(act(v @ w1.T) @ w2.T for v in pooled)
    return x * torch.sigmoid(logits).reshape(*logits.shape, *(1, ) * len(spatial))


@pytest.mark.parametrize('spatial_dims, shape', [(2, (2, 16, 5, 7)),
                                                 (3, (2, 16, 3, 5, 4))])
@pytest.mark.parametrize('act_cfg, act', [(dict(type='ReLU'), torch.relu),
                                          (dict(type='SiLU'), F.silu)])
def test_matches_cbam_by_hand(spatial_dims, shape, act_cfg, act):
    module = ChannelAttention(
        16, reduction=4, act_cfg=act_cfg, spatial_dims=spatial_dims)
    x = torch.randn(shape)
    torch.testing.assert_close(module(x), by_hand(module, x, act))
    assert module.logits(x).shape == shape[:2] + (1, ) * spatial_dims


def test_is_the_mlp_for_state_dict_keys():
    module = ChannelAttention(16)
    assert list(module.state_dict()) == ['0.weight', '2.weight']
    assert module[0].weight.shape == (1, 16, 1, 1)
    assert ChannelAttention(16, spatial_dims=3)[2].weight.shape == (16, 1, 1, 1, 1)


@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_every_parameter_gets_grad(spatial_dims):
    module = ChannelAttention(8, reduction=2, spatial_dims=spatial_dims)
    assert_every_parameter_gets_grad(module,
                                     module(torch.randn(2, 8,
                                                        *(4, ) * spatial_dims)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=8, reduction=16), 'reduction must be <= channels=8'),
    (dict(channels=0), 'channels'),
    (dict(channels=8, reduction=2, spatial_dims=1), 'spatial_dims'),
    (dict(channels=8, reduction=2, act_cfg='ReLU'), 'act_cfg'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelAttention(**kwargs)
