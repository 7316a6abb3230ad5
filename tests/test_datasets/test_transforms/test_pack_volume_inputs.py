"""Tests for mmseg_fusion/datasets/transforms/pack_volume_inputs.py."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmseg.registry import TRANSFORMS

from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from tests.test_datasets.volume_data import CT_SMALL, needs_ct, write_btcv_label

META_KEYS = {
    'case_id', 'img_path', 'seg_map_path', 'affine', 'spacing', 'img_shape',
    'original_affine', 'original_spacing', 'original_shape', 'transforms'
}


def _pack(results, **kwargs):
    return TRANSFORMS.build(dict(type='PackVolumeInputs', **kwargs))(results)


@needs_ct
def test_packs_the_real_ct_and_its_label(tmp_path):
    label = write_btcv_label(tmp_path / 'case0001.nii.gz')
    load = TRANSFORMS.build(dict(type='LoadVolumeFromFile'))
    results = load(
        dict(
            img_path=str(CT_SMALL),
            seg_map_path=str(label),
            case_id='case0001',
            num_classes=14))
    packed = _pack(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == (1, 122, 101, 30) and inputs.dtype == torch.float32
    assert inputs.is_contiguous()
    np.testing.assert_array_equal(inputs.numpy(), results['img'])
    assert isinstance(sample, VolumeSegDataSample)
    gt = sample.gt_sem_seg.data
    assert isinstance(sample.gt_sem_seg, VolumeData)
    assert gt.shape == (1, 122, 101, 30) and gt.dtype == torch.int64
    np.testing.assert_array_equal(gt[0].numpy(), results['gt_seg_map'])
    assert set(sample.metainfo) == META_KEYS
    assert sample.case_id == 'case0001' and sample.img_shape == (122, 101, 30)
    assert sample.original_shape == (122, 101, 30)
    assert sample.spacing == (3.0, 3.0, 3.0) and sample.transforms == []
    np.testing.assert_array_equal(sample.affine, results['affine'])
    batch = pseudo_collate([packed, packed])
    assert len(batch['inputs']) == 2 and len(batch['data_samples']) == 2


def test_label_may_keep_the_original_grid():
    # Test pipelines resample the image only.
    packed = _pack(
        dict(
            img=np.zeros((1, 8, 6, 4), np.float32),
            gt_seg_map=np.ones((16, 12, 8), np.uint8)))
    assert packed['inputs'].shape == (1, 8, 6, 4)
    assert packed['data_samples'].gt_sem_seg.shape == (16, 12, 8)
    assert packed['data_samples'].img_shape == (8, 6, 4)


def test_unlabelled_and_custom_meta_keys():
    img = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    view = np.moveaxis(img, 1, 3)  # (2, 4, 5, 3), not contiguous
    packed = _pack(
        dict(img=view, case_id='x', extra=7), meta_keys=('case_id', 'extra', 'absent'))
    assert packed['inputs'].is_contiguous() and packed['inputs'].dtype == torch.float32
    np.testing.assert_array_equal(packed['inputs'].numpy(), view.astype(np.float32))
    sample = packed['data_samples']
    assert 'gt_sem_seg' not in sample
    assert set(sample.metainfo) == {'case_id', 'extra'}


def test_tensor_image_is_accepted():
    packed = _pack(dict(img=torch.ones(1, 2, 3, 4, dtype=torch.float64)))
    assert packed['inputs'].dtype == torch.float32


@pytest.mark.parametrize('results, match', [
    (dict(img=np.zeros((8, 6, 4), np.float32)), r'img.*\(C, D, H, W\).*\(8, 6, 4\)'),
    (dict(img=np.zeros((1, 8, 6, 4), np.float32), gt_seg_map=np.zeros(
        (1, 8, 6, 4))), r'gt_seg_map.*\(D, H, W\).*\(1, 8, 6, 4\)'),
])
def test_bad_ranks(results, match):
    with pytest.raises(ValueError, match=match):
        _pack(results)


def test_bad_meta_keys():
    with pytest.raises(ValueError, match='meta_keys'):
        TRANSFORMS.build(dict(type='PackVolumeInputs', meta_keys=[1]))
