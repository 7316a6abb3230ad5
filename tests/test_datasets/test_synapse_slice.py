"""SynapseSliceDataset: every slice carries its case, slice index and spacing, read at
load time from the converter's layout (the real CT converted by
tools/dataset_converters/synapse.py, and small hand-made layouts for the errors)."""
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.datasets import SynapseDataset
from mmseg.registry import DATASETS, METRICS, MODELS
from PIL import Image

from mmseg_fusion.datasets import SynapseSliceDataset
from mmseg_fusion.utils import load_run_config
from tests.scripts import load_script
from tests.shared_data import (CT_SAMPLE, REPO, TOTALSEG_TO_BTCV, needs_ct_sample,
                               write_btcv_layout)

CONFIG = str(REPO / 'configs' / 'dca' / 'dca_unet-s5_1xb24-14k_synapse-224x224.py')
META_KEYS = ('case', 'slice_index', 'spacing', 'slice_spacing')


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The real CT slab as case 1 (train) and case 2 (test, in val), converted."""
    if not CT_SAMPLE.is_dir():
        pytest.skip(f'needs the real sample {CT_SAMPLE}')
    root = tmp_path_factory.mktemp('synapse')
    slab = (CT_SAMPLE / 'example_ct_sm.nii.gz', CT_SAMPLE / 'example_seg.nii.gz')
    raw = write_btcv_layout(root / 'raw', {1: slab, 2: slab})
    load_script('tools/dataset_converters/synapse.py').main([
        str(raw), '-o',
        str(root / 'synapse'), '--label-map', TOTALSEG_TO_BTCV, '--train-cases', '1',
        '--test-cases', '2'
    ])
    return root / 'synapse'


def test_config_datasets_are_slice_datasets_that_pack_the_metainfo():
    cfg = Config.fromfile(CONFIG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type == 'SynapseSliceDataset'
    packs = [
        cfg.test_dataloader.dataset.pipeline[-1], cfg.tta_pipeline[-1].transforms[-1][0]
    ]
    for pack in packs:
        assert pack.type == 'PackSegInputs'
        assert set(META_KEYS) <= set(pack.meta_keys)
    assert cfg.test_evaluator == dict(type='VolumeMetric', use_spacing=False)
    assert issubclass(SynapseSliceDataset, SynapseDataset)
    assert DATASETS.get('SynapseSliceDataset') is SynapseSliceDataset


@pytest.mark.slow
@needs_ct_sample
def test_real_ct_slices_carry_case_index_and_spacing(converted):
    spacing = json.loads((converted / 'spacing.json').read_text())
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.data_root = str(converted)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(dataset) == 30 and dataset.metainfo['classes'] == \
        SynapseDataset.METAINFO['classes']
    row, col, between = spacing['case0002']
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert sorted(info['slice_index'] for info in infos) == list(range(30))
    for info in infos:
        assert info['case'] == 'case0002'
        assert info['img_path'].endswith(f'case0002_slice{info["slice_index"]:03d}.png')
        assert info['spacing'] == (row, col) and info['slice_spacing'] == between

    # the test pipeline packs them into the data sample's metainfo
    sample = dataset[7]['data_samples']
    info = dataset.get_data_info(7)
    for key in META_KEYS:
        assert sample.metainfo[key] == info[key], key

    # and VolumeMetric scores the case in mm from them alone (no spacing_file)
    metric = METRICS.build(dict(type='VolumeMetric', use_spacing=True))
    metric.dataset_meta = dataset.metainfo
    samples = []
    for index in range(len(dataset)):
        data_sample = dataset[index]['data_samples']
        data_sample.pred_sem_seg = data_sample.gt_sem_seg
        samples.append(data_sample.to_dict())
    metric.process({}, samples)
    results = metric.compute_metrics(metric.results)
    assert results['mDice'] == pytest.approx(100.0)
    assert results['mHD95'] == pytest.approx(0.0)
    assert {r['spacing'] for r in metric.results} == {(row, col, between)}


@pytest.mark.slow
@needs_ct_sample
def test_tta_views_keep_the_metainfo_through_the_merge(converted):
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = str(converted)
    dataset_cfg.pipeline = cfg.tta_pipeline
    dataset = DATASETS.build(dataset_cfg)
    views = dataset[3]['data_samples']
    assert len(views) == 2
    for view in views:
        assert view.metainfo['slice_index'] == dataset.get_data_info(3)['slice_index']
    # mmseg's SegTTAModel keeps the last view's metainfo
    tta = MODELS.build(
        dict(
            type='SegTTAModel',
            module=dict(
                type='EncoderDecoder',
                backbone=dict(type='UNetEncoder', base_channels=4, num_stages=2),
                decode_head=dict(
                    type='UNetHead',
                    in_channels=[4, 8],
                    in_index=[0, 1],
                    channels=4,
                    num_classes=9))))
    for view in views:
        view.seg_logits = type(view.gt_sem_seg)(data=torch.zeros(9, *view.ori_shape))
    merged, = tta.merge_preds([views])
    for key in META_KEYS:
        assert merged.metainfo[key] == views[0].metainfo[key], key


@needs_ct_sample
@pytest.mark.slow
def test_data_root_override_reads_the_new_roots_spacing(converted, tmp_path):
    """The spacing file is found when the dataset loads, from its data_root, so
    --cfg-options data_root=... moves it (no path frozen when the config is parsed)."""
    cfg = load_run_config(
        CONFIG, work_dir=str(tmp_path), cfg_options={'data_root': str(converted)})
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert dataset.spacing_path() == str(converted / 'spacing.json')
    assert dataset.get_data_info(0)['case'] == 'case0002'


def write_layout(root, names, spacing=None):
    """A tiny layout of 4 x 4 slices named ``names`` in img_dir/val, ann_dir/val."""
    for sub in ('img_dir', 'ann_dir'):
        (root / sub / 'val').mkdir(parents=True)
        for name in names:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / sub / 'val' / name)
    if spacing is not None:
        (root / 'spacing.json').write_text(json.dumps(spacing))
    return dict(
        type='SynapseSliceDataset',
        data_root=str(root),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[])


def test_spacing_file_is_optional_and_relative_to_data_root(tmp_path):
    names = ['case0007_slice002.png', 'case0007_slice010.png']
    cfg = write_layout(tmp_path, names, {'case0007': [0.5, 0.75, 3]})
    dataset = DATASETS.build(cfg)
    assert [dataset.get_data_info(i)['slice_index'] for i in range(2)] == [2, 10]
    assert dataset.get_data_info(0)['spacing'] == (0.5, 0.75)
    assert dataset.get_data_info(0)['slice_spacing'] == 3.0
    plain = DATASETS.build(dict(cfg, spacing_file=None))
    info = plain.get_data_info(1)
    assert (info['case'], info['slice_index']) == ('case0007', 10)
    assert 'spacing' not in info and 'slice_spacing' not in info


def test_layout_errors_name_the_file_and_the_converter(tmp_path):
    cfg = write_layout(tmp_path / 'a', ['case0001_slice000.png'])
    with pytest.raises(
            FileNotFoundError,
            match='spacing.json does not exist: '
            'tools/dataset_converters/synapse.py writes it'):
        DATASETS.build(cfg)
    one = ['case0001_slice000.png']
    cfg = write_layout(tmp_path / 'b', one, {'case0002': [1, 1, 1]})
    with pytest.raises(ValueError, match="case 'case0001' .* is missing from"):
        DATASETS.build(cfg)
    cfg = write_layout(tmp_path / 'c', one, {'case0001': [1, 0, 1]})
    with pytest.raises(ValueError, match='must be 3 positive numbers'):
        DATASETS.build(cfg)
    cfg = write_layout(tmp_path / 'd', ['img0001.png'], {'img0001': [1, 1, 1]})
    with pytest.raises(ValueError, match=r'is not named \{case\}_slice\{index\}'):
        DATASETS.build(cfg)
    with pytest.raises(ValueError, match='spacing_file must be None or a non-empty'):
        SynapseSliceDataset(spacing_file='', lazy_init=True)
