"""VolumeEncoderDecoder: 5-D checks, sliding-window inference against whole-volume
inference, mirroring, progress logging, the way back to the original grid, training."""
import logging

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from monai.data import MetaTensor
from monai.transforms import Orientationd, Spacingd

from mmseg_fusion.models.segmentors.volume_encoder_decoder import (VolumeEncoderDecoder,
                                                                   parse_test_cfg)
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from tests.shared_data import needs_ct_sample
from tests.test_datasets.volume_data import write_btcv_label


@MODELS.register_module(name='VolumeSegTestIdentityBackbone', force=True)
class IdentityBackbone(nn.Module):
    """Stand-in encoder: returns its input as the only feature map."""

    def __init__(self, size_divisor: int = 1) -> None:
        super().__init__()
        self.size_divisor = size_divisor

    def forward(self, x):
        return (x, )


@MODELS.register_module(name='VolumeSegTestValueHead', force=True)
class ValueHead(nn.Module):
    """Stand-in head, a fixed voxel-wise function of channel 0: score k =
    max(0, 1 - |x - k|), one-hot for labels stored as intensities (so interpolating
    between labels 0 and 2 never favours 1), plus ``ramp`` times the window position
    along D (not flip-equivariant when ``ramp`` is set). Counts its passes."""

    def __init__(self, num_classes: int = 3, ramp: float = 0.) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ramp = ramp
        self.passes = 0

    def forward(self, inputs):
        x = inputs[0][:, :1]
        classes = torch.arange(self.num_classes, dtype=x.dtype).view(1, -1, 1, 1, 1)
        scores = torch.relu(1 - (x - classes).abs())
        depth = torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1, 1)
        return scores + self.ramp * depth * classes

    def predict(self, inputs, batch_img_metas, test_cfg):
        assert tuple(batch_img_metas[0]['img_shape']) == tuple(inputs[0].shape[2:])
        self.passes += 1
        return self.forward(inputs)

    def loss(self, inputs, data_samples, train_cfg):
        raise NotImplementedError


@MODELS.register_module(name='VolumeSegTestConvBackbone', force=True)
class ConvBackbone(nn.Module):
    """Stand-in learned encoder: one strided conv (stride = ``size_divisor``)."""

    def __init__(self,
                 in_channels: int = 1,
                 channels: int = 4,
                 size_divisor: int = 2) -> None:
        super().__init__()
        self.size_divisor = size_divisor
        self.conv = nn.Conv3d(in_channels, channels, size_divisor, size_divisor)

    def forward(self, x):
        return (torch.relu(self.conv(x)), )


