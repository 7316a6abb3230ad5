"""Tests for mmseg_fusion/datasets/transforms/monai_transform.py: geometry on the real
CT (orientation, resampling, a full training pipeline), label ids, seeding, errors."""
import copy

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import TRANSFORMS
from monai.data import MetaTensor
from monai.transforms import SpatialResample

from tests.test_datasets.volume_data import CT_SMALL, needs_ct, write_btcv_label

HU_WINDOW = dict(a_min=-175, a_max=250, b_min=0.0, b_max=1.0, clip=True)
RANDOM_PART = [
    dict(
        type='MONAITransform',
        transform='RandCropByPosNegLabeld',
        label_key='gt_seg_map',
        spatial_size=(32, 32, 32),
        pos=1,
        neg=1,
        num_samples=1),
    dict(type='MONAITransform', transform='RandFlipd', spatial_axis=0, prob=0.5),
    dict(type='MONAITransform', transform='RandFlipd', spatial_axis=1, prob=0.5),
    dict(type='MONAITransform', transform='RandFlipd', spatial_axis=2, prob=0.5),
    dict(type='MONAITransform', transform='RandRotate90d', prob=0.5, max_k=3),
    dict(
        type='MONAITransform',
        transform='RandScaleIntensityd',
        keys='img',
        factors=0.1,
        prob=0.5),
    dict(
        type='MONAITransform',
        transform='RandShiftIntensityd',
        keys='img',
        offsets=0.1,
        prob=0.5),
    dict(type='PackVolumeInputs'),
]


def _build(transform, **kwargs):
    return TRANSFORMS.build(dict(type='MONAITransform', transform=transform, **kwargs))


def _run(cfgs, results):
    for cfg in cfgs:
        results = TRANSFORMS.build(cfg)(results)
    return results


def _world(affine, index):
    return (affine @ np.append(np.asarray(index, float), 1.0))[:3]


def _index(affine, world):
    return (np.linalg.inv(affine) @ np.append(world, 1.0))[:3]


@pytest.fixture(scope='module')
def loaded(tmp_path_factory):
    """The real CT slab and its labels in BTCV ids, as LoadVolumeFromFile gives them."""
    if not CT_SMALL.is_file():
        pytest.skip(f'the real CT sample is absent: {CT_SMALL}')
    label = write_btcv_label(tmp_path_factory.mktemp('monai') / 'case0001.nii.gz')
    load = TRANSFORMS.build(dict(type='LoadVolumeFromFile'))
    return load(dict(img_path=str(CT_SMALL), seg_map_path=str(label), num_classes=14))


@pytest.fixture(scope='module')
def resampled(loaded):
    """The deterministic part of a training pipeline at 1.5 mm (computed once)."""
    return _run([
        dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
        dict(
            type='MONAITransform',
            transform='Spacingd',
            pixdim=(1.5, 1.5, 1.5),
            mode=('bilinear', 'nearest')),
        dict(
            type='MONAITransform',
            transform='ScaleIntensityRanged',
            keys='img',
            **HU_WINDOW),
    ], copy.deepcopy(loaded))


def _small(loaded):
    """A 40x40x12 block of the real volume around the kidneys, affine moved along."""
    start = np.array([30, 30, 10])
    out = copy.deepcopy(loaded)
    out['img'] = np.ascontiguousarray(loaded['img'][:, 30:70, 30:70, 10:22])
    out['gt_seg_map'] = np.ascontiguousarray(loaded['gt_seg_map'][30:70, 30:70, 10:22])
    out['affine'] = loaded['affine'].copy()
    out['affine'][:3, 3] = _world(loaded['affine'], start)
    return out


