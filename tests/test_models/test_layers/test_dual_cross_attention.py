import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (NORM_CFGS,
                                                        assert_check_inputs_switch,
                                                        assert_norms_are, depth_reach,
                                                        lift_2d_to_3d, repeat_depth)

CHANNELS = (8, 16, 16, 32)


def build(**kwargs):
    cfg = dict(type='DualCrossAttention', in_channels=CHANNELS, patch_size=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def stages(sizes, batch=1, channels=CHANNELS):
    return [torch.randn(batch, c, h, w) for c, (h, w) in zip(channels, sizes)]


@pytest.mark.parametrize('sizes', [
    ((32, 32), (16, 16), (8, 8), (4, 4)),
    ((40, 56), (20, 28), (10, 14), (5, 7)),
    ((33, 33), (17, 17), (9, 9), (5, 5)),
    ((3, 5), (2, 2), (1, 1), (1, 3)),
])
def test_output_shapes_match_inputs(sizes):
    module = build().eval()
    inputs = stages(sizes)
    outputs = module(inputs)
    assert isinstance(outputs, tuple)
    assert [o.shape for o in outputs] == [x.shape for x in inputs]


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(channel_attention=False),
    dict(spatial_attention=False),
    dict(num_blocks=2, channel_heads=(2, 2, 4, 8), spatial_heads=(8, 4, 2, 1)),
])
def test_every_parameter_gets_grad(kwargs):
    module = build(**kwargs).train()
    outputs = module(stages(((40, 56), (20, 28), (10, 14), (5, 7)), batch=2))
    assert_every_parameter_gets_grad(module, outputs)


def test_only_used_modules_are_built():
    both = build()
    channel_only = build(spatial_attention=False)
    spatial_only = build(channel_attention=False)
    assert not any('spatial' in n for n, _ in channel_only.named_parameters())
    assert not any('channel' in n for n, _ in spatial_only.named_parameters())
    assert num_params(channel_only) < num_params(both)
    assert num_params(spatial_only) < num_params(both)


def test_paper_setting_parameter_count():
    module = MODELS.build(
        dict(type='DualCrossAttention', in_channels=(32, 64, 128, 256)))
    # The reference DCA's count at the paper's U-Net setting (patch 28, heads 1 and 4).
    assert num_params(module) == 110560


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    proj = [
        f'{p}.{k}' for p in ('q_proj', 'k_proj', 'v_proj', 'out_proj')
        for k in ('weight', 'bias')
    ]
    assert list(build(in_channels=(8, )).state_dict()) == [
        'token_projs.0.weight', 'token_projs.0.bias', 'blocks.0.channel_norms.0.weight',
        'blocks.0.channel_norms.0.bias',
        *[f'blocks.0.channel_attns.0.{p}' for p in proj],
        'blocks.0.spatial_norms.0.weight', 'blocks.0.spatial_norms.0.bias',
        *[f'blocks.0.spatial_attns.0.{p}'
          for p in proj], 'out_convs.0.weight', 'out_convs.0.bias',
        'out_norms.0.weight', 'out_norms.0.bias', 'out_norms.0.running_mean',
        'out_norms.0.running_var', 'out_norms.0.num_batches_tracked'
    ]
    assert_norms_are(build(), torch.nn.BatchNorm2d, 4)


@pytest.mark.parametrize('norm_cfg, norm_type', NORM_CFGS)
def test_norm_cfg_builds_and_runs(norm_cfg, norm_type):
    module = build(norm_cfg=norm_cfg, act_cfg=dict(type='SiLU')).train()
    assert_norms_are(module, norm_type, 4)
    assert all(isinstance(a, torch.nn.SiLU) for a in module.out_acts)
    inputs = stages(((16, 12), (8, 6), (4, 3), (2, 2)), batch=2)
    assert [o.shape for o in module(inputs)] == [x.shape for x in inputs]


def stages_3d(sizes, batch=1, channels=CHANNELS):
    return [torch.randn(batch, c, *size) for c, size in zip(channels, sizes)]


@pytest.mark.parametrize('patch_size', [2, (1, 3, 2)])
@pytest.mark.parametrize('sizes', [
    ((8, 16, 16), (4, 8, 8), (2, 4, 4), (1, 2, 2)),
    ((5, 9, 7), (3, 5, 4), (2, 3, 2), (1, 1, 1)),
])
def test_3d_output_shapes_match_inputs(patch_size, sizes):
    module = build(patch_size=patch_size, spatial_dims=3).eval()
    assert_norms_are(module, torch.nn.BatchNorm3d, 4)
    inputs = stages_3d(sizes)
    assert [o.shape for o in module(inputs)] == [x.shape for x in inputs]


@pytest.mark.parametrize(
    'kwargs',
    [dict(), dict(channel_attention=False),
     dict(spatial_attention=False)])
