import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_fusion.models.layers import ChannelsFirstLayerNorm
from tests.helpers import assert_every_parameter_gets_grad


def test_registered():
    assert MODELS.get('ChannelsFirstLayerNorm') is ChannelsFirstLayerNorm
    norm = MODELS.build(dict(type='ChannelsFirstLayerNorm', channels=6))
    assert norm.eps == 1e-6


@pytest.mark.parametrize('shape', [(1, 6, 5), (2, 6, 7, 5), (1, 6, 3, 5, 7),
                                   (2, 6, 2, 3, 2, 3)])
def test_equals_layer_norm_over_channels(shape):
    norm = ChannelsFirstLayerNorm(6, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(shape) * 3 + 1
    expected = F.layer_norm(x.movedim(1, -1), (6, ), norm.weight, norm.bias,
                            1e-5).movedim(-1, 1)
    out = norm(x)
    assert out.shape == shape
    torch.testing.assert_close(out, expected)


def test_matches_hand_computation():
    """Each position is standardised over its channels (biased variance)."""
    norm = ChannelsFirstLayerNorm(4)
    x = torch.randn(2, 4, 3, 5, 2)
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, unbiased=False, keepdim=True)
    torch.testing.assert_close(norm(x), (x - mean) / torch.sqrt(var + 1e-6))


def test_every_parameter_gets_grad():
    norm = ChannelsFirstLayerNorm(4)
    assert_every_parameter_gets_grad(norm, norm(torch.randn(2, 4, 3, 4, 5)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(channels=4, eps=0), 'eps'),
    (dict(channels=4, eps='1e-6'), 'eps'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelsFirstLayerNorm(**kwargs)


@pytest.mark.parametrize('shape, match', [((4, 4), 'rank >= 3'),
                                          ((1, 3, 4, 4, 4), '4 channels')])
def test_bad_inputs(shape, match):
    with pytest.raises(ValueError, match=match):
        ChannelsFirstLayerNorm(4)(torch.randn(shape))