@needs_ct
def test_orientation_to_lps_flips_arrays_and_affine_consistently(loaded):
    results = _build('Orientationd', axcodes='LPS')(copy.deepcopy(loaded))
    img, seg, affine = results['img'], results['gt_seg_map'], results['affine']
    np.testing.assert_array_equal(img, loaded['img'][:, ::-1, ::-1, :])
    np.testing.assert_array_equal(seg, loaded['gt_seg_map'][::-1, ::-1, :])
    assert img.dtype == np.float32 and seg.dtype == np.uint8
    assert np.sign(affine[0, 0]) == -1 and np.sign(affine[1, 1]) == -1
    assert results['spacing'] == pytest.approx((3.0, 3.0, 3.0))
    np.testing.assert_array_equal(results['original_affine'], loaded['affine'])
    # A world point maps to the same voxel value before and after.
    rng = np.random.default_rng(0)
    for index in rng.integers(0, (122, 101, 30), size=(200, 3)):
        old = np.rint(_index(loaded['affine'], _world(affine, index))).astype(int)
        assert img[(0, *index)] == loaded['img'][(0, *old)]
        assert seg[tuple(index)] == loaded['gt_seg_map'][tuple(old)]
    assert len(results['transforms']) == 1
    assert results['transforms'][0].startswith("Orientationd(axcodes='LPS')")


@needs_ct
def test_spacing_halves_voxels_and_keeps_label_ids_and_centroids(loaded, resampled):
    seg, affine = resampled['gt_seg_map'], resampled['affine']
    assert resampled['spacing'] == pytest.approx((1.5, 1.5, 1.5))
    assert resampled['img'].shape == (1, 243, 201, 59)
    assert resampled['img'].dtype == np.float32 and seg.dtype == np.uint8
    assert 0.0 <= resampled['img'].min() and resampled['img'].max() <= 1.0
    old = loaded['gt_seg_map']
    assert set(np.unique(seg)) == set(np.unique(old))  # every organ, no new id
    shifts = []
    for organ in set(np.unique(old)) - {0}:
        before = _world(loaded['affine'], np.argwhere(old == organ).mean(0))
        after = _world(affine, np.argwhere(seg == organ).mean(0))
        shifts.append(np.linalg.norm(after - before))
        volume_before = (old == organ).sum() * 27.0
        volume_after = (seg == organ).sum() * 1.5**3
        assert volume_after == pytest.approx(volume_before, rel=0.08), organ
    # Within one source voxel (3 mm): at exactly half the spacing every other new
    # voxel lies halfway between two old ones, and grid_sample's float rounding
    # decides which neighbour it takes (the pancreas moves 2.3 mm; 0.6 mm typical).
    assert max(shifts) < 3.0 and np.median(shifts) < 1.0
    assert 'Spacingd(pixdim=(1.5, 1.5, 1.5)' in resampled['transforms'][-1]
    assert resampled['transforms'][-1].endswith('(122, 101, 30)->(243, 201, 59)')
    assert len(resampled['transforms']) == 1  # RAS already; intensity not recorded


@needs_ct
def test_full_training_pipeline_on_real_ct(resampled):
    np.random.seed(0)
    with_organs = 0
    for _ in range(8):
        packed = _run(RANDOM_PART, copy.deepcopy(resampled))
        inputs, sample = packed['inputs'], packed['data_samples']
        assert inputs.shape == (1, 32, 32, 32) and inputs.dtype == torch.float32
        assert inputs.is_contiguous()
        gt = sample.gt_sem_seg.data
        assert gt.shape == (1, 32, 32, 32) and gt.dtype == torch.int64
        assert int(gt.min()) >= 0 and int(gt.max()) <= 13
        assert sample.img_shape == (32, 32, 32)
        assert sample.spacing == pytest.approx((1.5, 1.5, 1.5))
        with_organs += bool((gt > 0).any())
    assert with_organs >= 6


@needs_ct
def test_random_transforms_follow_numpy_seed(resampled):

    def draw(seed):
        np.random.seed(seed)
        packed = _run(RANDOM_PART, copy.deepcopy(resampled))
        return packed['inputs'], packed['data_samples'].affine

    first, again, other = draw(3), draw(3), draw(4)
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


class _Crops(torch.utils.data.Dataset):

    def __init__(self, resampled):
        self.resampled = resampled

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return _run(RANDOM_PART, copy.deepcopy(self.resampled))


@needs_ct
def test_mmengine_randomness_seed_reproduces_worker_crops(resampled):

    def crops(seed):
        loader = Runner.build_dataloader(
            dict(
                batch_size=1,
                num_workers=1,
                persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate'),
                dataset=_Crops(resampled)),
            seed=seed)
        return [batch['inputs'][0] for batch in loader]

    first, again, other = crops(11), crops(11), crops(12)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert not torch.equal(first[0], first[1])  # a fresh draw per sample


