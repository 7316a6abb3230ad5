import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        depth_reach)


def build(channels=8, **kwargs):
    return MODELS.build(dict(type='GatedFusion', channels=channels, **kwargs))


@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20), (1, 8, 16, 11)])
def test_output_shape(shape):
    out = build()(torch.randn(shape), torch.randn(shape))
    assert out.shape == shape


def test_every_parameter_gets_grad():
    module = build()
    out = module(torch.randn(2, 8, 9, 12), torch.randn(2, 8, 9, 12))
    assert_every_parameter_gets_grad(module, out)


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    assert list(build().state_dict()) == [
        'gate_x1.weight', 'gate_x1.bias', 'gate_x2.weight', 'gate_x2.bias'
    ]


@pytest.mark.parametrize('shape', [(2, 8, 3, 5, 4), (1, 8, 1, 6, 6)])
def test_3d_output_shape(shape):
    out = build(spatial_dims=3)(torch.randn(shape), torch.randn(shape))
    assert out.shape == shape


def test_3d_every_parameter_gets_grad():
    module = build(spatial_dims=3)
    shape = (2, 8, 3, 5, 4)
    assert_every_parameter_gets_grad(module,
                                     module(torch.randn(shape), torch.randn(shape)))


def test_3d_on_repeated_slices_equals_2d():
    x1, x2 = torch.randn(2, 8, 5, 7), torch.randn(2, 8, 5, 7)
    assert_3d_repeats_2d(build(), build(spatial_dims=3), [x1, x2], depths=(3, 3))


def test_3d_is_pointwise_along_depth():
    """1x1x1 gates: depth 0 of the output does not see depth 1 of the input."""
    shape = (1, 8, 3, 4, 4)
    assert depth_reach(build(spatial_dims=3),
                       [torch.randn(shape), torch.randn(shape)]) == 0


@pytest.mark.parametrize('spatial_dims, shape', [(2, (1, 8, 3, 9, 9)),
                                                 (3, (1, 8, 9, 9))])
def test_rank_must_match_spatial_dims(spatial_dims, shape):
    with pytest.raises(ValueError, match='x1 must be a'):
        build(spatial_dims=spatial_dims)(torch.randn(shape), torch.randn(shape))


@pytest.mark.parametrize('spatial_dims', [1, 4, True, '3'])
def test_bad_spatial_dims(spatial_dims):
    with pytest.raises(ValueError, match='spatial_dims'):
        build(spatial_dims=spatial_dims)


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


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch,
        lambda **kw: MODELS.build(dict(type='GatedFusion', channels=4, **kw)),
        [torch.randn(1, 4, 6, 5), torch.randn(1, 4, 6, 5)],
        [torch.randn(1, 4, 6, 5), torch.randn(1, 3, 6, 5)],
        'x2 must have 4 channels',
        checks=('check_feature_map', 'check_same_shape'))


def gated_fusion_by_hand(module, x1, x2):
    """z = sigmoid(W1 x1 + b1 + W2 x2 + b2), z * x1 + (1 - z) * x2, by einsum."""
    w1 = module.gate_x1.weight.flatten(1)
    w2 = module.gate_x2.weight.flatten(1)
    logits = (
        torch.einsum('oc,nc...->no...', w1, x1) +
        torch.einsum('oc,nc...->no...', w2, x2))
    bias_shape = (1, -1) + (1, ) * (x1.dim() - 2)
    bias = (module.gate_x1.bias + module.gate_x2.bias).view(bias_shape)
    z = torch.sigmoid(logits + bias)
    return z * x1 + (1 - z) * x2


@pytest.mark.parametrize('spatial_dims,shape', [(2, (2, 8, 9, 7)),
                                                (3, (2, 8, 4, 5, 6))])
def test_output_and_input_gradients_equal_the_formula(spatial_dims, shape):
    module = build(spatial_dims=spatial_dims)
    x1 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    module.double()
    out = module(x1, x2)
    expected = gated_fusion_by_hand(module, x1, x2)
    torch.testing.assert_close(out, expected)
    grad = torch.randn(shape, dtype=torch.float64)
    got = torch.autograd.grad(out, (x1, x2), grad)
    want = torch.autograd.grad(expected, (x1, x2), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_autocast_gate_mixes_float32_inputs_in_float32():
    # Under autocast the gate z comes out of the convolutions in bfloat16 while the
    # inputs stay float32: the mix is done in the promoted dtype, as z * x1 would be.
    module = build()
    x1, x2 = torch.randn(1, 8, 6, 6), torch.randn(1, 8, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x1, x2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, gated_fusion_by_hand(module, x1, x2), atol=2e-2, rtol=2e-2)
