"""The 3-D path end to end on the real abdominal CT of ../shared/data: convert it into
the BTCV layout, run the BTCV D-Net config's training pipeline on it, train a tiny
D-Net derived from that config with tools/train.py, and test it with tools/test.py
--out (sliding windows over the whole volume, NIfTI prediction on the input's grid,
per-organ metrics and the per-case CSV)."""
import csv
import glob
import json
import math
import os.path as osp

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_fusion.utils.run_config import move_data_root
from tests.config_smoke import load_config
from tests.scripts import load_script
from tests.shared_data import CT_SAMPLE, REPO, TOTALSEG_TO_BTCV, write_btcv_layout

CONFIG = REPO / 'configs' / 'dnet' / 'dnet_dlk_1xb2-adamw-120k_btcv-96x96x96.py'
AMOS_CONFIG = REPO / 'configs' / 'dnet' / 'dnet_dlk_1xb2-adamw-40k_amos-96x96x96.py'
CT_IMAGE = CT_SAMPLE / 'example_ct_sm.nii.gz'  # 122x101x30, 3 mm, RAS, int16 HU
CT_LABEL = CT_SAMPLE / 'example_seg.nii.gz'  # TotalSegmentator ids
PATCH = (32, 32, 32)
ITERS = 6

needs_ct = pytest.mark.skipif(
    not (CT_IMAGE.is_file() and CT_LABEL.is_file()),
    reason=f'the real CT sample is absent from {CT_SAMPLE} (../shared/data beside the '
    'clone, or MMSEG_FUSION_SHARED_DATA)')


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: where the 2 cores are shared with other jobs, PyTorch's
    default (a thread per core) made these 3-D runs 5-50 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def convert(tmp_path) -> str:
    """The CT as BTCV case 1, converted with --protocol all (train = val = test)."""
    raw = write_btcv_layout(tmp_path / 'raw', {1: (CT_IMAGE, CT_LABEL)})
    out = str(tmp_path / 'btcv')
    load_script('tools/dataset_converters/btcv.py').main(
        [str(raw), '-o', out, '--protocol', 'all', '--label-map', TOTALSEG_TO_BTCV])
    return out


def transforms_named(cfg: Config, name: str):
    """Every MONAITransform config called ``name`` in the config's pipelines
    (inside CachedPipeline too)."""

    def walk(pipeline):
        for transform in pipeline:
            if transform.get('transform') == name:
                yield transform
            yield from walk(transform.get('transforms', []))

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        yield from walk(cfg[loader].dataset.pipeline)


def with_patch(cfg: Config, patch) -> Config:
    """The config with its crops, padding and inference windows at ``patch``."""
    for name in ('RandCropByPosNegLabeld', 'SpatialPadd'):
        for transform in transforms_named(cfg, name):
            transform.spatial_size = patch
    cfg.model.test_cfg.patch_size = patch
    return cfg


def test_tiny_patch_override_reaches_every_crop_and_window():
    cfg = with_patch(load_config(str(CONFIG)), PATCH)
    sizes = [
        t.spatial_size for name in ('RandCropByPosNegLabeld', 'SpatialPadd')
        for t in transforms_named(cfg, name)
    ]
    assert sizes and all(tuple(s) == PATCH for s in sizes)


@pytest.mark.slow
@needs_ct
def test_btcv_train_pipeline_on_the_real_ct(tmp_path):
    data_root = convert(tmp_path)
    cfg = with_patch(load_config(str(CONFIG)), PATCH)
    move_data_root(cfg, cfg.data_root, data_root)
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 1

    # The cached prefix: RAS at the recipe's 1.5 x 1.5 x 2 mm, HU window in [0, 1],
    # labels still on the organs (the liver's mean HU, 45 in the file, survives).
    cached = dataset.pipeline.transforms[0]
    results = cached(dataset.get_data_info(0))
    assert nib.aff2axcodes(results['affine']) == ('R', 'A', 'S')
    np.testing.assert_allclose(results['spacing'], (1.5, 1.5, 2.0), atol=1e-4)
    image, label = results['img'][0], results['gt_seg_map']
    assert image.shape == label.shape and 0 <= image.min() and image.max() <= 1
    source_image = np.asanyarray(nib.load(str(CT_IMAGE)).dataobj)
    source_label = np.asanyarray(nib.load(str(CT_LABEL)).dataobj)
    hu_liver = source_image[source_label == 5].mean()
    assert abs(image[label == 6].mean() * 425 - 175 - hu_liver) < 10
    assert set(np.unique(label)) == set(range(14)) - {5}
    assert osp.isfile(results['img_path'])
    assert glob.glob(osp.join(data_root, 'cache', 'case0001_*.json'))

    # Foreground-balanced 32^3 crops: half centred on an organ voxel (the MONAI
    # transforms draw their seeds from numpy's global generator).
    np.random.seed(0)
    with_organs = 0
    for _ in range(8):
        packed = dataset[0]
        assert packed['inputs'].shape == (1, *PATCH)
        crop = packed['data_samples'].gt_sem_seg.data
        assert crop.shape == (1, *PATCH)
        with_organs += int((crop > 0).any())
    assert with_organs >= 4


