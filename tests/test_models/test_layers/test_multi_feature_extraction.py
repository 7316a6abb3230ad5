import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad


def build(channels=8, **kwargs):
    return MODELS.build(
        dict(type='MultiFeatureExtraction', channels=channels, **kwargs))


@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20), (1, 8, 24, 17)])
def test_output_shape(shape):
    assert build()(torch.randn(shape)).shape == shape


def test_branches_follow_dilations():
    module = build(dilations=(3, 5))
    dilations = [branch[0].dilation for branch in module.branches]
    assert dilations == [(1, 1), (3, 3), (5, 5)]
    assert module.fusion.num_inputs == 3
    assert module(torch.randn(1, 8, 9, 12)).shape == (1, 8, 9, 12)


def test_every_parameter_gets_grad():
    module = build()
    out = module(torch.randn(2, 8, 12, 9))
    assert_every_parameter_gets_grad(module, out)


def test_eval_is_deterministic():
    module = build().eval()
    x = torch.randn(1, 8, 11, 9)
    with torch.no_grad():
        assert torch.equal(module(x), module(x))


def test_silent_branches_leave_project_of_input():
    module = build().eval()
    for branch in module.branches:
        torch.nn.init.zeros_(branch[1].weight)  # BN gamma and beta 0: branch outputs 0
        torch.nn.init.zeros_(branch[1].bias)
    x = torch.randn(2, 8, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.fusion.project(x))


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=0), 'channels'),
    (dict(dilations=()), 'dilations'),
    (dict(dilations=(2, 0)), 'dilations'),
    (dict(dilations=4), 'dilations'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(dict(type='MultiFeatureExtraction', channels=8), **kwargs))


def test_wrong_input_channels():
    with pytest.raises(ValueError, match='x must have 8 channels'):
        build()(torch.randn(1, 4, 9, 9))


def test_wrong_rank():
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        build()(torch.randn(8, 9, 9))