@MODELS.register_module(name='VolumeSegTestConvHead', force=True)
class ConvHead(nn.Module):
    """Stand-in learned head: 1x1x1 conv to K classes, trilinear upsampling by
    ``scale``, cross-entropy loss against ``gt_sem_seg``."""

    def __init__(self,
                 in_channels: int = 4,
                 num_classes: int = 2,
                 scale: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.scale = scale
        self.conv = nn.Conv3d(in_channels, num_classes, 1)

    def forward(self, inputs):
        return F.interpolate(
            self.conv(inputs[0]), scale_factor=self.scale, mode='trilinear')

    def predict(self, inputs, batch_img_metas, test_cfg):
        return self.forward(inputs)

    def loss(self, inputs, data_samples, train_cfg):
        target = torch.stack([s.gt_sem_seg.data[0] for s in data_samples])
        return dict(loss_ce=F.cross_entropy(self.forward(inputs), target))


def value_model(size_divisor=1, ramp=0., **test_cfg):
    return VolumeEncoderDecoder(
        backbone=dict(type='VolumeSegTestIdentityBackbone', size_divisor=size_divisor),
        decode_head=dict(type='VolumeSegTestValueHead', ramp=ramp),
        test_cfg={
            'progress': False,
            **test_cfg
        })


def coordinate_volume(shape):
    """(1, 1, D, H, W): a smooth non-linear function of the voxel coordinates."""
    i, j, k = torch.meshgrid(
        *[torch.arange(s, dtype=torch.float32) for s in shape], indexing='ij')
    return (torch.sin(0.3 * i) + torch.cos(0.2 * j * k / 7) + 0.05 * k)[None, None]


def blob_labels(shape, seed=0):
    """(D, H, W) int64 labels 0..2: two overlapping balls in a background."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing='ij'), -1)
    labels = np.zeros(shape, dtype=np.int64)
    for label in (1, 2):
        centre = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        radius = min(shape) * 0.25
        labels[np.linalg.norm(grid - centre, axis=-1) < radius] = label
    return labels


def geometry_sample(processed_affine, processed_shape, original_affine, original_shape):
    return VolumeSegDataSample(
        metainfo=dict(
            affine=processed_affine,
            img_shape=tuple(processed_shape),
            original_affine=original_affine,
            original_shape=tuple(original_shape)))


ORIGINAL_AFFINE = np.array([[0.8, 0, 0, -40.], [0, 0.8, 0, -30.], [0, 0, 2.5, 10.],
                            [0, 0, 0, 1]])

# --- sliding windows --------------------------------------------------------------


@pytest.mark.parametrize(
    'shape,patch,overlap,blend',
    [
        ((20, 17, 13), (8, 8, 8), 0.5, 'gaussian'),
        ((20, 17, 13), (8, 12, 4), 0.25, 'constant'),
        ((5, 9, 7), (8, 8, 8), 0.5, 'gaussian'),  # smaller than the patch: padded
    ])
def test_stitched_equals_whole_volume(shape, patch, overlap, blend):
    x = coordinate_volume(shape)
    whole = value_model(mode='whole').inference(x, [{}])
    slide = value_model(
        mode='slide',
        patch_size=patch,
        overlap=overlap,
        blend_mode=blend,
        sw_batch_size=3).inference(x, [{}])
    assert slide.shape == whole.shape == (1, 3, *shape)
    torch.testing.assert_close(slide, whole, atol=1e-5, rtol=1e-5)


def test_slide_matches_monai_called_directly():
    from monai.inferers import sliding_window_inference
    x = torch.randn(2, 1, 18, 16, 20)
    model = value_model(
        mode='slide', patch_size=(8, 8, 8), sw_batch_size=4, ramp=0.3).eval()
    ours = model.inference(x, [{}, {}])
    direct = sliding_window_inference(
        x, (8, 8, 8),
        4,
        lambda w: model._forward(w),
        overlap=0.5,
        mode='gaussian',
        sigma_scale=0.125)
    assert torch.equal(ours, direct)


def test_stitch_on_cpu_and_whole_mode_padding():
    x = coordinate_volume((10, 13, 7))
    model = value_model(size_divisor=4, mode='whole', stitch_device='cpu')
    logits = model.inference(x, [{}])
    assert logits.shape == (1, 3, 10, 13, 7) and logits.device.type == 'cpu'
    torch.testing.assert_close(logits, value_model().inference(x, [{}]))


def test_mirroring_flip_equivariant_net_changes_nothing():
    x = coordinate_volume((12, 10, 9))
    plain = value_model(mode='slide', patch_size=(8, 8, 8)).inference(x, [{}])
    mirrored = value_model(
        mode='slide', patch_size=(8, 8, 8), mirror_axes=(0, 1, 2)).inference(x, [{}])
    torch.testing.assert_close(mirrored, plain, atol=1e-5, rtol=1e-5)


def test_mirroring_averages_the_flipped_predictions():
    x = coordinate_volume((8, 8, 8))
    model = value_model(ramp=0.5, mirror_axes=(0, ))
    net = value_model(ramp=0.5)._forward
    expected = (net(x) + net(x.flip(2)).flip(2)) / 2
    mirrored = model.inference(x, [{}])
    torch.testing.assert_close(mirrored, expected)
    assert not torch.allclose(mirrored, net(x))  # the ramp is not flip-equivariant
    # all 7 non-empty subsets of three axes, plus the plain pass
    model = value_model(ramp=0.5, mirror_axes=[2, 0, 1])
    model.inference(x, [{}])
    assert model.decode_head.passes == 8


def test_progress_goes_to_the_mmengine_logger():
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record) if record.getMessage(
    ).startswith('sliding-window') else None
    logger = MMLogger.get_instance('test_volume_progress', log_level='INFO')
    logger.addHandler(handler)
    try:
        assert MMLogger.get_current_instance() is logger
        model = value_model(
            mode='slide',
            patch_size=(8, 8, 8),
            sw_batch_size=5,
            progress=True,
            progress_interval=0)
        model.inference(torch.zeros(1, 1, 20, 20, 20), [{}])
        messages = [r.getMessage() for r in records]
        # 4 windows per side (step 4, last window at 12): 64 windows, 13 forwards
        assert len(messages) == 13
        assert messages[0].startswith('sliding-window inference: 5/64 windows, ')
        assert messages[-1].startswith('sliding-window inference: 64/64 windows, ')
        assert messages[-1].endswith(' s elapsed')
        records.clear()
        model = value_model(
            mode='slide', patch_size=(8, 8, 8), sw_batch_size=5,
            progress=True)  # every 5 s: only the final line
        model.inference(torch.zeros(1, 1, 20, 20, 20), [{}])
        assert len(records) == 1
        assert records[0].getMessage().startswith('sliding-window inference: 64/64 ')
        records.clear()
        value_model(
            mode='slide',
            patch_size=(8, 8, 8)).inference(torch.zeros(1, 1, 20, 20, 20), [{}])
        assert records == []  # progress=False
    finally:
        logger.removeHandler(handler)


# --- back to the original grid -----------------------------------------------------


def predict_labels(model, processed_labels, sample):
    inputs = torch.as_tensor(processed_labels, dtype=torch.float32)[None, None]
    (result, ) = model.predict(inputs, [sample])
    return result.pred_sem_seg.data[0].numpy()


def test_prediction_on_the_processed_grid_when_geometry_is_equal_or_missing():
    labels = blob_labels((12, 10, 8))
    model = value_model(keep_logits=True)
    same = geometry_sample(ORIGINAL_AFFINE, labels.shape, ORIGINAL_AFFINE, labels.shape)
    np.testing.assert_array_equal(predict_labels(model, labels, same), labels)
    (plain, ) = model.predict(torch.as_tensor(labels, dtype=torch.float32)[None, None])
    assert plain.pred_sem_seg.data.dtype == torch.int64
    assert plain.pred_sem_seg.shape == labels.shape
    assert plain.seg_logits.data.shape == (3, *labels.shape)
    results = value_model().predict(torch.zeros(2, 1, 4, 4, 4))
    assert [r.pred_sem_seg.shape for r in results] == [(4, 4, 4)] * 2
    assert 'seg_logits' not in results[0]  # keep_logits=False


@pytest.mark.parametrize('flip_axes', [(0, ), (0, 1), (1, 2)])
def test_orientation_flips_map_back_exactly(flip_axes):
    labels = blob_labels((12, 10, 8))
    processed = np.flip(labels, flip_axes).copy()
    flip = np.eye(4)  # processed voxel -> original voxel
    for axis in flip_axes:
        flip[axis, axis], flip[axis, 3] = -1, labels.shape[axis] - 1
    sample = geometry_sample(ORIGINAL_AFFINE @ flip, processed.shape, ORIGINAL_AFFINE,
                             labels.shape)
    assert not np.array_equal(processed, labels)
    np.testing.assert_array_equal(
        predict_labels(value_model(), processed, sample), labels)


def test_axis_permutation_and_flip_map_back_exactly():
    labels = blob_labels((12, 10, 8))
    processed = np.flip(labels.transpose(2, 0, 1), 0).copy()  # (8, 12, 10)
    # processed voxel (a, b, c) = original voxel (b, c, 7 - a)
    to_original = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 7], [0, 0, 0, 1.]])
    sample = geometry_sample(ORIGINAL_AFFINE @ to_original, processed.shape,
                             ORIGINAL_AFFINE, labels.shape)
    model = value_model(keep_logits=True)
    inputs = torch.as_tensor(processed, dtype=torch.float32)[None, None]
    (result, ) = model.predict(inputs, [sample])
    np.testing.assert_array_equal(result.pred_sem_seg.data[0].numpy(), labels)
    assert result.seg_logits.shape == labels.shape


def test_resampling_in_slabs_equals_one_pass(monkeypatch):
    from mmseg_fusion.models.segmentors import volume_encoder_decoder
    scores = torch.randn(3, 9, 11, 7)
    voxel_map = np.array([[0.7, 0.1, 0, 0.3], [0, -0.9, 0, 9.2], [0.05, 0, 1.2, -0.4],
                          [0, 0, 0, 1]])
    one = volume_encoder_decoder.resample_to_original(scores, voxel_map, (10, 12, 6),
                                                      True)
    monkeypatch.setattr(volume_encoder_decoder, 'RESAMPLE_CHUNK_ELEMENTS', 500)
    slabs = volume_encoder_decoder.resample_to_original(scores, voxel_map, (10, 12, 6),
                                                        True)
    assert torch.equal(one[0], slabs[0]) and torch.equal(one[1], slabs[1])
    assert one[0].shape == (1, 10, 12, 6) and one[1].shape == (3, 10, 12, 6)
    # the sampled scores are the trilinear interpolation at voxel_map @ v
    v = np.array([4, 5, 3, 1.])
    p = voxel_map @ v
    lo = np.floor(p[:3]).astype(int)
    frac = p[:3] - lo
    expected = 0
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod([f if c else 1 - f for c, f in zip(corner, frac)])
        expected = expected + weight * scores[(slice(None), *(lo + corner))]
    torch.testing.assert_close(one[1][:, 4, 5, 3], expected.float())


def test_finer_spacing_maps_back_exactly():
    labels = blob_labels((12, 10, 8))
    # processed voxel p = original voxel p / 2 (spacing halved, same origin)
    grid = np.meshgrid(*[np.arange(2 * s - 1) for s in labels.shape], indexing='ij')
    processed = labels[tuple(np.round(g / 2 + 1e-3).astype(int) for g in grid)]
    half = np.diag([0.5, 0.5, 0.5, 1.])
    sample = geometry_sample(ORIGINAL_AFFINE @ half, processed.shape, ORIGINAL_AFFINE,
                             labels.shape)
    np.testing.assert_array_equal(
        predict_labels(value_model(), processed, sample), labels)


@pytest.mark.parametrize('pixdim', [(1.3, 1.1, 1.7), (0.6, 0.5, 1.2)])
def test_monai_orientation_and_spacing_map_back(pixdim):
    """The real test-time path: MONAI reorients (LPS-like -> RAS) and resamples the
    image; the prediction on that grid comes back onto the label's grid."""
    labels = blob_labels((40, 36, 16), seed=3)
    original_affine = np.array([[-0.8, 0, 0, 20.], [0, -0.9, 0, 25.], [0, 0, 2.5, -30.],
                                [0, 0, 0, 1]])
    image = MetaTensor(
        torch.as_tensor(labels[None], dtype=torch.float32),
        affine=torch.as_tensor(original_affine))
    data = Orientationd(
        'img', axcodes='RAS', labels=(('L', 'R'), ('P', 'A'), ('I', 'S')))(
            dict(img=image))
    data = Spacingd('img', pixdim=pixdim, mode='nearest')(data)
    processed = data['img']
    assert processed.shape[1:] != labels.shape
    sample = geometry_sample(processed.affine.numpy().astype(np.float64),
                             processed.shape[1:], original_affine, labels.shape)
    predicted = predict_labels(value_model(), processed[0].as_tensor().numpy(), sample)
    assert predicted.shape == labels.shape
    agreement = (predicted == labels).mean()
    assert agreement > (0.995 if pixdim[0] < 0.8 else 0.98), agreement
    for label in (1, 2):  # no organ lost or shifted: Dice per label
        dice = 2 * ((predicted == label) &
                    (labels == label)).sum() / ((predicted == label).sum() +
                                                (labels == label).sum())
        assert dice > 0.9, (label, dice)


def test_test_step_with_volume_samples_end_to_end():
    """mmengine's test_step: preprocessor (list of (C, D, H, W) volumes) -> predict in
    sliding windows -> original grid."""
    labels = blob_labels((12, 10, 8))
    processed = np.flip(labels, 0).copy()
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, 11
    sample = geometry_sample(ORIGINAL_AFFINE @ flip, processed.shape, ORIGINAL_AFFINE,
                             labels.shape)
    sample.gt_sem_seg = VolumeData(data=torch.as_tensor(labels)[None])
    model = value_model(mode='slide', patch_size=(8, 8, 8)).eval()
    (result, ) = model.test_step(
        dict(
            inputs=[torch.as_tensor(processed, dtype=torch.int16)[None]],
            data_samples=[sample]))
    assert result.pred_sem_seg.shape == result.gt_sem_seg.shape == labels.shape
    assert torch.equal(result.pred_sem_seg.data, result.gt_sem_seg.data)


@needs_ct_sample
def test_real_ct_labels_come_back_aligned_through_the_test_pipeline(tmp_path):
    """The real CT's organ labels, read as the image, go through the 3-D test pipeline
    (reorientation RAS -> LPI and resampling from 3 mm to finer spacing, image only)
    and the value head; the prediction must come back on the label's own grid, organ
    by organ."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmseg.registry import TRANSFORMS
    label_path = write_btcv_label(tmp_path / 'case0001.nii.gz')
    pipeline = Compose([
        TRANSFORMS.build(t) for t in [
            dict(type='LoadVolumeFromFile', num_classes=14),
            dict(
                type='MONAITransform',
                transform='Orientationd',
                keys='img',
                axcodes='LPI',
                labels=(('L', 'R'), ('P', 'A'), ('I', 'S'))),
            dict(
                type='MONAITransform',
                transform='Spacingd',
                keys='img',
                pixdim=(2.0, 2.5, 2.5),
                mode='nearest'),
            dict(type='PackVolumeInputs'),
        ]
    ])
    data = pipeline(
        dict(
            img_path=str(label_path), seg_map_path=str(label_path), case_id='case0001'))
    assert data['inputs'].shape[1:] != data['data_samples'].gt_sem_seg.shape
    model = VolumeEncoderDecoder(
        backbone=dict(type='VolumeSegTestIdentityBackbone', size_divisor=16),
        decode_head=dict(type='VolumeSegTestValueHead', num_classes=14),
        test_cfg=dict(mode='whole', progress=False))
    (result, ) = model.test_step(pseudo_collate([data]))
    predicted = result.pred_sem_seg.data[0].numpy()
    labels = result.gt_sem_seg.data[0].numpy()
    assert predicted.shape == labels.shape == (122, 101, 30)
    assert (predicted == labels).mean() > 0.995
    for organ in np.unique(labels)[1:]:
        dice = 2 * ((predicted == organ) &
                    (labels == organ)).sum() / ((predicted == organ).sum() +
                                                (labels == organ).sum())
        assert dice > 0.95, (organ, dice)


# --- training ----------------------------------------------------------------------


def test_loss_lowers_through_the_segmentor():
    model = VolumeEncoderDecoder(
        backbone=dict(type='VolumeSegTestConvBackbone', size_divisor=2),
        decode_head=dict(type='VolumeSegTestConvHead', scale=2),
        test_cfg=dict(mode='slide', patch_size=(8, 8, 8), progress=False))
    # labels constant on 2x2x2 blocks: the stride-2 stand-in can fit them
    volumes = [
        torch.randn(1, 4, 4, 4).repeat_interleave(2, 1).repeat_interleave(
            2, 2).repeat_interleave(2, 3) for _ in range(2)
    ]
    samples = [
        VolumeSegDataSample(gt_sem_seg=VolumeData(data=(v > 0).long())) for v in volumes
    ]
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=0.05))
    losses = [
        model.train_step(dict(inputs=volumes, data_samples=samples),
                         optim)['decode.loss_ce'].item() for _ in range(15)
    ]
    assert losses[-1] < 0.7 * losses[0], losses
    logits = model(torch.stack(volumes), mode='tensor')
    assert logits.shape == (2, 2, 8, 8, 8)


# --- bad input ---------------------------------------------------------------------


def test_four_dimensional_input_is_refused():
    model = value_model()
    x = torch.zeros(1, 8, 8, 8)
    for call in (lambda: model.predict(x), lambda: model.loss(x, []),
                 lambda: model(x, mode='tensor')):
        with pytest.raises(ValueError, match=r'\(N, C, D, H, W\).*\(1, 8, 8, 8\)'):
            call()


def test_patch_not_divisible_by_the_stride_is_refused_at_build():
    with pytest.raises(
            ValueError, match=r'patch_size=\(64, 48, 40\).*side 40.*'
            r'stride 16'):
        value_model(size_divisor=16, mode='slide', patch_size=(64, 48, 40))
    value_model(size_divisor=16, mode='slide', patch_size=(64, 48, 32))


def test_training_sides_not_divisible_are_refused():
    model = VolumeEncoderDecoder(
        backbone=dict(type='VolumeSegTestConvBackbone', size_divisor=4),
        decode_head=dict(type='VolumeSegTestConvHead', scale=4))
    with pytest.raises(ValueError, match=r'\(8, 10, 8\).*stride 4'):
        model.loss(torch.zeros(1, 1, 8, 10, 8), [])


@pytest.mark.parametrize('cfg,match', [
    (dict(mode='slide'), 'patch_size .* required'),
    (dict(mode='sliding'), 'test_cfg.mode'),
    (dict(crop_size=(8, 8, 8)), "unknown keys \\['crop_size'\\]"),
    (dict(patch_size=(8, 8)), 'test_cfg.patch_size'),
    (dict(overlap=1.0), 'test_cfg.overlap'),
    (dict(sw_batch_size=0), 'test_cfg.sw_batch_size'),
    (dict(blend_mode='linear'), 'test_cfg.blend_mode'),
    (dict(mirror_axes=(0, 3)), 'test_cfg.mirror_axes'),
    (dict(mirror_axes=(1, 1)), 'test_cfg.mirror_axes'),
    (dict(stitch_device='gpu0'), 'test_cfg.stitch_device'),
    (dict(keep_logits='yes'), 'test_cfg.keep_logits'),
])
def test_bad_test_cfg_is_refused(cfg, match):
    with pytest.raises(ValueError, match=match):
        parse_test_cfg(cfg)


def test_test_cfg_defaults():
    cfg = parse_test_cfg(dict(mode='slide', patch_size=32, mirror_axes=[2, 0]), 16)
    assert cfg == dict(
        mode='slide',
        patch_size=(32, 32, 32),
        overlap=(0.5, ) * 3,
        sw_batch_size=4,
        blend_mode='gaussian',
        sigma_scale=(0.125, ) * 3,
        mirror_axes=(0, 2),
        stitch_device=None,
        progress=True,
        progress_interval=5.0,
        keep_logits=False)
    assert parse_test_cfg(None)['mode'] == 'whole'


def test_img_shape_other_than_the_input_is_refused():
    sample = VolumeSegDataSample(metainfo=dict(img_shape=(8, 8, 9)))
    with pytest.raises(ValueError, match=r'img_shape \(8, 8, 9\).*\(8, 8, 8\)'):
        value_model().predict(torch.zeros(1, 1, 8, 8, 8), [sample])
