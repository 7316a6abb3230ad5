import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.necks.hff_neck import HFFNeck
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

LOCAL = (4, 8, 8, 16)
GLOBAL = (8, 8, 12, 16)
OUT = (8, 8, 12, 16)
# Odd and non-square sizes, each stage about half the previous one.
SIZES = ((33, 47), (17, 24), (9, 12), (5, 6))


def pyramid(batch=2, sizes=SIZES):
    local = [torch.randn(batch, c, *s) for c, s in zip(LOCAL, sizes)]
    global_ = [torch.randn(batch, c, *s) for c, s in zip(GLOBAL, sizes)]
    return tuple(local + global_)


def build_neck(**kwargs):
    cfg = dict(
        type='HFFNeck',
        local_channels=list(LOCAL),
        global_channels=list(GLOBAL),
        out_channels=list(OUT),
        reduction=2)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_registered_and_blocks_chained_as_hifuse():
    neck = build_neck()
    assert isinstance(neck, HFFNeck)
    assert len(neck.blocks) == 4
    assert neck.blocks[0].previous_channels is None
    for i in range(1, 4):
        assert neck.blocks[i].previous_channels == OUT[i - 1]
    assert build_neck(reduction=4).blocks[0].global_attention[0].out_channels == 2


def test_shapes_odd_non_square():
    outs = build_neck()(pyramid())
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, c, *s) for c, s in zip(OUT, SIZES)]


def test_each_fused_stage_feeds_the_next():
    neck = build_neck().eval()
    inputs = pyramid()
    first_changed = list(inputs)
    first_changed[0] = inputs[0] + 1.0  # the CNN's first stage only
    last_changed = list(inputs)
    last_changed[4 + 3] = inputs[4 + 3] + 1.0  # the transformer's last stage only
    with torch.no_grad():
        base = neck(inputs)
        changed = neck(first_changed)
        changed_last = neck(last_changed)
    # Stage 0 reaches every deeper stage through the previous inputs...
    for b, c in zip(base, changed):
        assert not torch.allclose(b, c)
    # ...while a deeper stage never reaches a shallower one.
    for b, c in zip(base[:3], changed_last[:3]):
        assert torch.equal(b, c)
    assert not torch.allclose(base[3], changed_last[3])


def test_norm_and_act_cfgs_reach_every_block():
    neck = build_neck(
        norm_cfg=dict(type='GN', num_groups=4),
        act_cfg=dict(type='SiLU'),
        conv_act_cfg=dict(type='LeakyReLU'))
    for block in neck.blocks:
        assert isinstance(block.local_proj[1], torch.nn.GroupNorm)
        assert isinstance(block.irmlp.act, torch.nn.SiLU)
        assert isinstance(block.global_attention[1], torch.nn.LeakyReLU)
    assert [o.shape[1] for o in neck(pyramid())] == list(OUT)


def test_every_parameter_gets_a_gradient():
    neck = build_neck()
    assert_every_parameter_gets_grad(neck, neck(pyramid()))


def test_drop_path_rate_per_stage():
    neck = build_neck(drop_path_rate=[0.0, 0.1, 0.1, 0.2])
    assert isinstance(neck.blocks[0].drop_path, torch.nn.Identity)
    assert [b.drop_path.drop_prob for b in neck.blocks[1:]] == [0.1, 0.1, 0.2]


def test_bad_arguments():
    with pytest.raises(ValueError, match='local_channels'):
        build_neck(local_channels=[])
    with pytest.raises(ValueError, match='global_channels'):
        build_neck(global_channels=[8, 8, 12])
    with pytest.raises(ValueError, match=r'out_channels\[1\]'):
        build_neck(out_channels=[8, 0, 12, 16])
    with pytest.raises(ValueError, match='reduction must be <= min'):
        build_neck(reduction=16)
    with pytest.raises(ValueError, match='drop_path_rate'):
        build_neck(drop_path_rate=[0.1, 0.1])
    with pytest.raises(ValueError, match='drop_path_rate'):
        build_neck(drop_path_rate=1.5)


def test_bad_inputs():
    neck = build_neck()
    with pytest.raises(ValueError, match='8 tensors'):
        neck(pyramid()[:6])
    wrong = list(pyramid())
    wrong[4 + 2] = torch.randn(2, 5, 9, 12)
    with pytest.raises(ValueError, match='transformer stage 2'):
        neck(wrong)
    wrong = list(pyramid())
    wrong[2] = torch.randn(2, 8, 10, 12)
    with pytest.raises(
            ValueError,
            match=r'transformer stage 2\) must have the batch size and spatial size '
            r'of inputs\[2\]'):
        neck(wrong)
    wrong = list(pyramid())
    wrong[1], wrong[5] = torch.randn(2, 8, 34, 24), torch.randn(2, 8, 34, 24)
    with pytest.raises(
            ValueError, match=r'inputs\[1\] \(cnn stage 1\) must .* no larger'):
        neck(wrong)
    wrong = list(pyramid(batch=1))
    wrong[1], wrong[5] = torch.randn(2, 8, 17, 24), torch.randn(2, 8, 17, 24)
    with pytest.raises(
            ValueError, match=r'inputs\[1\] \(cnn stage 1\) must have the batch'):
        neck(wrong)


def tiny_segmentor(decode_head):
    return MODELS.build(
        dict(
            type='EncoderDecoder',
            backbone=dict(
                type='DualBranchBackbone',
                cnn=dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=8),
                transformer=dict(
                    type='MixVisionTransformer',
                    embed_dims=8,
                    num_layers=[1, 1, 1, 1],
                    num_heads=[1, 2, 4, 8],
                    sr_ratios=[4, 2, 1, 1])),
            neck=dict(
                type='HFFNeck',
                local_channels=[8, 16, 32, 64],
                global_channels=[8, 16, 32, 64],
                out_channels=[8, 16, 24, 32],
                reduction=4),
            decode_head=decode_head))


@pytest.mark.parametrize('head', [
    dict(type='UPerHead', pool_scales=(1, 2, 3)),
    dict(type='FPNHead', feature_strides=[4, 8, 16, 32]),
    dict(type='MCAHead', num_heads=4),
])
def test_fused_pyramid_feeds_mmseg_decode_heads(head):
    model = tiny_segmentor(
        dict(
            head,
            in_channels=[8, 16, 24, 32],
            in_index=[0, 1, 2, 3],
            channels=8,
            num_classes=3,
            loss_decode=dict(type='CrossEntropyLoss')))
    x = torch.randn(2, 3, 45, 38)
    logits = model.encode_decode(x, [dict(img_shape=(45, 38))] * 2)
    assert logits.shape == (2, 3, 45, 38)


def test_blocks_do_not_check_the_stages_again(monkeypatch):
    block_calls = count_calls(monkeypatch, 'mmseg_fusion.models.layers.hff_block')
    neck_calls = count_calls(monkeypatch, 'mmseg_fusion.models.necks.hff_neck')
    neck = build_neck()
    assert not any(block.check_inputs for block in neck.blocks)
    neck(pyramid())
    assert len(neck_calls) == 2 * len(LOCAL) and block_calls == []
    wrong = list(pyramid())
    wrong[4 + 2] = torch.randn(2, 5, 9, 12)
    with pytest.raises(ValueError, match='transformer stage 2'):
        neck(wrong)