@needs_ct
def test_test_time_rule_resamples_the_image_only(loaded):
    results = _build(
        'Spacingd', keys=('img', ), pixdim=(1.5, 1.5, 2.0), mode='bilinear')(
            copy.deepcopy(loaded))
    assert results['img'].shape[1:] != results['gt_seg_map'].shape
    assert results['spacing'] == pytest.approx((1.5, 1.5, 2.0))
    assert results['gt_seg_map'].shape == loaded['original_shape'] == (122, 101, 30)
    np.testing.assert_array_equal(results['gt_seg_map'], loaded['gt_seg_map'])
    np.testing.assert_array_equal(results['original_affine'], loaded['affine'])


@needs_ct
def test_recorded_affines_map_a_prediction_back_to_the_original_grid(loaded):
    # What the segmentor does at test time: scores on the processed grid, resampled
    # onto original_affine / original_shape. Here the 'scores' are the processed
    # label's one-hot map, so the result must give the original label back.
    results = _run([
        dict(type='MONAITransform', transform='Orientationd', axcodes='LPS'),
        dict(
            type='MONAITransform',
            transform='Spacingd',
            pixdim=(2.0, 2.0, 2.0),
            mode=('bilinear', 'nearest')),
        dict(
            type='MONAITransform',
            transform='CropForegroundd',
            source_key='gt_seg_map',
            margin=5),
    ], copy.deepcopy(loaded))
    assert len(results['transforms']) == 3
    assert results['gt_seg_map'].shape != results['original_shape']
    seg = torch.as_tensor(results['gt_seg_map'].astype(np.int64))
    scores = torch.nn.functional.one_hot(seg, 14).permute(3, 0, 1, 2).float()
    back = SpatialResample(mode='bilinear')(
        MetaTensor(scores, affine=torch.as_tensor(results['affine'])),
        dst_affine=torch.as_tensor(results['original_affine']),
        spatial_size=results['original_shape'])
    pred, truth = back.argmax(0).numpy(), loaded['gt_seg_map']
    assert pred.shape == truth.shape == (122, 101, 30)
    assert (pred == truth).mean() > 0.99
    for organ in set(np.unique(truth)) - {0}:
        both = ((pred == organ) & (truth == organ)).sum()
        dice = 2 * both / ((pred == organ).sum() + (truth == organ).sum())
        assert dice > 0.95, organ  # 3 mm -> 2 mm -> 3 mm: not exactly invertible


@needs_ct
def test_random_affine_keeps_label_ids_exact(loaded):
    results = _build(
        'RandAffined',
        prob=1.0,
        rotate_range=(0.3, 0.3, 0.3),
        scale_range=0.1,
        mode=('bilinear', 'nearest'),
        padding_mode='zeros')(
            _small(loaded))
    seg = results['gt_seg_map']
    assert seg.dtype == np.uint8
    assert set(np.unique(seg)) <= set(np.unique(loaded['gt_seg_map']))
    assert results['transforms'] and results['transforms'][0].startswith('RandAffined')


@needs_ct
def test_bilinear_label_is_refused(loaded):
    transform = _build('Spacingd', pixdim=(2.0, 2.0, 2.0), mode='bilinear')
    with pytest.raises(ValueError, match='non-integer values: use mode="nearest"'):
        transform(_small(loaded))


@needs_ct
def test_crop_foreground_records_shape(loaded):
    results = _build(
        'CropForegroundd', source_key='gt_seg_map', margin=2)(
            _small(loaded))
    assert results['img'].shape[1:] == results['gt_seg_map'].shape
    assert results['transforms'][0].startswith(
        "CropForegroundd(source_key='gt_seg_map'")


