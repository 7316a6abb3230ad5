import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (NORM_CFGS, assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        assert_norms_are, depth_reach)


def build(previous_channels=None, out_channels=8, **kwargs):
    cfg = dict(
        type='HFFBlock',
        local_channels=8,
        global_channels=12,
        inter_channels=8,
        out_channels=out_channels,
        reduction=4,
        previous_channels=previous_channels)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('size', [(8, 8), (7, 5), (2, 3)])
def test_output_shape_without_previous(size):
    block = build(out_channels=10)
    out = block(torch.randn(1, 8, *size), torch.randn(1, 12, *size))
    assert out.shape == (1, 10, *size)


@pytest.mark.parametrize(
    'size, previous_size',
    [
        ((8, 8), (16, 16)),  # HiFuse: exactly twice
        ((7, 5), (14, 10)),
        ((7, 5), (13, 9)),  # odd sizes: adaptive pooling
        ((6, 9), (6, 9)),  # same size
    ])
def test_output_shape_with_previous(size, previous_size):
    block = build(previous_channels=4)
    out = block(
        torch.randn(2, 8, *size), torch.randn(2, 12, *size),
        torch.randn(2, 4, *previous_size))
    assert out.shape == (2, 8, *size)


def test_irmlp_convolution_is_depthwise():
    """The reference drops ``group``; here IRMLP's 3x3 has one filter per channel."""
    block = build()
    assert block.irmlp.dwconv.weight.shape == (8 + 12 + 8, 1, 3, 3)


def test_only_the_selected_path_is_built():
    assert not hasattr(build(), 'previous_proj')
    assert build(previous_channels=4).fuse_norm.channels == 3 * 8


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    bn = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    assert list(build(previous_channels=4).state_dict()) == [
        'local_attention.0.weight', *[f'local_attention.1.{k}' for k in bn],
        'global_attention.0.weight', 'global_attention.2.weight', 'local_proj.0.weight',
        'local_proj.0.bias', *[f'local_proj.1.{k}' for k in bn], 'global_proj.0.weight',
        'global_proj.0.bias', *[f'global_proj.1.{k}'
                                for k in bn], 'previous_proj.0.weight',
        'previous_proj.0.bias', *[f'previous_proj.1.{k}'
                                  for k in bn], 'fuse_norm.weight', 'fuse_norm.bias',
        'fuse_proj.0.weight', 'fuse_proj.0.bias', *[f'fuse_proj.1.{k}'
                                                    for k in bn], 'norm.weight',
        'norm.bias', 'irmlp.dwconv.weight', *[f'irmlp.norm.{k}' for k in bn],
        'irmlp.fc1.weight', 'irmlp.fc2.weight', *[f'irmlp.out_norm.{k}' for k in bn]
    ]
    assert_norms_are(build(previous_channels=4), torch.nn.BatchNorm2d, 7)


@pytest.mark.parametrize('norm_cfg, norm_type', NORM_CFGS)
def test_norm_cfg_builds_and_runs(norm_cfg, norm_type):
    """GroupNorm on the one-channel spatial-attention map gets one group."""
    block = build(previous_channels=4, norm_cfg=norm_cfg).train()
    assert_norms_are(block, norm_type, 7)
    if norm_type is torch.nn.GroupNorm:
        assert block.local_attention[1].num_groups == 1
        assert block.local_proj[1].num_groups == 2
    out = block(
        torch.randn(2, 8, 6, 5), torch.randn(2, 12, 6, 5), torch.randn(2, 4, 12, 10))
    assert out.shape == (2, 8, 6, 5)


def test_activations_follow_act_cfgs():
    block = build(
        previous_channels=4,
        act_cfg=dict(type='SiLU'),
        conv_act_cfg=dict(type='LeakyReLU'))
    assert isinstance(block.act, torch.nn.SiLU)
    assert isinstance(block.irmlp.act, torch.nn.SiLU)
    assert isinstance(block.global_attention[1], torch.nn.LeakyReLU)
    assert isinstance(block.previous_proj[2], torch.nn.LeakyReLU)
    default = build(previous_channels=4)
    assert isinstance(default.act, torch.nn.GELU)
    assert isinstance(default.global_attention[1], torch.nn.ReLU)
    assert isinstance(default.previous_proj[2], torch.nn.ReLU)


@pytest.mark.parametrize('size, previous_size', [((4, 8, 8), (8, 16, 16)),
                                                 ((3, 7, 5), (5, 13, 9)),
                                                 ((1, 2, 3), (1, 2, 3))])
def test_3d_output_shape(size, previous_size):
    block = build(previous_channels=4, spatial_dims=3)
    assert_norms_are(block, torch.nn.BatchNorm3d, 7)
    assert block.irmlp.dwconv.weight.shape == (28, 1, 3, 3, 3)
    out = block(
        torch.randn(2, 8, *size), torch.randn(2, 12, *size),
        torch.randn(2, 4, *previous_size))
    assert out.shape == (2, 8, *size)
    assert build(
        out_channels=10, spatial_dims=3)(torch.randn(2, 8, *size),
                                         torch.randn(2, 12,
                                                     *size)).shape == (2, 10, *size)


@pytest.mark.parametrize('previous_channels', [None, 4])
def test_3d_every_parameter_gets_grad(previous_channels):
    block = build(previous_channels=previous_channels, spatial_dims=3).eval()
    inputs = [torch.randn(2, 8, 3, 6, 5), torch.randn(2, 12, 3, 6, 5)]
    if previous_channels:
        inputs.append(torch.randn(2, 4, 6, 12, 10))
    assert_every_parameter_gets_grad(block, block(*inputs))