@pytest.mark.slow
@needs_ct
def test_amos_train_and_test_pipelines_on_the_real_ct(tmp_path):
    """The AMOS config's pipelines (3D UX-Net window and augmentation) on the same
    converted CT, as one case of 16 classes: 32^3 crops, the test input resampled
    while its label stays on the file's grid."""
    data_root = convert(tmp_path)
    cfg = with_patch(load_config(str(AMOS_CONFIG)), PATCH)
    for transform in transforms_named(cfg, 'RandAffined'):
        transform.spatial_size = PATCH
    move_data_root(cfg, cfg.data_root, data_root)
    init_default_scope('mmseg')
    case = dict(
        img_path=osp.join(data_root, 'imagesTr', 'case0001.nii.gz'),
        seg_map_path=osp.join(data_root, 'labelsTr', 'case0001.nii.gz'),
        case_id='case0001',
        num_classes=16)
    np.random.seed(0)
    packed = Compose(cfg.train_dataloader.dataset.pipeline)(dict(case))
    assert packed['inputs'].shape == (1, *PATCH)
    assert packed['data_samples'].gt_sem_seg.data.shape == (1, *PATCH)
    assert 'RandAffined' in packed['data_samples'].metainfo['transforms'][-1]

    packed = Compose(cfg.test_dataloader.dataset.pipeline)(dict(case))
    meta = packed['data_samples'].metainfo
    assert meta['original_shape'] == (122, 101, 30)
    assert packed['inputs'].shape == (1, 243, 201, 44)  # 1.5 x 1.5 x 2 mm
    assert packed['data_samples'].gt_sem_seg.data.shape == (1, 122, 101, 30)


def tiny_config(path, data_root: str) -> str:
    """A tiny D-Net config derived from the BTCV one, written to ``path``: its data
    path and metric, 32^3 patches, 3 x 3 x 4 mm volumes (122 x 101 x 23 voxels, so
    whole-volume inference is quick), a 4-stage D-Net of widths 8-64, a constant
    lr of 3e-3, no validation."""
    cfg = with_patch(load_config(str(CONFIG)), PATCH)
    for transform in transforms_named(cfg, 'Spacingd'):
        transform.pixdim = (3.0, 3.0, 4.0)
    widths = (8, 16, 32, 64)
    cfg.model.backbone.update(widths=widths, depths=(1, 1, 1, 1), salience_channels=4)
    cfg.model.decode_head.update(in_channels=(4, *widths), depths=(1, 1, 1))
    cfg.model.test_cfg.progress = False
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS)
    cfg.optim_wrapper.optimizer.lr = 3e-3
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=ITERS)
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
    # mmseg's runtime names its visualizer 'visualizer': in a process that already
    # built one (an earlier test's runner) that instance, with its log folder, would
    # be reused. Without a name the runner names it after this run.
    cfg.visualizer.pop('name')
    move_data_root(cfg, cfg.data_root, data_root)
    cfg.data_root = data_root
    cfg.dump(str(path))
    return str(path)


def train_losses(work_dir: str) -> list:
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


@pytest.mark.slow
@needs_ct
def test_tiny_dnet_trains_and_tests_on_the_real_ct(tmp_path):
    data_root = convert(tmp_path)
    config = tiny_config(tmp_path / 'tiny_dnet_btcv.py', data_root)
    work_dir, out = str(tmp_path / 'work'), str(tmp_path / 'predictions')

    load_script('tools/train.py').main([config, '--work-dir', work_dir])
    losses = train_losses(work_dir)
    assert len(losses) == ITERS and all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) < sum(losses[:2]), losses

    checkpoint = osp.join(work_dir, f'iter_{ITERS}.pth')
    metrics = load_script('tools/test.py').main(
        [config, checkpoint, '--work-dir', work_dir, '--out', out])

    # The prediction: one NIfTI on the input's grid (shape and affine), BTCV ids.
    source = nib.load(str(CT_IMAGE))
    prediction = nib.load(osp.join(out, 'case0001.nii.gz'))
    assert prediction.shape == source.shape == (122, 101, 30)
    np.testing.assert_allclose(prediction.affine, source.affine, atol=1e-4)
    assert np.asanyarray(prediction.dataobj).max() <= 13

    # Per organ (the 13 BTCV organs; the esophagus is absent from the slab, so its
    # scores are NaN under nnU-Net's convention) and per case.
    organs = [key[len('Dice.'):] for key in metrics if key.startswith('Dice.')]
    assert len(organs) == 13
    for organ in organs:
        assert f'HD95.{organ}' in metrics and f'NSD.{organ}' in metrics
        if organ == 'esophagus':
            assert math.isnan(metrics[f'Dice.{organ}'])
        else:
            assert 0 <= metrics[f'Dice.{organ}'] <= 100, organ
    assert math.isfinite(metrics['mDice'])
    [table] = glob.glob(osp.join(work_dir, '*', 'per_case_test.csv'))
    with open(table) as f:
        rows = list(csv.DictReader(f))
    assert [row['case_id'] for row in rows] == ['case0001']
    assert {f'Dice.{organ}' for organ in organs} <= set(rows[0])
