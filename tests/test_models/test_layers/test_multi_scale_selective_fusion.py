import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad


def build(channels=8, num_inputs=4):
    return MODELS.build(dict(type='MultiScaleSelectiveFusion', channels=channels,
                             num_inputs=num_inputs))


@pytest.mark.parametrize('num_inputs', [2, 3, 4])
@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20)])
def test_output_shape(num_inputs, shape):
    inputs = [torch.randn(shape) for _ in range(num_inputs)]
    assert build(num_inputs=num_inputs)(*inputs).shape == shape


def test_pairwise_fusion_convention():
    fusion = MODELS.build(dict(dict(type='MultiScaleSelectiveFusion', num_inputs=2),
                               channels=12))
    x1, x2 = torch.randn(1, 12, 9, 14), torch.randn(1, 12, 9, 14)
    assert fusion(x1, x2).shape == x1.shape


def test_every_parameter_gets_grad():
    module = build()
    out = module(*[torch.randn(2, 8, 9, 12) for _ in range(4)])
    assert_every_parameter_gets_grad(module, out)


def test_eval_is_deterministic():
    module = build().eval()
    inputs = [torch.randn(1, 8, 11, 9) for _ in range(4)]
    with torch.no_grad():
        assert torch.equal(module(*inputs), module(*inputs))


def test_identical_inputs_with_zero_squeeze_give_project_of_input():
    module = build().eval()
    for conv in module.squeeze:
        torch.nn.init.zeros_(conv.weight)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(module(x, x, x, x), module.project(x))


def test_zero_squeeze_weights_average_the_inputs():
    module = build(num_inputs=3).eval()
    for conv in module.squeeze:
        torch.nn.init.zeros_(conv.weight)
    inputs = [torch.randn(1, 8, 10, 7) for _ in range(3)]
    with torch.no_grad():
        torch.testing.assert_close(module.weighted_sum(inputs), sum(inputs) / 3)


def test_weights_are_a_per_channel_softmax():
    module = build(channels=2, num_inputs=2)
    with torch.no_grad():
        module.squeeze[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        module.squeeze[1].weight.zero_()
    ones = torch.ones(1, 2, 5, 5)
    # descriptors: input 0 -> sigmoid(1), input 1 -> sigmoid(0); softmax over them
    w0 = torch.softmax(torch.tensor([1.0, 0.0]).sigmoid(), dim=0)[0]
    expected = w0 * ones + (1 - w0) * 3 * ones
    torch.testing.assert_close(module.weighted_sum([ones, 3 * ones]), expected)


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(num_inputs=1), 'num_inputs'),
    (dict(num_inputs=2.0), 'num_inputs'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_wrong_number_of_inputs():
    with pytest.raises(ValueError, match='expected 4 inputs'):
        build()(*[torch.randn(1, 8, 9, 9) for _ in range(3)])


def test_wrong_input_channels():
    inputs = [torch.randn(1, 8, 9, 9) for _ in range(3)] + [torch.randn(1, 6, 9, 9)]
    with pytest.raises(ValueError, match=r'inputs\[3\] must have 8 channels'):
        build()(*inputs)


def test_mismatched_sizes():
    inputs = [torch.randn(1, 8, 9, 9), torch.randn(1, 8, 9, 11)]
    with pytest.raises(ValueError, match='same shape'):
        build(num_inputs=2)(*inputs)
