import pytest
import torch
from mmseg.registry import MODELS

from mmseg_fusion.models.decode_heads import UNet3DHead
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from tests.helpers import assert_every_parameter_gets_grad

CHANNELS = (4, 8, 16, 16)


def build(**kwargs):
    cfg = dict(type='UNet3DHead', in_channels=CHANNELS, num_classes=3)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def stages(size=16, batch=1, requires_grad=False):
    return [
        torch.randn(batch, c, *(size // 2**i, ) * 3, requires_grad=requires_grad)
        for i, c in enumerate(CHANNELS)
    ]


def samples(label):
    out = []
    for volume in label:
        sample = VolumeSegDataSample(metainfo=dict(img_shape=tuple(volume.shape)))
        sample.gt_sem_seg = VolumeData(data=volume[None])
        out.append(sample)
    return out


def test_registered_and_structure():
    assert MODELS.get('UNet3DHead') is UNet3DHead
    head = build(deep_supervision=True)
    assert [(u.in_channels, u.out_channels) for u in head.upsamples] == [(16, 16),
                                                                         (16, 8),
                                                                         (8, 4)]
    assert [s[0].conv.in_channels for s in head.steps] == [32, 16, 8]
    assert [c.in_channels for c in head.seg_layers] == [16, 8, 4]
    assert len(build().seg_layers) == 1  # no auxiliary outputs without deep supervision


def test_outputs_and_gradients():
    head = build(deep_supervision=True).train()
    feats = stages(requires_grad=True)
    outs = head(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 3, s, s, s) for s in (16, 8, 4)]
    assert_every_parameter_gets_grad(head, outs)
    assert all(f.grad.abs().sum() > 0 for f in feats)
    with torch.no_grad():
        assert head.eval()(feats).shape == (1, 3, 16, 16, 16)
    plain = build().train()
    out = plain(stages())
    assert out.shape == (1, 3, 16, 16, 16)
    assert_every_parameter_gets_grad(plain, out)


def test_encoder_and_head_learn_a_tiny_volume():
    encoder = MODELS.build(dict(type='UNet3DEncoder', widths=CHANNELS, num_convs=1))
    head = build(deep_supervision=True, num_convs=1).train()
    x = torch.randn(1, 1, 16, 16, 16)
    label = (x[:, 0] > 0.5).long() + (x[:, 0] > 1.5).long()
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-2)
    totals = []
    for _ in range(6):
        losses = head.loss(encoder(x), samples(label), None)
        total = losses['loss_dice'] + losses['loss_ce']
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert set(losses) == {'loss_dice', 'loss_ce', 'acc_seg'}
    assert totals[-1] < 0.9 * totals[0]


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=(4, )), 'at least 2 encoder stages'),
    (dict(num_convs=0), 'num_convs'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_invalid_inputs():
    head = build()
    feats = stages()
    with pytest.raises(ValueError, match=r'4 feature maps .*got 3'):
        head(feats[:3])
    feats[3] = torch.randn(1, 16, 3, 2, 2)
    with pytest.raises(ValueError, match=r'inputs\[3\] must have half'):
        head(feats)
