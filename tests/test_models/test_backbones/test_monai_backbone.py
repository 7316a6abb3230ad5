import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmseg_fusion.models.backbones import MONAIBackbone
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample

TINY_SWIN = dict(
    type='SwinUNETR',
    in_channels=1,
    out_channels=3,
    feature_size=12,
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 1, 1))
TINY_UNETR = dict(
    type='UNETR',
    in_channels=1,
    out_channels=3,
    img_size=16,
    feature_size=4,
    hidden_size=24,
    mlp_dim=48,
    num_heads=2)


def build(**kwargs):
    return MODELS.build(dict(type='MONAIBackbone', **kwargs))


def test_registered():
    assert MODELS.get('MONAIBackbone') is MONAIBackbone


@torch.no_grad()
def test_swin_unetr_without_its_output_layer_feeds_a_linear_head():
    backbone = build(network=TINY_SWIN, out_layer='out')
    assert backbone.out_channels == (12, )
    assert backbone.size_divisor == 32 and backbone.input_size is None
    assert isinstance(backbone.network.out, nn.Identity)
    head = MODELS.build(
        dict(type='VolumeLinearHead', in_channels=backbone.out_channels, num_classes=3))
    # the smallest volume MONAI's instance norms accept at SwinUNETR's 1/32 level
    feats = backbone(torch.randn(1, 1, 64, 64, 64))
    assert len(feats) == 1 and feats[0].shape == (1, 12, 64, 64, 64)
    logits = head.predict(feats, [dict(img_shape=(64, 64, 64))], None)
    assert logits.shape == (1, 3, 64, 64, 64)


def test_unetr_trains_through_the_linear_head():
    backbone = build(network=TINY_UNETR, out_layer='out')
    assert backbone.out_channels == (4, )
    assert backbone.size_divisor == 16 and backbone.input_size == (16, 16, 16)
    head = MODELS.build(dict(type='VolumeLinearHead', in_channels=4, num_classes=3))
    x = torch.randn(2, 1, 16, 16, 16)
    feats = backbone(x)
    feats[0].pow(2).mean().backward()
    # MONAI's TransformerBlock always builds a cross-attention norm that UNETR never
    # calls: distributed training of UNETR needs find_unused_parameters=True
    unused = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert unused and all('.norm_cross_attn.' in n for n in unused)
    assert all(p.grad.abs().sum() > 0 for p in backbone.parameters()
               if p.grad is not None)
    sample = VolumeSegDataSample()
    sample.gt_sem_seg = VolumeData(data=torch.randint(0, 3, (1, 16, 16, 16)))
    losses = head.loss(backbone(x), [sample, sample], None)
    assert set(losses) == {'loss_dice', 'loss_ce', 'acc_seg'}
    (losses['loss_dice'] + losses['loss_ce']).backward()
    assert head.conv_seg.weight.grad.abs().sum() > 0


def test_whole_network_and_given_size_divisor():
    backbone = build(
        network=dict(
            type='BasicUNet',
            spatial_dims=3,
            in_channels=1,
            out_channels=5,
            features=(4, 4, 8, 8, 8, 4)),
        size_divisor=16)
    assert backbone.out_channels == (5, ) and backbone.size_divisor == 16
    assert backbone(torch.randn(1, 1, 32, 32, 32))[0].shape == (1, 5, 32, 32, 32)


@pytest.mark.parametrize('kwargs, message', [
    (dict(network=dict(type='NoSuchNet')), r"network\['type'\] .*'SwinUNETR'"),
    (dict(network='SwinUNETR'), 'network must be a dict'),
    (dict(network=TINY_SWIN, out_layer='head'), r"out_layer .*'encoder1'.*'head'"),
    (dict(network=TINY_SWIN, out_layer='encoder1.layer.norm1'), 'no convolution'),
    (dict(network=dict(type='BasicUNet', in_channels=1, out_channels=2)),
     'size_divisor must be given for BasicUNet'),
    (dict(network=TINY_SWIN, size_divisor=0), 'size_divisor'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_invalid_inputs():
    backbone = build(network=TINY_UNETR, out_layer='out')
    with pytest.raises(ValueError, match=r'x must be a \(N, C, D, H, W\)'):
        backbone(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match='x must have 1 channels'):
        backbone(torch.randn(1, 2, 16, 16, 16))
    with pytest.raises(ValueError, match=r'spatial size \(16, 16, 16\) .*32, 32, 32'):
        backbone(torch.randn(1, 1, 32, 32, 32))
    swin = build(network=TINY_SWIN, out_layer='out')
    with pytest.raises(ValueError, match='divisible by size_divisor=32'):
        swin(torch.randn(1, 1, 64, 64, 48))
