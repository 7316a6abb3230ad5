import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

IN_CHANNELS = (8, 16, 24, 32)
BINARY = dict(
    num_classes=2,
    out_channels=1,
    threshold=0.5,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
MULTI_CLASS = dict(num_classes=3)


def build_head(**kwargs):
    cfg = dict(
        type='MCAHead',
        in_channels=IN_CHANNELS,
        num_heads=2,
        kernel_sizes=(3, 5),
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        **MULTI_CLASS)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def encoder_features(height,
                     width,
                     batch=2,
                     channels=IN_CHANNELS,
                     strides=(4, 8, 16, 32)):
    """Random stages of an encoder with the given strides (sizes rounded up)."""
    return [
        torch.randn(batch, c, math.ceil(height / s), math.ceil(width / s))
        for c, s in zip(channels, strides)
    ]


@pytest.mark.parametrize('crop', [(64, 64), (97, 61), (40, 136)])
@pytest.mark.parametrize('mode,out_channels', [(BINARY, 1), (MULTI_CLASS, 3)])
def test_output_at_stage_one_resolution(crop, mode, out_channels):
    head = build_head(**mode)
    feats = encoder_features(*crop)
    out = head(feats)
    assert out.shape == (2, out_channels) + tuple(feats[0].shape[2:])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('image_size,expected', [(20, (20, 20)), ((12, 28), (12, 28))])
def test_fixed_image_size_sets_output_size(image_size, expected):
    head = build_head(image_size=image_size, **BINARY)
    for crop in ((64, 64), (97, 61)):
        assert head(encoder_features(*crop)).shape == (2, 1) + expected


def test_none_equals_fixed_size_of_stage_one():
    feats = encoder_features(72, 40)
    free = build_head().eval()
    fixed = build_head(image_size=(18, 10)).eval()
    fixed.load_state_dict(free.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(free(feats), fixed(feats))
        # a different fixed size gives a different (resized) prediction
        assert build_head(image_size=16).eval()(feats).shape[2:] == (16, 16)


def test_channels_derived_and_validated():
    head = build_head()
    assert head.channels == IN_CHANNELS[0]
    assert head.conv_seg.in_channels == IN_CHANNELS[0]
    assert build_head(channels=IN_CHANNELS[0]).channels == IN_CHANNELS[0]
    with pytest.raises(ValueError, match='channels must equal in_channels'):
        build_head(channels=64)


def test_explicit_input_transform_and_in_index_select_stages():
    head = build_head(input_transform='multiple_select', in_index=[1, 2, 3, 4])
    feats = encoder_features(
        64, 48, channels=(4, ) + IN_CHANNELS, strides=(2, 4, 8, 16, 32))
    assert head(feats).shape == (2, 3, 16, 12)


IMAGE_SIZE_ERROR = (r'image_size must be None, a positive int or a list or tuple of 2 '
                    r'\(H, W\) positive ints')


@pytest.mark.parametrize('mode', [BINARY, MULTI_CLASS])
def test_every_parameter_gets_grad(mode):
    head = build_head(**mode)
    head.train()
    assert_every_parameter_gets_grad(head, head(encoder_features(64, 48)))
    assert not any('temperature' in name for name, _ in head.named_parameters())


def test_loss_and_predict_resize_to_label_size():
    head = build_head(image_size=12, **BINARY)
    feats = encoder_features(40, 56)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        label = torch.zeros(1, 40, 56, dtype=torch.long)
        label[:, 10:30, 20:40] = 1
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(40, 56)))
        samples.append(sample)
    losses = head.loss(feats, samples, ConfigDict())
    assert torch.isfinite(losses['loss_ce'])
    logits = head.predict(feats, [s.metainfo for s in samples], ConfigDict())
    assert logits.shape == (2, 1, 40, 56)


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=(8, 16, 24)), 'in_channels must be a list or tuple of 4'),
    (dict(in_channels=(8, 16, 0, 32)), r'in_channels\[2\] must be a positive int'),
    (dict(image_size=0), IMAGE_SIZE_ERROR),
    (dict(image_size=(16, )), IMAGE_SIZE_ERROR),
    (dict(image_size=True), IMAGE_SIZE_ERROR),
    (dict(image_size=16.0), IMAGE_SIZE_ERROR),
    (dict(input_transform='resize_concat'), 'input_transform must be one of'),
    (dict(in_index=[0, 1, 2]), 'in_index must be a list or tuple of 4'),
    (dict(num_heads=3), 'num_heads must divide channels=16'),
    (dict(kernel_sizes=(4, )), r'kernel_sizes\[0\] must be odd, got \(4,\)'),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_head(**kwargs)


def test_forward_errors():
    head = build_head()
    feats = encoder_features(64, 64)
    with pytest.raises(ValueError, match='inputs must hold at least 4 stages'):
        head(feats[:3])
    feats[2] = torch.randn(2, 20, 4, 4)
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 24 channels'):
        head(feats)


def test_mca_does_not_check_its_input_again(monkeypatch):
    mca_calls = count_calls(
        monkeypatch, 'mmseg_fusion.models.layers.multi_scale_cross_axis_attention')
    head_calls = count_calls(monkeypatch, 'mmseg_fusion.utils.checks')
    head = build_head()
    assert head.mca.check_inputs is False
    head(encoder_features(32, 32, batch=1))
    assert len(head_calls) == 4 and mca_calls == []
    feats = encoder_features(32, 32, batch=1)
    feats[2] = torch.randn(1, 8, 2, 2)
    with pytest.raises(ValueError, match=r'inputs\[2\] must have 24 channels'):
        head(feats)