def test_unknown_transform_suggests_close_names():
    with pytest.raises(
            ValueError, match=r"'Spacingdd' is not .*did you mean 'Spacingd'"):
        _build('Spacingdd')
    with pytest.raises(ValueError, match=r"did you mean 'Spacingd'"):
        _build('spacingd')
    with pytest.raises(
            ValueError,
            match=r"'Spacing' is a MONAI array transform: use "
            r"its dictionary version 'Spacingd'"):
        _build('Spacing')
    with pytest.raises(ValueError, match='is not a dictionary transform'):
        _build('NoSuchThingAtAll')
    with pytest.raises(ValueError, match='transform must be'):
        TRANSFORMS.build(dict(type='MONAITransform', transform=None))


def test_bad_transform_arguments_name_the_transform():
    with pytest.raises(
            TypeError, match=r'monai.transforms.Spacingd rejected .*pixdimm'):
        _build('Spacingd', pixdimm=1.5)


@pytest.mark.parametrize('keys', [(), '', [1], None])
def test_bad_keys(keys):
    with pytest.raises(ValueError, match='keys must be'):
        _build('RandFlipd', keys=keys)


def test_several_samples_are_refused():
    with pytest.raises(ValueError, match=r'num_samples must be 1 .* got 4'):
        _build(
            'RandCropByPosNegLabeld',
            label_key='gt_seg_map',
            spatial_size=(8, 8, 8),
            num_samples=4)
    transform = _build(
        'RandCropByPosNegLabeld', label_key='gt_seg_map', spatial_size=(4, 4, 4))
    transform.monai_transform.cropper.num_samples = 2  # sneaked past the check
    seg = np.zeros((8, 8, 8), np.uint8)
    seg[2:6, 2:6, 2:6] = 1
    results = dict(
        img=np.zeros((1, 8, 8, 8), np.float32), gt_seg_map=seg, affine=np.eye(4))
    with pytest.raises(ValueError, match='returned 2 samples.*num_samples=1'):
        transform(results)


def test_missing_keys_are_named():
    results = dict(img=np.zeros((1, 4, 4, 4), np.float32), affine=np.eye(4))
    with pytest.raises(KeyError, match=r"Spacingd needs the keys \['gt_seg_map'\]"):
        _build('Spacingd', pixdim=2.0)(dict(results))
    with pytest.raises(KeyError, match=r"needs the keys \['seg'\]"):
        _build(
            'RandCropByPosNegLabeld',
            keys='img',
            label_key='seg',
            spatial_size=(2, 2, 2))(
                dict(results))
    with pytest.raises(KeyError, match='affine'):
        _build('RandFlipd', keys='img')(dict(img=results['img']))
    out = _build('Spacingd', pixdim=2.0, allow_missing_keys=True)(dict(results))
    assert out['img'].shape == (1, 2, 2, 2) and 'gt_seg_map' not in out


def test_bad_array_rank_is_named():
    with pytest.raises(ValueError, match=r"results\['img'\] must be .* got \(4, 4\)"):
        _build('RandFlipd', keys='img')(dict(img=np.zeros((4, 4)), affine=np.eye(4)))


def test_synthetic_flip_moves_affine_and_keeps_dtypes():
    img = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    seg = (np.arange(60).reshape(3, 4, 5) % 7).astype(np.int16)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    results = _build(
        'RandFlipd', prob=1.0, spatial_axis=2)(
            dict(img=img, gt_seg_map=seg, affine=affine, transforms=['earlier']))
    np.testing.assert_array_equal(results['img'], img[:, :, :, ::-1])
    np.testing.assert_array_equal(results['gt_seg_map'], seg[:, :, ::-1])
    assert results['gt_seg_map'].dtype == np.int16
    assert results['spacing'] == pytest.approx((0.8, 0.8, 2.5))
    # The last slice now sits where the first was.
    np.testing.assert_allclose(
        _world(results['affine'], (0, 0, 4)), (0, 0, 0), atol=1e-9)
    assert results['transforms'][0] == 'earlier' and len(results['transforms']) == 2


def test_repr_is_stable():
    transform = _build('Spacingd', pixdim=(1.5, 1.5, 2.0), mode=('bilinear', 'nearest'))
    assert repr(transform) == (
        "MONAITransform(transform='Spacingd', keys=('img', 'gt_seg_map'), "
        "pixdim=(1.5, 1.5, 2.0), mode=('bilinear', 'nearest'))")
    assert not transform.is_random and _build('RandFlipd').is_random
