"""Tests for mmseg_fusion/datasets/btcv.py (and the shared medical_volume.py) on a
converted layout built here from the real CT sample."""
import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from mmseg_fusion.utils.abdominal_labels import BTCV_CLASSES, SYNAPSE_CLASSES
from tests.scripts import load_script
from tests.shared_data import TOTALSEG_TO_BTCV, write_btcv_layout
from tests.test_datasets.volume_data import (BTCV_NAMES, CT_LABEL, CT_SMALL, needs_ct,
                                             write_btcv_label, write_layout)

pytestmark = needs_ct

TRAIN_PIPELINE = [
    dict(type='LoadVolumeFromFile'),
    dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
    dict(
        type='MONAITransform',
        transform='Spacingd',
        pixdim=(1.5, 1.5, 2.0),
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
    dict(
        type='MONAITransform',
        transform='RandCropByPosNegLabeld',
        label_key='gt_seg_map',
        spatial_size=(32, 32, 32),
        pos=1,
        neg=1),
    dict(type='PackVolumeInputs'),
]
TEST_PIPELINE = [
    dict(type='LoadVolumeFromFile'),
    dict(type='MONAITransform', transform='Orientationd', keys='img', axcodes='RAS'),
    dict(
        type='MONAITransform',
        transform='Spacingd',
        keys='img',
        pixdim=(1.5, 1.5, 2.0),
        mode='bilinear'),
    dict(
        type='MONAITransform',
        transform='ScaleIntensityRanged',
        keys='img',
        a_min=-175,
        a_max=250,
        b_min=0.0,
        b_max=1.0,
        clip=True),
    dict(type='PackVolumeInputs'),
]


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Pipelines name transforms registered in mmseg's registry."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def label(tmp_path_factory) -> Path:
    return write_btcv_label(tmp_path_factory.mktemp('btcv_label') / 'label.nii.gz')


@pytest.fixture(scope='module')
def layout(tmp_path_factory, label) -> Path:
    """Three labelled cases and one unlabelled, protocol swinunetr-like."""
    cases = {f'case000{i}': (CT_SMALL, label) for i in (1, 2, 3)}
    cases['case0061'] = (CT_SMALL, None)
    return write_layout(
        tmp_path_factory.mktemp('btcv') / 'btcv',
        cases,
        labels=BTCV_CLASSES,
        splits=dict(train=['case0001', 'case0002'], val=['case0003'], test=[]),
        test_only=('case0061', ),
        extra=dict(unlabelled=['case0061']))


def _build(root, **kwargs):
    return DATASETS.build(dict(type='BTCVDataset', data_root=str(root), **kwargs))


def test_lists_the_cases_of_each_split(layout):
    train, val = _build(layout), _build(layout, split='val')
    assert (len(train), len(val)) == (2, 1)
    assert train.metainfo['classes'] == BTCV_CLASSES
    palette = train.metainfo['palette']
    assert len(palette) == 14 and palette[0] == [0, 0, 0]
    assert len({tuple(c) for c in palette}) == 14
    info = train.get_data_info(1)
    assert info['case_id'] == 'case0002' and info['num_classes'] == 14
    assert info['img_path'] == str(layout / 'imagesTr' / 'case0002.nii.gz')
    assert info['seg_map_path'] == str(layout / 'labelsTr' / 'case0002.nii.gz')
    unlabelled = _build(layout, split='unlabelled')
    info = unlabelled.get_data_info(0)
    assert info['img_path'] == str(layout / 'imagesTs' / 'case0061.nii.gz')
    assert info['seg_map_path'] is None and len(unlabelled) == 1


def test_train_pipeline_gives_a_labelled_crop(layout):
    np.random.seed(0)
    sample = _build(layout, pipeline=TRAIN_PIPELINE)[0]
    assert sample['inputs'].shape == (1, 32, 32, 32)
    gt = sample['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 32, 32, 32) and gt.dtype == torch.int64
    assert int(gt.max()) <= 13
    meta = sample['data_samples'].metainfo
    assert meta['case_id'] == 'case0001' and meta['spacing'] == pytest.approx(
        (1.5, 1.5, 2.0))


def test_test_pipeline_keeps_the_label_in_original_space(layout):
    sample = _build(layout, split='val', pipeline=TEST_PIPELINE, test_mode=True)[0]
    data_sample = sample['data_samples']
    assert sample['inputs'].shape == (1, 243, 201, 44)
    assert data_sample.gt_sem_seg.shape == (122, 101, 30)
    assert data_sample.original_shape == (122, 101, 30)
    assert data_sample.img_shape == (243, 201, 44)
    assert data_sample.spacing == pytest.approx((1.5, 1.5, 2.0))
    assert data_sample.original_spacing == (3.0, 3.0, 3.0)
    unlabelled = _build(
        layout,
        split='unlabelled',
        test_mode=True,
        pipeline=[TEST_PIPELINE[0], TEST_PIPELINE[-1]])[0]['data_samples']
    assert 'gt_sem_seg' not in unlabelled and unlabelled.seg_map_path is None


def test_empty_split_is_an_error(layout):
    with pytest.raises(ValueError, match=r"dataset.json splits has no 'test' cases"):
        _build(layout, split='test')


def test_folds(tmp_path, label):
    cases = {f'case{i:04d}': (CT_SMALL, label) for i in range(1, 6)}
    folds = [dict(train=[c for c in cases if c != v], val=[v]) for v in cases]
    root = write_layout(
        tmp_path / 'cv',
        cases,
        labels=BTCV_CLASSES,
        splits=dict(train=list(cases), val=[], test=[]),
        folds=folds,
        protocol='cv5')
    train, val = _build(root, fold=2), _build(root, split='val', fold=2)
    assert [val.get_data_info(0)['case_id']] == ['case0003']
    assert len(train) == 4 and 'case0003' not in {
        train.get_data_info(i)['case_id']
        for i in range(4)
    }
    with pytest.raises(ValueError, match=r'fold must be 0\.\.4 .* got 5'):
        _build(root, fold=5)
    with pytest.raises(ValueError, match=r"no 'val' cases .*5 folds: pass fold=0\.\.4"):
        _build(root, split='val')


def test_fold_without_folds(layout):
    with pytest.raises(
            ValueError, match=r"fold=0 but .* \(protocol 'swinunetr'\) has "
            'no folds'):
        _build(layout, fold=0)


def test_transunet_protocol_takes_its_8_organs_from_dataset_json(tmp_path, label):
    root = write_layout(
        tmp_path / 'synapse', {'case0001': (CT_SMALL, label)},
        labels=SYNAPSE_CLASSES,
        protocol='transunet',
        splits=dict(train=['case0001'], val=[], test=['case0001']))
    dataset = _build(root, split='test', check_files=False)
    assert dataset.metainfo['classes'] == SYNAPSE_CLASSES
    assert dataset.get_data_info(0)['num_classes'] == 9
    btcv = DATASETS.get('BTCVDataset').METAINFO
    palette = dataset.metainfo['palette']
    for name, colour in zip(SYNAPSE_CLASSES, palette):
        assert colour == btcv['palette'][BTCV_CLASSES.index(name)], name
    # The 9-class range is checked: BTCV ids above 8 are refused when the dataset is
    # built, and (without the check) by the loader.
    with pytest.raises(
            ValueError,
            match=r'ids outside .*: \[9, 10, 11, 12, 13\] \(expected '
            r'0\.\.8 for 9 classes\)'):
        _build(root, split='test')
    dataset = _build(
        root,
        split='test',
        pipeline=[dict(type='LoadVolumeFromFile')],
        check_files=False)
    with pytest.raises(
            ValueError,
            match=r'ids outside .*: 9, 10, 11, 12, 13 \(expected '
            r'0\.\.8 for 9 classes\)'):
        dataset[0]


def test_transunet_labels_must_be_btcv_organs(tmp_path, label):
    names = list(SYNAPSE_CLASSES)
    names[3] = 'kidney'
    root = write_layout(
        tmp_path / 'bad', {'case0001': (CT_SMALL, label)},
        labels=names,
        protocol='transunet',
        splits=dict(train=['case0001']))
    with pytest.raises(
            ValueError, match=r"protocol 'transunet'.*unknown: \['kidney'\]"):
        _build(root)


def test_other_spellings_of_the_organs_are_accepted(tmp_path, label):
    names = list(BTCV_NAMES)
    names[10] = 'Portal Vein and Splenic Vein'
    root = write_layout(
        tmp_path / 'spelt', {'case0001': (CT_SMALL, label)},
        labels=names,
        splits=dict(train=['case0001']))
    assert _build(root).metainfo['classes'] == BTCV_CLASSES


@pytest.mark.parametrize('change', ['fewer', 'renamed', 'swapped', 'gap'])
def test_labels_that_disagree_with_the_classes(tmp_path, label, change):
    names = list(BTCV_CLASSES)
    if change == 'fewer':
        names = names[:9]
    elif change == 'renamed':
        names[7] = 'duodenum'
    elif change == 'swapped':
        names[2], names[3] = names[3], names[2]
    root = write_layout(
        tmp_path / change, {'case0001': (CT_SMALL, label)},
        labels=names,
        splits=dict(train=['case0001']))
    if change == 'gap':
        meta = json.loads((root / 'dataset.json').read_text())
        meta['labels']['20'] = meta['labels'].pop('13')
        (root / 'dataset.json').write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=r'ids 0\.\.13 \(contiguous\)'):
            _build(root)
        return
    with pytest.raises(
            ValueError,
            match=r'labels .* disagree with the BTCVDataset '
            r'classes .*tools/dataset_converters/btcv\.py'):
        _build(root)


def test_missing_data_root_or_dataset_json_names_the_converter(tmp_path):
    with pytest.raises(
            FileNotFoundError,
            match=r'not a folder; make it .* tools/dataset_converters/btcv\.py'):
        _build(tmp_path / 'nowhere')
    (tmp_path / 'raw' / 'RawData').mkdir(parents=True)
    with pytest.raises(
            FileNotFoundError,
            match=r'dataset\.json is missing.*tools/dataset_converters/btcv\.py'):
        _build(tmp_path / 'raw')
    (tmp_path / 'raw' / 'dataset.json').write_text('{"labels": ')
    with pytest.raises(ValueError, match='not valid JSON'):
        _build(tmp_path / 'raw')


def test_missing_image_or_label_is_named(tmp_path, label):
    root = write_layout(
        tmp_path / 'gaps', {'case0001': (CT_SMALL, None)},
        labels=BTCV_CLASSES,
        splits=dict(train=['case0001'], val=['case0009'], test=['case0001']))
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(
                f"case 'case0001' of the 'train' split has no label: expected "
                f"{root / 'labelsTr' / 'case0001'}.nii.gz")):
        _build(root)
    with pytest.raises(
            FileNotFoundError, match="case 'case0009' of the 'val' split "
            'has no image'):
        _build(root, split='val')
    assert _build(root, split='test').get_data_info(0)['seg_map_path'] is None


