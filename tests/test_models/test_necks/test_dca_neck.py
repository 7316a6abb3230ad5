import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.necks.dca_neck import DCANeck
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

CHANNELS = (4, 8, 8, 16, 16)
# Odd and non-square stage sizes, as a 37 x 50 image gives through 2x2 max pooling.
SIZES = ((37, 50), (18, 25), (9, 12), (4, 6), (2, 3))
# The paper's U-Net (k = 0.5) and the DCA overhead it states (8.64 M -> 8.75 M).
PAPER_CHANNELS = [32, 64, 128, 256, 512]
PAPER_OVERHEAD = 0.11e6


def stages(batch=2, channels=CHANNELS, sizes=SIZES):
    return tuple(torch.randn(batch, c, *s) for c, s in zip(channels, sizes))


def build_neck(**kwargs):
    cfg = dict(type='DCANeck', in_channels=list(CHANNELS), patch_size=5)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_registered_and_default_in_index_skips_the_bottleneck():
    neck = build_neck()
    assert isinstance(neck, DCANeck)
    assert neck.in_index == (0, 1, 2, 3)
    assert neck.dca.in_channels == CHANNELS[:4]


def test_shapes_odd_non_square_and_bottleneck_passes_through():
    neck = build_neck()
    inputs = stages()
    outs = neck(inputs)
    assert isinstance(outs, tuple)
    assert [o.shape for o in outs] == [x.shape for x in inputs]
    assert outs[4] is inputs[4]
    for out, x in zip(outs[:4], inputs[:4]):
        assert not torch.allclose(out, x)


def test_selected_stages_only():
    neck = build_neck(in_index=[1, 3], channel_heads=[2, 2], spatial_heads=[4, 4])
    inputs = stages()
    outs = neck(inputs)
    assert neck.dca.in_channels == (8, 16)
    for i in (0, 2, 4):
        assert outs[i] is inputs[i]
    for i in (1, 3):
        assert outs[i].shape == inputs[i].shape
        assert not torch.allclose(outs[i], inputs[i])


def test_dca_arguments_reach_the_block():
    neck = build_neck(num_blocks=2, spatial_attention=False)
    assert len(neck.dca.blocks) == 2
    assert neck.dca.blocks[0].spatial_attns is None
    assert neck.dca.patch_size == 5


def test_norm_and_act_cfg_reach_the_block():
    neck = build_neck(norm_cfg=dict(type='SyncBN'), act_cfg=dict(type='SiLU'))
    assert all(isinstance(n, torch.nn.SyncBatchNorm) for n in neck.dca.out_norms)
    assert all(isinstance(a, torch.nn.SiLU) for a in neck.dca.out_acts)
    default = build_neck()
    assert all(type(n) is torch.nn.BatchNorm2d for n in default.dca.out_norms)
    assert all(isinstance(a, torch.nn.ReLU) for a in default.dca.out_acts)


def test_every_parameter_gets_a_gradient():
    neck = build_neck(num_blocks=2)
    assert_every_parameter_gets_grad(neck, neck(stages()))


def test_input_gradient_reaches_every_selected_stage():
    neck = build_neck()
    inputs = tuple(x.requires_grad_() for x in stages())
    outs = neck(inputs)
    outs[0].pow(2).mean().backward()
    # Stage 0's output attends to every selected stage, not to the bottleneck.
    for x in inputs[:4]:
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert inputs[4].grad is None


@pytest.mark.parametrize('in_index', [[], [0, 0], [2, 1], [5], [-1], (0, True)])
def test_bad_in_index(in_index):
    with pytest.raises(ValueError, match='in_index'):
        build_neck(in_index=in_index)


def test_bad_in_channels_and_heads():
    with pytest.raises(ValueError, match='in_channels'):
        build_neck(in_channels=[])
    with pytest.raises(ValueError, match='in_channels'):
        build_neck(in_channels=[4, 0, 8])
    with pytest.raises(ValueError, match='spatial_heads'):
        build_neck(spatial_heads=[3, 3, 3, 3])
    with pytest.raises(ValueError, match='channel_heads'):
        build_neck(channel_heads=[1, 1])


def test_bad_inputs():
    neck = build_neck()
    with pytest.raises(ValueError, match='5 stages'):
        neck(stages()[:4])
    with pytest.raises(ValueError, match='5 stages'):
        neck(torch.randn(1, 4, 8, 8))
    wrong = list(stages())
    wrong[2] = torch.randn(2, 5, 9, 12)
    with pytest.raises(ValueError, match=r'inputs\[2\]'):
        neck(wrong)


def build_paper_unet(with_dca):
    model = dict(
        type='EncoderDecoder',
        backbone=dict(type='UNetEncoder', base_channels=32, num_stages=5),
        decode_head=dict(
            type='UNetHead',
            in_channels=PAPER_CHANNELS,
            channels=32,
            num_classes=2,
            out_channels=1,
            threshold=0.5,
            loss_decode=dict(type='DiceLoss', use_sigmoid=True)))
    if with_dca:
        model['neck'] = dict(type='DCANeck', in_channels=PAPER_CHANNELS, patch_size=28)
    return MODELS.build(model)


def test_overhead_on_the_paper_unet_is_011m():
    overhead = num_params(build_paper_unet(True)) - num_params(build_paper_unet(False))
    assert abs(overhead - PAPER_OVERHEAD) <= 0.02 * PAPER_OVERHEAD, overhead


def test_paper_unet_with_dca_at_224_keeps_the_stage_shapes():
    neck = MODELS.build(dict(type='DCANeck', in_channels=PAPER_CHANNELS))
    encoder = MODELS.build(dict(type='UNetEncoder', base_channels=32, num_stages=5))
    with torch.no_grad():
        feats = encoder(torch.randn(1, 3, 224, 224))
        outs = neck(feats)
    assert [tuple(o.shape[2:]) for o in outs] == [(224, 224), (112, 112), (56, 56),
                                                  (28, 28), (14, 14)]


def test_dca_does_not_check_the_stages_again(monkeypatch):
    dca = 'mmseg_fusion.models.layers.dual_cross_attention'
    dca_calls = (
        count_calls(monkeypatch, dca) +
        count_calls(monkeypatch, dca, 'check_same_batch_size'))
    neck_calls = count_calls(monkeypatch, 'mmseg_fusion.models.necks.dca_neck')
    neck = build_neck()
    assert neck.dca.check_inputs is False
    neck(stages())
    assert len(neck_calls) == len(CHANNELS) and dca_calls == []
    wrong = list(stages())
    wrong[2] = torch.randn(2, 5, 9, 12)
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 8 channels'):
        neck(wrong)
    wrong = list(stages())
    wrong[1] = torch.randn(1, 8, 18, 25)
    with pytest.raises(ValueError, match=r'one batch size, got inputs\[0\]'):
        neck(wrong)
