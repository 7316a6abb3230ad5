"""Tests for mmseg_fusion/datasets/amos.py on a converted layout built here from the
real CT sample (its labels in BTCV ids: ids 0..13 fit AMOS's 0..15 range, which is all
the loader checks; their organ meaning differs and does not matter here)."""
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from mmseg_fusion.utils.abdominal_labels import AMOS_CLASSES, SYNAPSE_CLASSES
from tests.test_datasets.volume_data import (CT_SMALL, needs_ct, write_btcv_label,
                                             write_layout)

pytestmark = needs_ct

# AMOS 2022's own dataset.json names (its spelling 'arota' included).
AMOS_JSON_NAMES = ('background', 'spleen', 'right kidney', 'left kidney',
                   'gall bladder', 'esophagus', 'liver', 'stomach', 'arota', 'postcava',
                   'pancreas', 'right adrenal gland', 'left adrenal gland', 'duodenum',
                   'bladder', 'prostate/uterus')


@pytest.fixture(autouse=True)
def _mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def label(tmp_path_factory) -> Path:
    return write_btcv_label(tmp_path_factory.mktemp('amos_label') / 'label.nii.gz')


def _layout(root, label, labels=AMOS_CLASSES, protocol='ct'):
    cases = {f'amos_{i:04d}': (CT_SMALL, label) for i in (1, 5, 9, 410)}
    cases['amos_0002'] = (CT_SMALL, None)
    return write_layout(
        root,
        cases,
        labels=labels,
        name='AMOS',
        protocol=protocol,
        splits=dict(
            train=['amos_0001', 'amos_0005'], val=['amos_0009'], test=['amos_0410']),
        test_only=('amos_0002', ),
        extra=dict(unlabelled=['amos_0002']))


def _build(root, **kwargs):
    return DATASETS.build(dict(type='AMOSDataset', data_root=str(root), **kwargs))


def test_splits_classes_and_labelled_test_split(tmp_path, label):
    root = _layout(tmp_path / 'amos', label)
    train, val, test = (_build(root, split=s) for s in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (2, 1, 1)
    assert train.metainfo['classes'] == AMOS_CLASSES and len(AMOS_CLASSES) == 16
    assert len({tuple(c) for c in train.metainfo['palette']}) == 16
    info = test.get_data_info(0)  # the official validation set: labelled
    assert info['case_id'] == 'amos_0410' and info['num_classes'] == 16
    assert info['seg_map_path'] == str(root / 'labelsTr' / 'amos_0410.nii.gz')
    unlabelled = _build(root, split='unlabelled').get_data_info(0)
    assert unlabelled['img_path'] == str(root / 'imagesTs' / 'amos_0002.nii.gz')
    assert unlabelled['seg_map_path'] is None


def test_amos_own_spellings_are_accepted(tmp_path, label):
    root = _layout(tmp_path / 'amos', label, labels=AMOS_JSON_NAMES)
    assert _build(root).metainfo['classes'] == AMOS_CLASSES


def test_pipeline_packs_a_crop(tmp_path, label):
    root = _layout(tmp_path / 'amos', label)
    pipeline = [
        dict(type='LoadVolumeFromFile'),
        dict(
            type='MONAITransform',
            transform='RandCropByPosNegLabeld',
            label_key='gt_seg_map',
            spatial_size=(32, 32, 16),
            pos=1,
            neg=0),
        dict(type='PackVolumeInputs'),
    ]
    sample = _build(root, split='test', pipeline=pipeline)[0]
    assert sample['inputs'].shape == (1, 32, 32, 16)
    gt = sample['data_samples'].gt_sem_seg.data
    assert gt.dtype == torch.int64 and bool((gt > 0).any())
    assert sample['data_samples'].case_id == 'amos_0410'


def test_btcv_labels_are_refused(tmp_path, label):
    from mmseg_fusion.utils.abdominal_labels import BTCV_CLASSES
    root = _layout(tmp_path / 'btcv', label, labels=BTCV_CLASSES)
    with pytest.raises(
            ValueError,
            match=r'disagree with the AMOSDataset classes .*'
            r'tools/dataset_converters/amos\.py'):
        _build(root)


def test_no_transunet_subset_for_amos(tmp_path, label):
    root = _layout(
        tmp_path / 'syn', label, labels=SYNAPSE_CLASSES, protocol='transunet')
    with pytest.raises(ValueError, match='disagree with the AMOSDataset classes'):
        _build(root)


def test_missing_layout_names_the_amos_converter(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'tools/dataset_converters/amos\.py'):
        _build(tmp_path / 'missing')
    (tmp_path / 'imagesTr').mkdir()
    with pytest.raises(
            FileNotFoundError,
            match=r'dataset\.json is missing.*tools/dataset_converters/amos'):
        _build(tmp_path)