def test_3d_every_parameter_gets_grad(kwargs):
    module = build(patch_size=(2, 3, 2), spatial_dims=3, **kwargs).train()
    outputs = module(stages_3d(((4, 8, 6), (2, 4, 3), (2, 2, 2), (1, 1, 1)), batch=2))
    assert_every_parameter_gets_grad(module, outputs)


@pytest.mark.parametrize('train', [True, False])
def test_3d_on_repeated_slices_equals_2d(train):
    """With a (1, p, p) token grid the 3-D tokens are the 2-D ones, so on stages that
    repeat an image along D the output repeats the 2-D output."""
    block_2d, block_3d = build(), build(patch_size=(1, 4, 4), spatial_dims=3)
    lift_2d_to_3d(block_2d, block_3d)
    block_2d.train(train)
    block_3d.train(train)
    inputs = stages(((20, 28), (10, 14), (5, 7), (3, 4)), batch=2)
    depths = (4, 3, 2, 1)
    expected = block_2d(inputs)
    got = block_3d([repeat_depth(x, d) for x, d in zip(inputs, depths)])
    for e, g, d in zip(expected, got, depths):
        torch.testing.assert_close(g, repeat_depth(e, d), rtol=1e-5, atol=1e-5)


def test_3d_tokens_reach_across_depth():
    module = build(in_channels=(8, ), patch_size=(2, 2, 2), spatial_dims=3).eval()
    assert depth_reach(lambda x: module([x]), [torch.randn(1, 8, 2, 4, 4)]) > 0


def test_zero_up_convs_give_bn_relu_of_input():
    module = build().eval()
    with torch.no_grad():
        for conv, norm in zip(module.out_convs, module.out_norms):
            conv.weight.zero_()
            conv.bias.zero_()
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
    inputs = stages(((40, 56), (20, 28), (10, 14), (5, 7)))
    for x, out, norm in zip(inputs, module(inputs), module.out_norms):
        expected = F.relu((x - norm.running_mean[:, None, None]) /
                          torch.sqrt(norm.running_var[:, None, None] + norm.eps) *
                          norm.weight[:, None, None] + norm.bias[:, None, None])
        torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('kwargs',
                         [dict(spatial_attention=False),
                          dict(channel_attention=False)])
def test_stages_attend_to_each_other(kwargs):
    module = build(**kwargs).eval()
    inputs = stages(((16, 16), (8, 8), (4, 4), (2, 2)))
    changed = list(inputs)
    changed[3] = inputs[3] + torch.randn_like(inputs[3])
    before, after = module(inputs), module(changed)
    assert not torch.allclose(before[0], after[0])


@pytest.mark.parametrize('kwargs, name', [
    (dict(channel_attention=False, spatial_attention=False), 'spatial_attention'),
    (dict(in_channels=()), 'in_channels'),
    (dict(in_channels=(8, 0, 16, 32)), 'in_channels[1]'),
    (dict(patch_size=0), 'patch_size'),
    (dict(patch_size=(4, 4, 4)), 'patch_size'),
    (dict(patch_size=(4, 4), spatial_dims=3), 'patch_size'),
    (dict(spatial_dims=1), 'spatial_dims'),
    (dict(norm_cfg=dict(type='BN3d')), 'norm_cfg'),
    (dict(num_blocks=0), 'num_blocks'),
    (dict(channel_heads=(1, 1, 1)), 'channel_heads'),
    (dict(spatial_heads=(4, 4, 4, 4, 4)), 'spatial_heads'),
    (dict(spatial_heads=(4, 4, 4, 3)), 'spatial_heads[3]'),
    (dict(in_channels=(4, 8), spatial_heads=(4, 8)), 'spatial_heads[1]'),
])
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name.replace('[', r'\[').replace(']', r'\]')):
        build(**kwargs)


def test_unused_heads_are_not_checked_for_divisibility():
    module = build(in_channels=(6, 10), spatial_attention=False)
    outputs = module(stages(((8, 8), (4, 4)), channels=(6, 10)))
    assert [o.shape[1] for o in outputs] == [6, 10]


def test_bad_inputs():
    module = build()
    sizes = ((16, 16), (8, 8), (4, 4), (2, 2))
    with pytest.raises(ValueError, match='4 tensors'):
        module(stages(sizes)[:3])
    with pytest.raises(ValueError, match='4 tensors'):
        module(torch.randn(4, 8, 16, 16))
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 16 channels'):
        module(stages(sizes, channels=(8, 16, 12, 32)))
    with pytest.raises(ValueError, match=r'inputs\[0\] must be a \(N, C, H, W\)'):
        module([torch.randn(8, 16, 16)] + stages(sizes)[1:])
    with pytest.raises(ValueError, match='one batch size'):
        module(stages(sizes)[:3] + stages(sizes[3:], batch=2, channels=(32, )))


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch,
        lambda **kw: MODELS.build(
            dict(type='DualCrossAttention', in_channels=(4, 8), patch_size=2, **kw)),
        [[torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]],
        [[torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)]],
        r'inputs\[1\] must have 8 channels',
        checks=('check_feature_map', 'check_same_batch_size'))
