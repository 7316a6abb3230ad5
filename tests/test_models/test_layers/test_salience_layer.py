import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_fusion.models.layers import SalienceLayer
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import assert_check_inputs_switch


def build(**kwargs):
    cfg = dict(type='SalienceLayer', in_channels=2, channels=6)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('shape', [(1, 2, 5, 6, 7), (2, 2, 4, 4, 4)])
def test_output_shape(shape):
    assert build()(torch.randn(shape)).shape == (shape[0], 6, *shape[2:])


def test_paper_defaults():
    """3^3 conv 1 -> 48 without bias, BatchNorm3d, LeakyReLU 0.2, a separate mixer
    BatchNorm3d, mixer 48 -> 192 -> 48 (upstream minus the conv bias plus one BN)."""
    layer = SalienceLayer(1)
    assert layer.conv.conv.kernel_size == (3, 3, 3) and layer.conv.conv.bias is None
    assert isinstance(layer.conv.bn, nn.BatchNorm3d)
    assert layer.conv.activate.negative_slope == 0.2
    assert isinstance(layer.mixer_norm, nn.BatchNorm3d)
    assert layer.mixer_norm is not layer.conv.bn
    assert isinstance(layer.mixer[2], nn.GELU)
    upstream = (27 * 48 + 48) + 96 + (48 * 192 + 192) + (192 * 27 + 192) + (192 * 48 +
                                                                            48)
    assert sum(p.numel() for p in layer.parameters()) == upstream - 48 + 96


def test_every_parameter_gets_grad():
    layer = build()
    assert_every_parameter_gets_grad(layer, layer(torch.randn(2, 2, 4, 5, 3)))


def test_matches_hand_computation_in_eval():
    """Fresh BatchNorms in eval divide by sqrt(1 + eps):
    y = leaky_relu(conv(x) / s, 0.2); out = y + fc2(gelu(dw(fc1(y / s))))."""
    layer = build().eval()
    x = torch.randn(1, 2, 4, 5, 6)
    scale = (1 + 1e-5)**0.5
    y = F.leaky_relu(F.conv3d(x, layer.conv.conv.weight, padding=1) / scale, 0.2)
    fc1, dw, _, fc2 = layer.mixer
    expected = y + fc2(F.gelu(dw(fc1(y / scale))))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)


def test_configurable_norm_and_activation():
    layer = build(norm_cfg=None, act_cfg=dict(type='ReLU'), mlp_ratio=2)
    assert isinstance(layer.mixer_norm, nn.Identity)
    assert layer.conv.conv.bias is not None
    assert layer.mixer[0].out_channels == 12
    assert layer(torch.randn(1, 2, 3, 3, 3)).shape == (1, 6, 3, 3, 3)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=0), 'in_channels'),
    (dict(channels=0), 'channels'),
    (dict(mlp_ratio=0), 'mlp_ratio'),
    (dict(conv_cfg=None), 'conv_cfg'),
    (dict(norm_cfg='BN3d'), 'norm_cfg'),
    (dict(act_cfg=dict(negative_slope=0.2)), 'act_cfg'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize('shape', [(1, 2, 6, 6), (1, 3, 4, 4, 4)])
def test_bad_inputs(shape):
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        build()(torch.randn(shape))


def test_check_inputs_switch(monkeypatch):

    def make(**kwargs):
        return MODELS.build(
            dict(type='SalienceLayer', in_channels=2, channels=4, **kwargs))

    good, bad = torch.randn(1, 2, 4, 5, 3), torch.randn(1, 3, 4, 5, 3)
    assert_check_inputs_switch(monkeypatch, make, [good], [bad],
                               'x must have 2 channels')
