import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad


def build(channels=16, num_levels=4):
    return MODELS.build(dict(type='SAFM', channels=channels, num_levels=num_levels))


@pytest.mark.parametrize('shape', [(1, 16, 5, 7), (2, 16, 8, 8), (1, 16, 13, 9),
                                   (1, 16, 2, 3), (1, 16, 1, 1)])
def test_output_shape_any_size(shape):
    """Sizes not divisible by 2**(num_levels - 1), and smaller than it, work."""
    assert build()(torch.randn(shape)).shape == shape


def test_every_parameter_gets_grad():
    block = build()
    assert_every_parameter_gets_grad(block, block(torch.randn(2, 16, 16, 24)))


def test_eval_is_deterministic():
    block = build().eval()
    x = torch.randn(2, 16, 11, 7)
    with torch.no_grad():
        torch.testing.assert_close(block(x), block(x), rtol=0, atol=0)


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
            conv.weight[:, :, 1, 1] = 1
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


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=10, num_levels=4), 'multiple of num_levels'),
    (dict(channels=16, num_levels=0), 'num_levels'),
    (dict(channels=-4), 'channels'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='SAFM', **kwargs))


@pytest.mark.parametrize('shape', [(1, 12, 8, 8), (1, 16, 4, 8, 8), (16, 8, 8)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError):
        build()(torch.randn(shape))
