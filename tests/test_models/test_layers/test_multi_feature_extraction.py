import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (NORM_CFGS, assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        assert_norms_are, count_calls,
                                                        depth_reach)


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


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    bn = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    assert list(build(dilations=(2, 3)).state_dict()) == [
        'branches.0.0.weight', *[f'branches.0.1.{k}' for k in bn],
        'branches.1.0.weight', *[f'branches.1.1.{k}' for k in bn],
        'branches.2.0.weight', *[f'branches.2.1.{k}' for k in bn],
        'fusion.squeeze.0.weight', 'fusion.squeeze.1.weight', 'fusion.squeeze.2.weight',
        'fusion.project.0.weight', *[f'fusion.project.1.{k}' for k in bn]
    ]
    assert_norms_are(build(), torch.nn.BatchNorm2d, 5)


@pytest.mark.parametrize('norm_cfg, norm_type', NORM_CFGS)
def test_norm_cfg_builds_and_runs(norm_cfg, norm_type):
    module = build(dilations=(2, ), norm_cfg=norm_cfg).train()
    assert_norms_are(module, norm_type, 3)
    assert module(torch.randn(2, 8, 7, 6)).shape == (2, 8, 7, 6)


def test_activation_follows_act_cfg():
    module = build(act_cfg=dict(type='SiLU'))
    acts = [branch[2] for branch in module.branches] + [module.fusion.project[2]]
    assert all(isinstance(a, torch.nn.SiLU) for a in acts)


@pytest.mark.parametrize('shape', [(2, 8, 3, 5, 4), (1, 8, 6, 9, 7)])
def test_3d_output_shape(shape):
    module = build(spatial_dims=3)
    assert_norms_are(module, torch.nn.BatchNorm3d, 5)
    assert module.branches[1][0].dilation == (2, 2, 2)
    assert module(torch.randn(shape)).shape == shape


def test_3d_every_parameter_gets_grad():
    module = build(dilations=(2, ), spatial_dims=3)
    assert_every_parameter_gets_grad(module, module(torch.randn(2, 8, 4, 5, 4)))


@pytest.mark.parametrize('train', [True, False])
def test_3d_on_repeated_slices_equals_2d(train):
    assert_3d_repeats_2d(
        build(dilations=(2, 3)),
        build(dilations=(2, 3), spatial_dims=3), [torch.randn(2, 8, 7, 6)],
        depths=(5, ),
        train=train)


def test_3d_convolutions_reach_across_depth():
    module = build(dilations=(2, ), spatial_dims=3).eval()
    assert depth_reach(module, [torch.randn(1, 8, 3, 5, 5)]) > 0


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
    (dict(spatial_dims=1), 'spatial_dims'),
    (dict(spatial_dims=3, norm_cfg=dict(type='BN2d')), 'norm_cfg'),
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


def test_check_inputs_switch(monkeypatch):

    def make(**kwargs):
        return MODELS.build(dict(type='MultiFeatureExtraction', channels=8, **kwargs))

    good, bad = torch.randn(1, 8, 9, 7), torch.randn(1, 4, 9, 7)
    assert_check_inputs_switch(monkeypatch, make, [good], [bad],
                               'x must have 8 channels')


def test_fusion_does_not_check_the_branches_again(monkeypatch):
    msf = 'mmseg_fusion.models.layers.multi_scale_selective_fusion'
    fusion_calls = (
        count_calls(monkeypatch, msf) +
        count_calls(monkeypatch, msf, 'check_same_shape'))
    mfe_calls = count_calls(monkeypatch,
                            'mmseg_fusion.models.layers.multi_feature_extraction')
    module = MODELS.build(dict(type='MultiFeatureExtraction', channels=8))
    assert module.fusion.check_inputs is False
    module(torch.randn(1, 8, 9, 7))
    assert len(mfe_calls) == 1 and fusion_calls == []
    with pytest.raises(ValueError, match='x must have 8 channels'):
        module(torch.randn(1, 4, 9, 7))
