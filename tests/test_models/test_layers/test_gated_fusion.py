import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad


def build(channels=8):
    return MODELS.build(dict(type='GatedFusion', channels=channels))


@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20), (1, 8, 16, 11)])
def test_output_shape(shape):
    out = build()(torch.randn(shape), torch.randn(shape))
    assert out.shape == shape


def test_every_parameter_gets_grad():
    module = build()
    out = module(torch.randn(2, 8, 9, 12), torch.randn(2, 8, 9, 12))
    assert_every_parameter_gets_grad(module, out)


def test_eval_is_deterministic():
    module = build().eval()
    x1, x2 = torch.randn(1, 8, 11, 9), torch.randn(1, 8, 11, 9)
    with torch.no_grad():
        assert torch.equal(module(x1, x2), module(x1, x2))


def test_equal_inputs_pass_through():
    module = build()
    x = torch.randn(2, 8, 10, 7)
    torch.testing.assert_close(module(x, x.clone()), x)


def test_zero_gate_weights_average_the_inputs():
    module = build()
    for conv in (module.gate_x1, module.gate_x2):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x1, x2 = torch.randn(1, 8, 9, 9), torch.randn(1, 8, 9, 9)
    torch.testing.assert_close(module(x1, x2), (x1 + x2) / 2)


def test_gate_favours_first_input_when_saturated():
    module = build()
    torch.nn.init.zeros_(module.gate_x1.weight)
    torch.nn.init.zeros_(module.gate_x2.weight)
    torch.nn.init.constant_(module.gate_x1.bias, 50.)
    torch.nn.init.zeros_(module.gate_x2.bias)
    x1, x2 = torch.randn(1, 8, 9, 9), torch.randn(1, 8, 9, 9)
    torch.testing.assert_close(module(x1, x2), x1)


@pytest.mark.parametrize('channels', [0, -4, 8.0, None])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match='channels'):
        build(channels)


def test_wrong_input_channels():
    with pytest.raises(ValueError, match='x2 must have 8 channels'):
        build()(torch.randn(1, 8, 9, 9), torch.randn(1, 4, 9, 9))


def test_mismatched_sizes():
    with pytest.raises(ValueError, match='same shape'):
        build()(torch.randn(1, 8, 9, 9), torch.randn(1, 8, 9, 10))
