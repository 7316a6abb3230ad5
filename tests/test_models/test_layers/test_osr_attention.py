import pytest
import torch
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import (NORM_CFGS, assert_3d_repeats_2d,
                                                        assert_check_inputs_switch,
                                                        assert_norms_are, depth_reach)


def build(**kwargs):
    cfg = dict(type='OSRAttention', channels=16, num_heads=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def randomize_norms(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)


@pytest.mark.parametrize('sr_ratio, size, logits', [
    (2, (7, 7), (49, 16)),
    (2, (9, 5), (45, 15)),
    (3, (6, 10), (60, 12)),
    (1, (5, 3), (15, 15)),
    (4, (1, 1), (1, 1)),
])
def test_output_shape_with_and_without_bias(sr_ratio, size, logits):
    module = build(sr_ratio=sr_ratio).eval()
    x = torch.randn(2, 16, *size)
    assert module(x).shape == x.shape
    same = torch.randn(2, 4, *logits)
    resized = torch.randn(1, 1, 5, 6)
    assert module(x, same).shape == x.shape
    assert module(x, resized).shape == x.shape


@pytest.mark.parametrize('sr_ratio', [1, 2, 3])
def test_every_parameter_gets_grad(sr_ratio):
    module = build(sr_ratio=sr_ratio, attn_drop=0.1).train()
    assert_every_parameter_gets_grad(module, module(torch.randn(2, 16, 8, 7)))


def test_default_state_dict_keys():
    """Checkpoints of the 2-D block keep loading: the parameter names are fixed."""
    bn = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    assert list(build().state_dict()) == [
        'q.weight', 'q.bias', 'kv.weight', 'kv.bias', 'sr.0.weight',
        *[f'sr.1.{k}' for k in bn], 'sr.3.weight', *[f'sr.4.{k}' for k in bn],
        'local_conv.weight', 'local_conv.bias'
    ]
    assert_norms_are(build(), torch.nn.BatchNorm2d, 2)
    assert isinstance(build().sr[2], torch.nn.ReLU)


@pytest.mark.parametrize('norm_cfg, norm_type', NORM_CFGS)
def test_norm_cfg_builds_and_runs(norm_cfg, norm_type):
    module = build(norm_cfg=norm_cfg, act_cfg=dict(type='GELU')).train()
    assert_norms_are(module, norm_type, 2)
    assert isinstance(module.sr[2], torch.nn.GELU)
    assert module(torch.randn(2, 16, 7, 6)).shape == (2, 16, 7, 6)


@pytest.mark.parametrize('sr_ratio, size, logits', [
    (2, (4, 5, 6), (120, 2 * 3 * 3)),
    (1, (2, 3, 2), (12, 12)),
    (3, (1, 1, 1), (1, 1)),
])
def test_3d_output_shape_with_and_without_bias(sr_ratio, size, logits):
    module = build(sr_ratio=sr_ratio, spatial_dims=3).eval()
    x = torch.randn(2, 16, *size)
    assert module(x).shape == x.shape
    assert module(x, torch.randn(2, 4, *logits)).shape == x.shape
    assert module(x, torch.randn(1, 1, 5, 6)).shape == x.shape


@pytest.mark.parametrize('sr_ratio', [1, 2])
def test_3d_every_parameter_gets_grad(sr_ratio):
    module = build(sr_ratio=sr_ratio, spatial_dims=3).train()
    assert_every_parameter_gets_grad(module, module(torch.randn(2, 16, 4, 5, 4)))


@pytest.mark.parametrize('sr_ratio', [1, 2, 3])
@pytest.mark.parametrize('train', [True, False])
def test_3d_on_repeated_slices_equals_2d(sr_ratio, train):
    """Repeated keys split each key's softmax weight into equal shares: same output."""
    assert_3d_repeats_2d(
        build(sr_ratio=sr_ratio),
        build(sr_ratio=sr_ratio, spatial_dims=3), [torch.randn(2, 16, 7, 6)],
        depths=(4, ),
        train=train)


def test_3d_single_voxel_output_is_value_by_hand():
    module = build(sr_ratio=1, spatial_dims=3).eval()
    x = torch.randn(3, 16, 1, 1, 1)
    local = module.local_conv
    reduced = x[:, :, 0, 0, 0] * (1 + local.weight[:, 0, 1, 1, 1]) + local.bias
    kv_weight = module.kv.weight[16:, :, 0, 0, 0]
    expected = reduced @ kv_weight.T + module.kv.bias[16:]
    torch.testing.assert_close(module(x)[:, :, 0, 0, 0], expected)


def test_3d_attention_reaches_across_depth():
    module = build(spatial_dims=3).eval()
    assert depth_reach(module, [torch.randn(1, 16, 3, 4, 4)]) > 0


def test_identity_reduction_has_no_reduction_parameters():
    assert not any(n.startswith('sr.') for n, _ in build(sr_ratio=1).named_parameters())


def test_eval_is_deterministic():
    module = build(attn_drop=0.5).eval()
    x = torch.randn(2, 16, 9, 6)
    torch.testing.assert_close(module(x), module(x), rtol=0, atol=0)


def test_single_pixel_output_is_value_by_hand():
    """1x1 input, no reduction: one key, softmax 1, the output is v, computed here from
    the weights: the 3x3 depthwise convolution sees only its centre tap."""
    module = build(sr_ratio=1).eval()
    x = torch.randn(3, 16, 1, 1)
    local = module.local_conv
    reduced = x[:, :, 0, 0] * (1 + local.weight[:, 0, 1, 1]) + local.bias
    kv_weight = module.kv.weight[16:, :, 0, 0]
    expected = reduced @ kv_weight.T + module.kv.bias[16:]
    torch.testing.assert_close(module(x)[:, :, 0, 0], expected)


def test_single_key_token_gives_value_everywhere():
    """sr_ratio 4 on 4x4: the reduced map is 1x1, so every query gets the one value,
    whatever the bias."""
    module = build(sr_ratio=4).eval()
    randomize_norms(module)
    x = torch.randn(2, 16, 4, 4)
    reduced = module.sr(x)
    assert reduced.shape[2:] == (1, 1)
    value = module.kv(reduced + module.local_conv(reduced))[:, 16:]
    expected = value.expand(-1, -1, 4, 4)
    torch.testing.assert_close(module(x), expected)
    torch.testing.assert_close(module(x, torch.randn(2, 4, 16, 1)), expected)


def test_bias_on_logits_selects_a_key():
    """A large bias on key j for every query makes the output v_j at every pixel."""
    module = build(sr_ratio=1).eval()
    x = torch.randn(1, 16, 2, 3)
    bias = torch.zeros(1, 4, 6, 6)
    bias[..., 4] = 1e4
    value = module.kv(x + module.local_conv(x))[:, 16:].flatten(2)[:, :, 4]
    expected = value[:, :, None, None].expand(-1, -1, 2, 3)
    torch.testing.assert_close(module(x, bias), expected)


@pytest.mark.parametrize('kwargs, name', [
    (dict(num_heads=3), 'num_heads'),
    (dict(channels=0), 'channels'),
    (dict(sr_ratio=0), 'sr_ratio'),
    (dict(attn_drop=1.0), 'attn_drop'),
    (dict(attn_drop=-0.1), 'attn_drop'),
    (dict(qk_scale=0.0), 'qk_scale'),
    (dict(spatial_dims=1), 'spatial_dims'),
    (dict(spatial_dims=3, norm_cfg=dict(type='IN2d')), 'norm_cfg'),
    (dict(act_cfg='ReLU'), 'act_cfg'),
])
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        build(**kwargs)


def test_bad_inputs():
    module = build()
    with pytest.raises(ValueError, match='x must have 16 channels'):
        module(torch.randn(1, 8, 7, 7))
    with pytest.raises(ValueError, match=r'x must be a \(N, C, H, W\)'):
        module(torch.randn(16, 7, 7))
    with pytest.raises(ValueError, match='relative_pos_enc must be'):
        module(torch.randn(1, 16, 7, 7), torch.randn(4, 49, 16))
    with pytest.raises(ValueError, match='relative_pos_enc must be'):
        module(torch.randn(1, 16, 7, 7), torch.randn(1, 3, 49, 16))


def test_check_inputs_switch(monkeypatch):
    assert_check_inputs_switch(
        monkeypatch, lambda **kw: MODELS.build(
            dict(type='OSRAttention', channels=16, num_heads=4, **kw)),
        [torch.randn(1, 16, 8, 7)], [torch.randn(1, 8, 8, 7)],
        'x must have 16 channels')
