import pytest
import torch
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS

from mmseg_fusion.models.backbones.unet_encoder import UNetEncoder
from tests.helpers import assert_every_parameter_gets_grad


def build_encoder(**kwargs):
    cfg = dict(type='UNetEncoder', base_channels=4, num_stages=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_registered_and_default_channels():
    assert MODELS.get('UNetEncoder') is UNetEncoder
    encoder = MODELS.build(dict(type='UNetEncoder'))
    assert encoder.out_channels == (32, 64, 128, 256, 512)
    convs = [m for m in encoder.modules() if isinstance(m, ConvModule)]
    assert len(convs) == 5 * 2


def test_channel_multipliers_and_num_convs():
    encoder = build_encoder(channel_multipliers=(1, 1, 3, 5), num_convs=3)
    assert encoder.out_channels == (4, 4, 12, 20)
    outs = encoder(torch.randn(1, 3, 16, 16))
    assert [o.shape[1] for o in outs] == [4, 4, 12, 20]
    convs = [m for m in encoder.modules() if isinstance(m, ConvModule)]
    assert len(convs) == 4 * 3


@pytest.mark.parametrize('downsample, sizes', [
    ('maxpool', [(33, 47), (16, 23), (8, 11), (4, 5)]),
    ('stride', [(33, 47), (17, 24), (9, 12), (5, 6)]),
])
@pytest.mark.parametrize('batch', [1, 2])
def test_stage_sizes_on_odd_input(downsample, sizes, batch):
    encoder = build_encoder(downsample=downsample)
    outs = encoder(torch.randn(batch, 3, 33, 47))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs
            ] == [(batch, c, h, w) for c, (h, w) in zip((4, 8, 16, 32), sizes)]


@pytest.mark.parametrize('downsample', ['maxpool', 'stride'])
@pytest.mark.parametrize('size', [(33, 47), (64, 48)])
def test_every_parameter_gets_grad(downsample, size):
    encoder = build_encoder(
        base_channels=6, num_stages=3, downsample=downsample, in_channels=1)
    outs = encoder(torch.randn(2, 1, *size))
    assert outs[0].shape == (2, 6, *size)
    assert_every_parameter_gets_grad(encoder, outs)


def test_stride_downsample_has_no_pooling():
    encoder = build_encoder(downsample='stride')
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in encoder.modules())
    strides = [m.conv.stride for m in encoder.modules() if isinstance(m, ConvModule)]
    assert strides == [(1, 1)] * 2 + [(2, 2), (1, 1)] * 3


@pytest.mark.parametrize('kwargs, message', [
    (dict(downsample='avgpool'), 'downsample'),
    (dict(num_stages=0), 'num_stages'),
    (dict(base_channels=0), 'base_channels'),
    (dict(num_convs=0), 'num_convs'),
    (dict(channel_multipliers=(1, 2)), 'channel_multipliers'),
    (dict(channel_multipliers=(1, 2, 0, 4)), 'channel_multipliers'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_encoder(**kwargs)


def test_invalid_inputs():
    encoder = build_encoder()
    with pytest.raises(ValueError, match='3 channels'):
        encoder(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        encoder(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match='at least 8x8'):
        encoder(torch.randn(1, 3, 7, 32))
    stride_encoder = build_encoder(downsample='stride')
    assert [o.shape[2:] for o in stride_encoder(torch.randn(1, 3, 7, 32))][-1] == (1, 4)
