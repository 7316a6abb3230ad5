"""Tests for mmseg_fusion/datasets/transforms/load_volume.py on the real CT sample and
on deliberately broken files (issue 7, section 6)."""
import gzip
import re
import shutil

import nibabel as nib
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

from tests.test_datasets.volume_data import (CT_LABEL, CT_SMALL, needs_ct,
                                             write_btcv_label, write_raw_nifti)


def _load(img_path, seg_map_path=None, **kwargs):
    results = dict(
        img_path=str(img_path), seg_map_path=seg_map_path and str(seg_map_path))
    results.update(kwargs.pop('results', {}))
    return TRANSFORMS.build(dict(type='LoadVolumeFromFile', **kwargs))(results)


@pytest.fixture(scope='module')
def btcv_label_file(tmp_path_factory):
    return write_btcv_label(tmp_path_factory.mktemp('label') / 'case0001.nii.gz')


@needs_ct
def test_real_ct_keeps_voxels_and_geometry(btcv_label_file):
    source = nib.load(str(CT_SMALL))
    results = _load(CT_SMALL, btcv_label_file, results=dict(num_classes=14))
    img, seg = results['img'], results['gt_seg_map']
    assert img.shape == (1, 122, 101, 30) and img.dtype == np.float32
    assert img.flags.c_contiguous and seg.flags.c_contiguous
    np.testing.assert_array_equal(img[0], np.asanyarray(source.dataobj))
    assert seg.shape == (122, 101, 30) and seg.dtype == np.uint8
    expected = np.asanyarray(nib.load(str(btcv_label_file)).dataobj)
    np.testing.assert_array_equal(seg, expected)
    assert set(np.unique(seg)) == set(range(14)) - {5}  # no esophagus in this slab
    np.testing.assert_array_equal(results['affine'], source.affine)
    assert results['affine'].dtype == np.float64
    assert results['spacing'] == (3.0, 3.0, 3.0)
    np.testing.assert_array_equal(results['original_affine'], source.affine)
    assert results['original_affine'] is not results['affine']
    assert results['original_spacing'] == (3.0, 3.0, 3.0)
    assert results['original_shape'] == (122, 101, 30)
    assert results['transforms'] == []
    assert results['case_id'] == 'example_ct_sm'


@needs_ct
def test_real_label_ids_outside_range_name_file_ids_and_range():
    # The raw TotalSegmentator label holds ids up to 117: not BTCV's 0..13.
    with pytest.raises(ValueError) as error:
        _load(CT_SMALL, CT_LABEL, results=dict(num_classes=14))
    message = str(error.value)
    assert str(CT_LABEL) in message and '0..13' in message
    assert re.search(r'\b14, 18, 19, 20\b', message) and '117' in message
    # The argument takes precedence over the dataset's num_classes.
    assert _load(
        CT_SMALL, CT_LABEL, num_classes=118,
        results=dict(num_classes=14))['gt_seg_map'].max() == 117


@needs_ct
def test_unlabelled_case_and_with_seg_false(btcv_label_file):
    assert 'gt_seg_map' not in _load(CT_SMALL, None)
    assert 'gt_seg_map' not in _load(CT_SMALL, btcv_label_file, with_seg=False)
    kept = _load(CT_SMALL, None, results=dict(case_id='case0007'))
    assert kept['case_id'] == 'case0007'


@needs_ct
def test_plain_nii_suffix_and_float64(tmp_path):
    plain = tmp_path / 'case.nii'
    nib.save(nib.load(str(CT_SMALL)), str(plain))
    results = _load(plain, dtype='float64')
    assert results['img'].dtype == np.float64 and results['case_id'] == 'case'


@needs_ct
def test_label_shape_differs_names_both_files_and_shapes(tmp_path):
    source = nib.load(str(CT_LABEL))
    cut = tmp_path / 'cut.nii.gz'
    nib.save(
        nib.Nifti1Image(np.asanyarray(source.dataobj)[:, :, :29], source.affine),
        str(cut))
    with pytest.raises(ValueError) as error:
        _load(CT_SMALL, cut)
    message = str(error.value)
    assert str(cut) in message and str(CT_SMALL) in message
    assert '(122, 101, 29)' in message and '(122, 101, 30)' in message


@needs_ct
def test_label_affine_differs_names_both_files_and_affines(tmp_path):
    source = nib.load(str(CT_LABEL))
    shifted = source.affine.copy()
    shifted[0, 3] += 3.0  # one voxel
    moved = tmp_path / 'moved.nii.gz'
    nib.save(nib.Nifti1Image(np.asanyarray(source.dataobj), shifted), str(moved))
    with pytest.raises(ValueError) as error:
        _load(CT_SMALL, moved)
    message = str(error.value)
    assert str(moved) in message and str(CT_SMALL) in message
    assert 'affine' in message and '-174.956' in message and '-177.956' in message
    # Float noise below the tolerance passes.
    shifted[0, 3] -= 3.0 - 1e-5
    nib.save(nib.Nifti1Image(np.asanyarray(source.dataobj), shifted), str(moved))
    assert _load(CT_SMALL, moved)['gt_seg_map'].shape == (122, 101, 30)


@pytest.mark.parametrize('name', ['case.mha', 'case.nrrd', 'case.nii.zip', 'case.npy'])
def test_wrong_suffix_names_file_and_accepted_suffixes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b'not a volume')
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        _load(path)
    assert "'.nii', '.nii.gz'" in str(error.value)