def test_label_ids_outside_btcv_range_fail_when_built_or_loaded(tmp_path):
    # The raw TotalSegmentator label: ids up to 117, not BTCV's 0..13.
    root = write_layout(
        tmp_path / 'raw_ids', {'case0001': (CT_SMALL, CT_LABEL)},
        labels=BTCV_CLASSES,
        splits=dict(train=['case0001']))
    with pytest.raises(
            ValueError,
            match=r'labelsTr/case0001\.nii\.gz holds ids outside '
            r'.*\[14, 18, .*\(expected 0\.\.13 for 14 classes\)'):
        _build(root)
    dataset = _build(
        root, pipeline=[dict(type='LoadVolumeFromFile')], check_files=False)
    with pytest.raises(
            ValueError,
            match=r'labelsTr/case0001\.nii\.gz holds ids outside '
            r'.*\(expected 0\.\.13 for 14 classes\)'):
        dataset[0]


def test_metainfo_may_change_the_palette_not_the_classes(layout):
    palette = [[i, i, i] for i in range(14)]
    assert _build(layout, metainfo=dict(palette=palette)).metainfo['palette'] == palette
    with pytest.raises(ValueError, match='does not remap label ids'):
        _build(layout, metainfo=dict(classes=('background', 'liver')))


@pytest.mark.parametrize('kwargs, match', [(dict(split='training'), 'split must be'),
                                           (dict(fold=-1), 'fold must be'),
                                           (dict(fold='0'), 'fold must be')])
