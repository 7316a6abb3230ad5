import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (NORM_CFGS, assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        assert_norms_are)


def build(channels=8, num_inputs=4, **kwargs):
    return MODELS.build(
        dict(
            type='MultiScaleSelectiveFusion',
            channels=channels,
            num_inputs=num_inputs,
            **kwargs))


@pytest.mark.parametrize('num_inputs', [2, 3, 4])
@pytest.mark.parametrize('shape', [(2, 8, 9, 9), (1, 8, 13, 20)])
def test_output_shape(num_inputs, shape):
    inputs = [torch.randn(shape) for _ in range(num_inputs)]
    assert build(num_inputs=num_inputs)(*inputs).shape == shape


def test_pairwise_fusion_convention():
    fusion = MODELS.build(
        dict(dict(type='MultiScaleSelectiveFusion', num_inputs=2), channels=12))
    x1, x2 = torch.randn(1, 12, 9, 14), torch.randn(1, 12, 9, 14)
    assert fusion(x1, x2).shape == x1.shape


def test_every_parameter_gets_grad():
    module = build()
    out = module(*[torch.randn(2, 8, 9, 12) for _ in range(4)])
    assert_every_parameter_gets_grad(module, out)


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    assert list(build(num_inputs=2).state_dict()) == [
        'squeeze.0.weight', 'squeeze.1.weight', 'project.0.weight', 'project.1.weight',
        'project.1.bias', 'project.1.running_mean', 'project.1.running_var',
        'project.1.num_batches_tracked'
    ]
    assert_norms_are(build(), torch.nn.BatchNorm2d, 1)
    assert isinstance(build().project[2], torch.nn.ReLU)


@pytest.mark.parametrize('norm_cfg, norm_type', NORM_CFGS)
def test_norm_cfg_builds_and_runs(norm_cfg, norm_type):
    module = build(num_inputs=2, norm_cfg=norm_cfg).train()
    assert_norms_are(module, norm_type, 1)
    inputs = [torch.randn(2, 8, 5, 6) for _ in range(2)]
    assert module(*inputs).shape == (2, 8, 5, 6)


def test_no_norm_and_other_activation():
    """norm_cfg=None, act_cfg=SiLU: project is silu(conv(weighted sum))."""
    module = build(num_inputs=2, norm_cfg=None, act_cfg=dict(type='SiLU'))
    assert_norms_are(module, None, 0)
    inputs = [torch.randn(2, 8, 5, 6) for _ in range(2)]
    expected = F.silu(F.conv2d(module.weighted_sum(inputs), module.project[0].weight))
    torch.testing.assert_close(module(*inputs), expected)


@pytest.mark.parametrize('shape', [(2, 8, 3, 5, 4), (2, 8, 1, 1, 1)])
def test_3d_output_shape(shape):
    module = build(num_inputs=3, spatial_dims=3)
    assert_norms_are(module, torch.nn.BatchNorm3d, 1)
    assert module(*[torch.randn(shape) for _ in range(3)]).shape == shape


def test_3d_every_parameter_gets_grad():
    module = build(spatial_dims=3)
    inputs = [torch.randn(2, 8, 3, 5, 4) for _ in range(4)]
    assert_every_parameter_gets_grad(module, module(*inputs))


@pytest.mark.parametrize('train', [True, False])
def test_3d_on_repeated_slices_equals_2d(train):
    inputs = [torch.randn(2, 8, 5, 7) for _ in range(3)]
    assert_3d_repeats_2d(
        build(num_inputs=3),
        build(num_inputs=3, spatial_dims=3),
        inputs,
        depths=(4, 4, 4),
        train=train)


@pytest.mark.parametrize('spatial_dims, norm_cfg', [
    (3, dict(type='BN2d')),
    (2, dict(type='BN3d')),
    (3, dict(type=torch.nn.BatchNorm2d)),
])
def test_norm_of_the_other_rank_is_refused(spatial_dims, norm_cfg):
    with pytest.raises(ValueError, match='norm_cfg type .* is a .-D norm'):
        build(spatial_dims=spatial_dims, norm_cfg=norm_cfg)


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
    (dict(spatial_dims=1), 'spatial_dims'),
    (dict(norm_cfg='BN'), 'norm_cfg'),
    (dict(act_cfg=dict(inplace=True)), 'act_cfg'),
    (dict(norm_cfg=dict(type='GN')), 'num_groups'),
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


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch,
        lambda **kw: MODELS.build(
            dict(type='MultiScaleSelectiveFusion', channels=4, num_inputs=2, **kw)),
        [torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)],
        [torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 4)],
        'same shape',
        checks=('check_feature_map', 'check_same_shape'))


def test_number_of_inputs_is_checked_always():
    module = MODELS.build(
        dict(type='MultiScaleSelectiveFusion', channels=4, check_inputs=False))
    with pytest.raises(ValueError, match='expected 4 inputs'):
        module(torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5))