def test_wrong_label_suffix(tmp_path):
    image = tmp_path / 'img.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), str(image))
    with pytest.raises(ValueError, match=r'label .*seg\.png is not a NIfTI file'):
        _load(image, tmp_path / 'seg.png')


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'x.nii.gz'))):
        _load(tmp_path / 'x.nii.gz')


@needs_ct
@pytest.mark.parametrize('damage', ['header', 'truncated', 'junk'])
def test_broken_file_gives_one_error_naming_it(tmp_path, damage):
    path = tmp_path / 'broken.nii.gz'
    data = CT_SMALL.read_bytes()
    if damage == 'header':
        path.write_bytes(data[:40])  # the gzip stream stops inside the header
    elif damage == 'truncated':
        path.write_bytes(data[:len(data) // 2])  # header fine, voxels cut
    else:
        path.write_bytes(gzip.compress(b'\x00' * 1000))
    with pytest.raises(ValueError, match=rf'cannot read .*{re.escape(str(path))}'):
        _load(path)


def test_zero_pixdim_without_sform_is_refused(tmp_path):
    # nibabel would silently turn the zeros into 1 mm.
    def no_spacing(header):
        header['pixdim'][1:4] = 0
        header['qform_code'] = 0
        header['sform_code'] = 0

    path = write_raw_nifti(tmp_path / 'nospacing.nii.gz', np.zeros((4, 5, 6), np.int16),
                           no_spacing)
    assert nib.load(str(path)).header.get_zooms() == (1.0, 1.0, 1.0)
    with pytest.raises(
            ValueError, match=rf'{re.escape(str(path))} has no voxel spacing'):
        _load(path)


def test_sform_with_zero_scale_is_refused(tmp_path):

    def zero_sform(header):
        header['sform_code'] = 1
        header['srow_x'] = [0, 0, 0, 10]
        header['srow_y'] = [0, 0, 0, 20]
        header['srow_z'] = [0, 0, 0, 30]

    path = write_raw_nifti(tmp_path / 'zero.nii', np.zeros((4, 5, 6), np.int16),
                           zero_sform)
    with pytest.raises(
            ValueError, match=rf'{re.escape(str(path))} has no voxel spacing'):
        _load(path)


def test_label_without_spacing_is_refused_too(tmp_path):
    image = tmp_path / 'img.nii.gz'
    nib.save(
        nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.diag([2., 2, 2, 1])),
        str(image))

    def no_spacing(header):
        header['pixdim'][1:4] = 0
        header['qform_code'] = header['sform_code'] = 0

    label = write_raw_nifti(tmp_path / 'lab.nii.gz', np.zeros((4, 5, 6), np.uint8),
                            no_spacing)
    # The label's affine (1 mm after nibabel's fix) differs from the image's 2 mm.
    with pytest.raises(ValueError, match='different affines'):
        _load(image, label)


def test_four_d_image_moves_channels_first(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 5, 4, 2)).astype(np.float32)
    path = tmp_path / 'two_channels.nii.gz'
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(path))
    results = _load(path)
    assert results['img'].shape == (2, 6, 5, 4)
    np.testing.assert_array_equal(results['img'][1], data[..., 1])
    assert results['spacing'] == (1.5, 1.5, 2.0)
    assert results['original_shape'] == (6, 5, 4)


def test_bad_image_rank(tmp_path):
    path = tmp_path / 'slice.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((6, 5), np.float32), np.eye(4)), str(path))
    with pytest.raises(ValueError, match=r'has shape \(6, 5\)'):
        _load(path)


def test_label_dtypes(tmp_path):
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    image = tmp_path / 'img.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), affine), str(image))
    label = tmp_path / 'lab.nii.gz'
    ids = np.zeros((3, 3, 3, 1), np.float32)  # float, with a trailing channel
    ids[0, 0, 0] = 300
    nib.save(nib.Nifti1Image(ids, affine), str(label))
    seg = _load(image, label)['gt_seg_map']
    assert seg.dtype == np.int16 and seg.shape == (3, 3, 3) and seg[0, 0, 0] == 300
    ids[0, 0, 0] = 2.5
    nib.save(nib.Nifti1Image(ids, affine), str(label))
    with pytest.raises(ValueError, match=rf'{re.escape(str(label))} holds non-integer'):
        _load(image, label)
    ids[0, 0, 0] = -1
    nib.save(nib.Nifti1Image(ids, affine), str(label))
    with pytest.raises(ValueError, match=r'ids outside .*: -1 \(expected ids >= 0\)'):
        _load(image, label)


@pytest.mark.parametrize('kwargs, name', [(dict(with_seg=1), 'with_seg'),
                                          (dict(dtype='int16'), 'dtype'),
                                          (dict(num_classes=0), 'num_classes'),
                                          (dict(num_classes=True), 'num_classes'),
                                          (dict(affine_atol=-1), 'affine_atol')])
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TRANSFORMS.build(dict(type='LoadVolumeFromFile', **kwargs))


def test_repr():
    transform = TRANSFORMS.build(dict(type='LoadVolumeFromFile', num_classes=14))
    assert repr(transform) == ("LoadVolumeFromFile(with_seg=True, dtype='float32', "
                               'num_classes=14, affine_atol=0.001)')


@needs_ct
def test_reads_a_copy_outside_shared_data(tmp_path):
    copy = tmp_path / 'img0001.nii.gz'
    shutil.copy(CT_SMALL, copy)
    assert _load(copy)['case_id'] == 'img0001'