def test_bad_arguments(layout, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _build(layout, **kwargs)


def test_layout_with_plain_nii_files(tmp_path, label):
    root = write_layout(
        tmp_path / 'nii', {}, labels=BTCV_CLASSES, splits=dict(train=['case0001']))
    nib.save(nib.load(str(CT_SMALL)), str(root / 'imagesTr' / 'case0001.nii'))
    shutil.copy(label, root / 'labelsTr' / 'case0001.nii.gz')
    info = _build(root).get_data_info(0)
    assert info['img_path'].endswith('imagesTr/case0001.nii')


@pytest.mark.parametrize('protocol, classes', [('all', BTCV_CLASSES),
                                               ('transunet', SYNAPSE_CLASSES)])
def test_reads_what_the_btcv_converter_writes(tmp_path, protocol, classes):
    raw = write_btcv_layout(tmp_path / 'raw', {1: (CT_SMALL, CT_LABEL)})
    converter = load_script('tools/dataset_converters/btcv.py')
    converter.main([
        str(raw), '-o',
        str(tmp_path / 'out'), '--protocol', protocol, '--label-map', TOTALSEG_TO_BTCV
    ])
    split = 'test' if protocol == 'transunet' else 'train'
    dataset = _build(
        tmp_path / 'out', split=split, pipeline=[dict(type='LoadVolumeFromFile')])
    assert dataset.metainfo['classes'] == classes
    seg = dataset[0]['gt_seg_map']
    assert seg.shape == (122, 101, 30) and int(seg.max()) == len(classes) - 1
