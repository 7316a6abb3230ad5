import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmseg_fusion.models.backbones import UNet3DEncoder
from tests.helpers import assert_every_parameter_gets_grad


def build(**kwargs):
    cfg = dict(type='UNet3DEncoder', widths=(4, 8, 16))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_registered_and_nnunet_defaults():
    assert MODELS.get('UNet3DEncoder') is UNet3DEncoder
    encoder = UNet3DEncoder()
    assert encoder.out_channels == (32, 64, 128, 256, 320)
    assert encoder.size_divisor == 16
    first = encoder.stages[0][0]
    assert isinstance(first.conv, nn.Conv3d) and first.conv.stride == (1, 1, 1)
    assert isinstance(first.norm, nn.InstanceNorm3d) and first.norm.affine
    assert isinstance(first.activate, nn.LeakyReLU)
    assert first.activate.negative_slope == 0.01
    assert [s[0].conv.stride for s in encoder.stages[1:]] == [(2, 2, 2)] * 4
    assert all(s[1].conv.stride == (1, 1, 1) for s in encoder.stages)


@pytest.mark.parametrize(
    'norm_cfg',
    [dict(type='IN3d', affine=True), dict(type='BN3d')])
def test_stage_shapes_and_gradients(norm_cfg):
    encoder = build(norm_cfg=norm_cfg, num_convs=1)
    x = torch.randn(2, 1, 8, 12, 16)
    outs = encoder(x)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 8, 12, 16), (2, 8, 4, 6, 8),
                                              (2, 16, 2, 3, 4)]
    assert_every_parameter_gets_grad(encoder, outs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(widths=()), 'widths'),
    (dict(widths=(4, 0)), r'widths\[1\] must be a positive int, got 0'),
    (dict(num_convs=0), 'num_convs'),
    (dict(in_channels=0), 'in_channels'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_invalid_inputs():
    encoder = build()
    with pytest.raises(ValueError, match=r'x must be a \(N, C, D, H, W\)'):
        encoder(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match='x must have 1 channels'):
        encoder(torch.randn(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match=r'size_divisor=4 .*\(1, 1, 8, 8, 6\)'):
        encoder(torch.randn(1, 1, 8, 8, 6))
