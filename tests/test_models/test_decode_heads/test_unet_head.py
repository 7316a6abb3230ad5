import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_fusion.models.decode_heads.unet_head import UNetHead
from tests.helpers import assert_every_parameter_gets_grad
from tests.test_models.test_layers.block_checks import count_calls

PAIRWISE_BLOCKS = [
    dict(type='GatedFusion'),
    dict(type='DynamicFeatureFusion'),
    dict(type='MultiScaleSelectiveFusion', num_inputs=2),
]


@MODELS.register_module(name='UNetHeadTestRecordingFusion', force=True)
class RecordingFusion(nn.Module):
    """Test block: ``x + scale * skip``; records the arguments it was called with."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.calls = []

    def forward(self, x, skip):
        self.calls.append((x, skip))
        return x + self.scale * skip


def stage_features(batch, size, channels, requires_grad=False):
    """Random encoder stages as UNetEncoder(downsample='maxpool') shapes them."""
    height, width = size
    feats = []
    for stage_channels in channels:
        feats.append(
            torch.randn(
                batch, stage_channels, height, width, requires_grad=requires_grad))
        height, width = height // 2, width // 2
    return feats


def build_head(**kwargs):
    cfg = dict(
        type='UNetHead',
        in_channels=(4, 8, 16),
        num_classes=3,
        norm_cfg=dict(type='BN'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


BINARY = dict(
    num_classes=2,
    out_channels=1,
    threshold=0.5,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))


def test_registered_and_concatenation_widths():
    assert MODELS.get('UNetHead') is UNetHead
    head = build_head(in_channels=(4, 8, 16, 32))
    assert head.channels == 4
    assert head.in_index == (0, 1, 2, 3)
    assert head.fusions is None
    first_convs = [convs[0].conv for convs in head.decoder_convs]
    assert [c.in_channels for c in first_convs] == [2 * 16, 2 * 8, 2 * 4]
    assert [p.conv.out_channels for p in head.projections] == [16, 8, 4]


@pytest.mark.parametrize('skip_fusion', [None] + PAIRWISE_BLOCKS)
@pytest.mark.parametrize('batch, size, binary', [(1, (33, 47), False),
                                                 (2, (64, 48), True)])
def test_shapes_and_gradients(skip_fusion, batch, size, binary):
    head = build_head(skip_fusion=skip_fusion, **(BINARY if binary else {}))
    if skip_fusion is not None:
        assert [f.channels for f in head.fusions] == [8, 4]
        assert all(type(f).__name__ == skip_fusion['type'] for f in head.fusions)
        first_convs = [convs[0].conv for convs in head.decoder_convs]
        assert [c.in_channels for c in first_convs] == [8, 4]
    feats = stage_features(batch, size, (4, 8, 16), requires_grad=True)
    out = head(feats)
    assert out.shape == (batch, 1 if binary else 3, *size)
    assert_every_parameter_gets_grad(head, out)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_block_called_with_projected_decoder_feature_then_skip():
    head = build_head(skip_fusion=dict(type='UNetHeadTestRecordingFusion'))
    feats = stage_features(2, (33, 47), (4, 8, 16))
    head(feats)
    (x_deep, skip_deep), = head.fusions[0].calls
    (x_shallow, skip_shallow), = head.fusions[1].calls
    assert skip_deep is feats[1] and skip_shallow is feats[0]
    assert x_deep.shape == feats[1].shape and x_shallow.shape == feats[0].shape


def test_channels_other_than_first_stage_and_in_index_subset():
    head = build_head(in_channels=(8, 16), in_index=(1, 2), channels=6, dropout_ratio=0)
    assert head.conv_seg.in_channels == 6
    assert head.decoder_convs[-1][-1].conv.out_channels == 6
    feats = stage_features(1, (33, 47), (4, 8, 16))
    out = head(feats)
    assert out.shape == (1, 3, 16, 23)
    assert_every_parameter_gets_grad(head, out)


def test_input_transform_may_be_passed():
    head = build_head(input_transform='multiple_select')
    assert head.input_transform == 'multiple_select'


def test_align_corners_changes_the_upsampling():
    feats = stage_features(1, (33, 47), (4, 8, 16))
    outs = []
    for align_corners in (False, True):
        torch.manual_seed(0)
        head = build_head(align_corners=align_corners, dropout_ratio=0).eval()
        outs.append(head(feats))
    assert outs[0].shape == outs[1].shape
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=(4, )), 'in_channels'),
    (dict(in_channels=4), 'in_channels'),
    (dict(in_channels=(4, 0)), r'in_channels\[1\] must be a positive int, got 0'),
    (dict(channels=0), 'channels'),
    (dict(input_transform='resize_concat'), 'input_transform'),
    (dict(in_index=(0, 1)), 'in_index'),
    (dict(skip_fusion=dict(type='NoSuchFusionBlock')), 'NoSuchFusionBlock'),
    (dict(skip_fusion='GatedFusion'), 'skip_fusion'),
    (dict(skip_fusion=dict(type='GatedFusion', channels=4)), 'channels'),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_head(**kwargs)


@MODELS.register_module(name='UNetHeadTestVolumeFusion', force=True)
class VolumeFusion(nn.Module):
    """Test block that is 3-D by default (no spatial_dims in its config)."""
    spatial_dims = 3

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x, skip):
        return x + skip


@pytest.mark.parametrize('skip_fusion',
                         [dict(block, spatial_dims=3) for block in PAIRWISE_BLOCKS] +
                         [dict(type='UNetHeadTestVolumeFusion')])
def test_3d_skip_fusion_is_refused_at_build_time(skip_fusion):
    """The head is 2-D: a 3-D block could be built but never run."""
    with pytest.raises(
            ValueError,
            match=r'skip_fusion must build a 2-D block: '
            r'UNetHead is 2-D and expects spatial_dims=2, got '
            r'spatial_dims=3'):
        build_head(skip_fusion=skip_fusion)


def test_2d_block_norm_cfg_reaches_the_fusions():
    head = build_head(
        skip_fusion=dict(
            type='MultiScaleSelectiveFusion',
            num_inputs=2,
            spatial_dims=2,
            norm_cfg=dict(type='SyncBN')))
    assert all(isinstance(f.project[1], nn.SyncBatchNorm) for f in head.fusions)


def test_invalid_inputs():
    head = build_head()
    feats = stage_features(1, (32, 32), (4, 8, 16))
    with pytest.raises(ValueError, match='at least 3 stages'):
        head(feats[:2])
    feats[1] = torch.randn(1, 5, 16, 16)
    with pytest.raises(ValueError, match=r'inputs\[1\] must have 8 channels'):
        head(feats)


def fake_batch(num_classes, batch=2, size=(33, 47)):
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('binary', [False, True])
@pytest.mark.parametrize('skip_fusion, downsample',
                         [(None, 'maxpool'), (dict(type='GatedFusion'), 'stride')])
def test_encoder_decoder_loss_and_predict(binary, skip_fusion, downsample):
    init_default_scope('mmseg')
    head_cfg = dict(
        type='UNetHead',
        in_channels=(4, 8, 16),
        channels=4,
        num_classes=3,
        skip_fusion=skip_fusion,
        norm_cfg=dict(type='BN'))
    if binary:
        head_cfg.update(BINARY)
    num_classes = head_cfg['num_classes']
    model = MODELS.build(
        ConfigDict(
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
                size=(33, 47),
                pad_val=0,
                seg_pad_val=255),
            backbone=dict(
                type='UNetEncoder',
                base_channels=4,
                num_stages=3,
                downsample=downsample),
            decode_head=head_cfg,
            test_cfg=dict(mode='whole')))
    batch = fake_batch(num_classes)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing

    model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 2
    for result in results:
        assert result.pred_sem_seg.data.shape == (1, 33, 47)
        assert result.seg_logits.data.shape == (1 if binary else 3, 33, 47)
        assert set(result.pred_sem_seg.data.unique().tolist()) <= set(
            range(num_classes))


@pytest.mark.parametrize('skip_fusion', PAIRWISE_BLOCKS)
def test_fusions_do_not_check_the_stages_again(monkeypatch, skip_fusion):
    head = build_head(skip_fusion=dict(skip_fusion, check_inputs=True))
    assert not any(fusion.check_inputs for fusion in head.fusions)
    module = type(head.fusions[0]).__module__
    fusion_calls = (
        count_calls(monkeypatch, module) +
        count_calls(monkeypatch, module, 'check_same_shape'))
    head_calls = count_calls(monkeypatch, 'mmseg_fusion.utils.checks')
    head(stage_features(1, (16, 12), (4, 8, 16)))
    assert len(head_calls) == 3 and fusion_calls == []
    feats = stage_features(1, (16, 12), (4, 8, 16))
    feats[1] = torch.randn(1, 5, 8, 6)
    with pytest.raises(ValueError, match=r'inputs\[1\] must have 8 channels'):
        head(feats)
    feats = stage_features(1, (16, 12), (4, 8, 16))
    feats[1] = torch.randn(2, 8, 8, 6)
    with pytest.raises(ValueError, match=r'one batch size, got inputs\[0\]'):
        head(feats)
