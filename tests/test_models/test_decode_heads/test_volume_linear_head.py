import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.decode_heads import VolumeLinearHead
from tests.helpers import assert_every_parameter_gets_grad


def test_registered_and_one_voxelwise_linear_map():
    assert MODELS.get('VolumeLinearHead') is VolumeLinearHead
    for in_channels in (6, (6, ), [6]):
        head = MODELS.build(
            dict(type='VolumeLinearHead', in_channels=in_channels, num_classes=4))
        assert head.in_channels == (6, )
    x = torch.randn(2, 6, 3, 4, 5)
    out = head.train()([x])
    expected = torch.einsum('kc,ncdhw->nkdhw', head.conv_seg.weight[:, :, 0, 0, 0], x)
    torch.testing.assert_close(out, expected + head.conv_seg.bias.view(1, 4, 1, 1, 1))
    assert_every_parameter_gets_grad(head, out)


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=(6, 6)), 'one channel count'),
    (dict(deep_supervision=True), 'deep_supervision must be False'),
])
def test_invalid_arguments(kwargs, message):
    cfg = dict(type='VolumeLinearHead', in_channels=6, num_classes=4)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


def test_invalid_inputs():
    head = VolumeLinearHead(6, 4)
    with pytest.raises(ValueError, match=r'1 feature maps .*got 2'):
        head([torch.randn(1, 6, 2, 2, 2)] * 2)
    with pytest.raises(ValueError, match=r'inputs\[0\] must be a \(N, C, D, H, W\)'):
        head([torch.randn(1, 6, 2, 2)])
