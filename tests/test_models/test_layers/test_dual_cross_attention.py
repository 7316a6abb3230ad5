import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from tests.helpers import assert_every_parameter_gets_grad

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


def test_eval_is_deterministic():
    module = build().eval()
    inputs = stages(((20, 28), (10, 14), (5, 7), (3, 4)), batch=2)
    first = module(inputs)
    second = module(inputs)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


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


@pytest.mark.parametrize('kwargs', [dict(spatial_attention=False),
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