@pytest.mark.parametrize('train', [True, False])
def test_3d_on_repeated_slices_equals_2d(train):
    inputs = [
        torch.randn(2, 8, 6, 5),
        torch.randn(2, 12, 6, 5),
        torch.randn(2, 4, 12, 10)
    ]
    assert_3d_repeats_2d(
        build(previous_channels=4),
        build(previous_channels=4, spatial_dims=3),
        inputs,
        depths=(3, 3, 6),
        train=train)


def test_3d_zeroed_mlp_leaves_the_pooled_previous_stage():
    block = build(previous_channels=4, spatial_dims=3).eval()
    with torch.no_grad():
        block.irmlp.out_norm.weight.zero_()
        block.irmlp.out_norm.bias.zero_()
        previous = torch.randn(2, 4, 6, 12, 10)
        out = block(torch.randn(2, 8, 3, 6, 5), torch.randn(2, 12, 3, 6, 5), previous)
        expected = F.avg_pool3d(block.previous_proj(previous), 2)
    torch.testing.assert_close(out, expected)


def test_3d_attention_reaches_across_depth():
    block = build(spatial_dims=3).eval()
    assert depth_reach(block, [torch.randn(1, 8, 3, 4, 4),
                               torch.randn(1, 12, 3, 4, 4)]) > 0


@pytest.mark.parametrize('previous_channels', [None, 4])
def test_every_parameter_gets_grad(previous_channels):
    block = build(previous_channels=previous_channels)
    inputs = [torch.randn(2, 8, 6, 5), torch.randn(2, 12, 6, 5)]
    if previous_channels:
        inputs.append(torch.randn(2, 4, 12, 10))
    # Train mode: every parameter is used (DDP needs a gradient for each).
    block(*inputs).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    # Eval mode: the reference's conv biases before BatchNorm (and the fusion
    # LayerNorm's bias) cancel out of a training-mode batch norm, so check non-zero
    # gradients here.
    block.eval()
    assert_every_parameter_gets_grad(block, block(*inputs))


def test_eval_is_deterministic():
    block = build(previous_channels=4, drop_path_rate=0.5).eval()
    inputs = (torch.randn(2, 8, 5, 5), torch.randn(2, 12, 5,
                                                   5), torch.randn(2, 4, 10, 10))
    with torch.no_grad():
        torch.testing.assert_close(block(*inputs), block(*inputs), rtol=0, atol=0)


def test_zeroed_mlp_leaves_the_pooled_previous_stage():
    """out = shortcut + IRMLP(...); with IRMLP's last BatchNorm zeroed, the output is
    the previous stage's projection average-pooled 2x2 (the reference's shortcut)."""
    block = build(previous_channels=4).eval()
    with torch.no_grad():
        block.irmlp.out_norm.weight.zero_()
        block.irmlp.out_norm.bias.zero_()
        previous = torch.randn(2, 4, 12, 10)
        out = block(torch.randn(2, 8, 6, 5), torch.randn(2, 12, 6, 5), previous)
        expected = F.avg_pool2d(block.previous_proj(previous), 2)
    torch.testing.assert_close(out, expected)
    assert expected.abs().max() > 0


def test_zeroed_mlp_without_previous_gives_zero():
    block = build().eval()
    with torch.no_grad():
        block.irmlp.out_norm.weight.zero_()
        block.irmlp.out_norm.bias.zero_()
        out = block(torch.randn(1, 8, 6, 5), torch.randn(1, 12, 6, 5))
    assert out.abs().max() == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(previous_channels=4, out_channels=10), 'out_channels'),
    (dict(reduction=16), 'reduction'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(local_channels=0), 'local_channels'),
    (dict(previous_channels=0), 'previous_channels'),
    (dict(spatial_dims=4), 'spatial_dims'),
    (dict(conv_act_cfg=dict(inplace=True)), 'conv_act_cfg'),
    (dict(norm_cfg=dict(type='BN3d')), 'norm_cfg'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize(
    'previous_channels, shapes',
    [
        (None, [(1, 6, 8, 8), (1, 12, 8, 8)]),  # wrong local channels
        (None, [(1, 8, 8, 8), (1, 8, 8, 8)]),  # wrong global channels
        (None, [(1, 8, 8, 8), (1, 12, 8, 6)]),  # mismatched sizes
        (None, [(1, 8, 8, 8), (1, 12, 8, 8), (1, 4, 16, 16)]),  # unexpected previous
        (4, [(1, 8, 8, 8), (1, 12, 8, 8)]),  # missing previous
        (4, [(1, 8, 8, 8), (1, 12, 8, 8), (1, 6, 16, 16)]),  # wrong previous channels
        (4, [(1, 8, 8, 8), (1, 12, 8, 8), (1, 4, 4, 4)]),  # previous smaller
        (None, [(1, 8, 2, 8, 8), (1, 12, 2, 8, 8)]),  # volumes into a 2-D block
    ])
def test_bad_inputs(previous_channels, shapes):
    block = build(previous_channels=previous_channels)
    with pytest.raises(ValueError):
        block(*[torch.randn(s) for s in shapes])


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch, build,
        [torch.randn(1, 8, 6, 5), torch.randn(1, 12, 6, 5)],
        [torch.randn(1, 8, 6, 5), torch.randn(1, 12, 6, 4)], 'global_feat must be')


def test_previous_given_iff_built_with_it_is_checked_always():
    block = build(check_inputs=False)
    with pytest.raises(ValueError, match='previous must be given if and only if'):
        local, global_ = torch.randn(1, 8, 6, 5), torch.randn(1, 12, 6, 5)
        block(local, global_, torch.randn(1, 8, 6, 5))
