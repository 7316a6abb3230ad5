"""Tests for mmseg_fusion/datasets/transforms/cached_pipeline.py on the real CT: same
results from the cache, keys that follow config and files, atomic writes, concurrent
workers, refusal of random transforms."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from mmseg.registry import TRANSFORMS

from mmseg_fusion.datasets.transforms import LoadVolumeFromFile
from tests.test_datasets.volume_data import CT_SMALL, needs_ct, write_btcv_label

pytestmark = needs_ct

PREPROCESS = [
    dict(type='LoadVolumeFromFile'),
    dict(type='MONAITransform', transform='Orientationd', axcodes='LPS'),
    dict(
        type='MONAITransform',
        transform='Spacingd',
        pixdim=(3.0, 3.0, 2.0),
        mode=('bilinear', 'nearest')),
    dict(
        type='MONAITransform',
        transform='ScaleIntensityRanged',
        keys='img',
        a_min=-175,
        a_max=250,
        b_min=0.0,
        b_max=1.0,
        clip=True),
]


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    """The real CT slab and its BTCV label, copied (so a test may touch them)."""
    folder = tmp_path_factory.mktemp('case')
    shutil.copy(CT_SMALL, folder / 'case0001.nii.gz')
    write_btcv_label(folder / 'label0001.nii.gz')
    return folder


def _results(case, case_id='case0001'):
    return dict(
        img_path=str(case / 'case0001.nii.gz'),
        seg_map_path=str(case / 'label0001.nii.gz'),
        case_id=case_id,
        num_classes=14,
        sample_idx=0)


def _cached(cache_dir, transforms=PREPROCESS):
    return TRANSFORMS.build(
        dict(type='CachedPipeline', transforms=transforms, cache_dir=str(cache_dir)))


def _entries(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir())


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key] and type(a[key]) is type(b[key]), key


def _refuse_loading(monkeypatch):

    def fail(self, results):
        raise AssertionError('the cached entry should have been used')

    monkeypatch.setattr(LoadVolumeFromFile, 'transform', fail)


def test_second_load_comes_from_cache_and_equals_the_first(case, tmp_path, monkeypatch):
    first = _cached(tmp_path)(_results(case))
    assert first['img'].shape == (1, 122, 101, 44) and first['img'].dtype == np.float32
    assert first['gt_seg_map'].dtype == np.uint8
    assert first['spacing'] == pytest.approx((3.0, 3.0, 2.0))
    assert len(first['transforms']) == 2  # orientation and spacing
    names = _entries(tmp_path)
    assert len(names) == 3 and all(n.startswith('case0001_') for n in names)
    assert sum(n.endswith('.npy') for n in names) == 2  # img, gt_seg_map
    json_name = next(n for n in names if n.endswith('.json'))
    meta = json.loads((tmp_path / json_name).read_text())
    assert sorted(meta['arrays']) == ['gt_seg_map', 'img']
    assert 'num_classes' not in meta['values']  # untouched keys are not stored

    _refuse_loading(monkeypatch)
    again = _cached(tmp_path)(_results(case))
    _assert_same(first, again)
    assert isinstance(again['spacing'], tuple)
    assert isinstance(again['original_shape'], tuple)
    assert again['affine'].dtype == np.float64
    assert again['transforms'] == first['transforms']


def test_new_entry_when_config_or_file_changes(case, tmp_path):
    _cached(tmp_path)(_results(case))
    other = [dict(cfg) for cfg in PREPROCESS]
    other[2] = dict(other[2], pixdim=(3.0, 3.0, 2.5))
    out = _cached(tmp_path, other)(_results(case))
    assert out['spacing'] == pytest.approx((3.0, 3.0, 2.5))
    assert len([n for n in _entries(tmp_path) if n.endswith('.json')]) == 2
    # A replaced source file (new modification time) is read again.
    label = case / 'label0001.nii.gz'
    stat = label.stat()
    os.utime(label, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _cached(tmp_path)(_results(case))
    assert len([n for n in _entries(tmp_path) if n.endswith('.json')]) == 3


def test_damaged_entry_is_recomputed(case, tmp_path):
    first = _cached(tmp_path)(_results(case))
    npy = [tmp_path / n for n in _entries(tmp_path) if n.endswith('.img.npy')][0]
    npy.write_bytes(npy.read_bytes()[:1000])
    again = _cached(tmp_path)(_results(case))
    _assert_same(first, again)
    assert np.load(npy).shape == first['img'].shape  # rewritten whole


def test_killed_write_leaves_no_entry_and_no_temporary_file(case, tmp_path,
                                                            monkeypatch):
    real_save = np.save
    calls = []

    def save_then_die(fileobj, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array: the run is 'killed' mid-entry
            fileobj.write(b'half')
            raise KeyboardInterrupt
        real_save(fileobj, array, **kwargs)

    monkeypatch.setattr(np, 'save', save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _cached(tmp_path)(_results(case))
    names = _entries(tmp_path)
    assert len(names) == 1 and names[0].endswith('.npy')  # no json: no entry
    assert not any(n.endswith('.tmp') for n in names)
    monkeypatch.setattr(np, 'save', real_save)
    out = _cached(tmp_path)(_results(case))  # completes the entry
    assert len(_entries(tmp_path)) == 3 and out['img'].shape == (1, 122, 101, 44)


class _SameCase(torch.utils.data.Dataset):
    """Four samples of one case: two dataloader workers race for its entry."""

    def __init__(self, case, cache_dir):
        self.case, self.cache_dir = case, cache_dir

    def __len__(self):
        return 4

    def __getitem__(self, index):
        out = _cached(self.cache_dir)(_results(self.case))
        return out['img'].sum(dtype=np.float64), int(out['gt_seg_map'].sum())


def test_concurrent_dataloader_workers_share_one_valid_entry(case, tmp_path):
    loader = torch.utils.data.DataLoader(
        _SameCase(case, tmp_path),
        batch_size=None,
        num_workers=2,
        multiprocessing_context='fork')
    sums = [(float(a), int(b)) for a, b in loader]
    assert len(set(sums)) == 1
    names = _entries(tmp_path)
    assert len(names) == 3 and not any(n.endswith('.tmp') for n in names)
    img_sum, seg_sum = _SameCase(case, tmp_path)[0]
    assert (float(img_sum), seg_sum) == sums[0]


def test_case_ids_are_kept_apart_and_required(case, tmp_path):
    _cached(tmp_path)(_results(case, 'case0001'))
    _cached(tmp_path)(_results(case, 'case 2/x'))
    assert sum(n.startswith('case_2_x_') for n in _entries(tmp_path)) == 3
    results = _results(case)
    del results['case_id']
    with pytest.raises(KeyError, match='case_id'):
        _cached(tmp_path)(results)


@pytest.mark.parametrize('random_cfg', [
    dict(type='MONAITransform', transform='RandFlipd', prob=0.5),
    dict(
        type='MONAITransform',
        transform='RandCropByPosNegLabeld',
        label_key='gt_seg_map',
        spatial_size=(8, 8, 8)),
    dict(type='RandomFlip', prob=0.5),
])
def test_random_transform_inside_is_refused_at_build(tmp_path, random_cfg):
    with pytest.raises(ValueError, match=r'transforms\[1\] .* is random'):
        _cached(tmp_path, [PREPROCESS[0], random_cfg])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='transforms must be'):
        _cached(tmp_path, [])
    with pytest.raises(ValueError, match='cache_dir'):
        TRANSFORMS.build(
            dict(type='CachedPipeline', transforms=PREPROCESS, cache_dir=''))
    with pytest.raises(ValueError, match='lambda'):
        _cached(tmp_path, [
            PREPROCESS[0],
            dict(
                type='MONAITransform',
                transform='CropForegroundd',
                source_key='img',
                select_fn=lambda x: x > 0)
        ])


def test_repr_lists_inner_transforms(tmp_path):
    text = repr(_cached(tmp_path))
    assert text.startswith('CachedPipeline(transforms=[LoadVolumeFromFile(')
    assert "transform='Spacingd'" in text and str(tmp_path) in text
