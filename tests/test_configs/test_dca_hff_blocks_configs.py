"""The configs of configs/dca, configs/hff and configs/blocks (with the Synapse ones):
each builds and trains on tiny data; the recipes hold what their comments state."""
import math
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS

from tests.config_smoke import REPO, config_paths, load_config, train_tiny

CONFIGS = config_paths('dca', 'hff', 'blocks')
DCA_PAIRS = [(f'dca/unet_unet-s5_1xb16-200e_{d}-224x224.py',
              f'dca/dca_unet-s5_1xb16-200e_{d}-224x224.py')
             for d in ('kvasir-seg', 'cvc-clinicdb')]
SYNAPSE_CONFIGS = [p for p in CONFIGS if 'synapse' in osp.basename(p)]
# Block config -> (block type, where it sits in the built model).
BLOCK_PLACES = {
    'gated-fusion': ('GatedFusion', 'decode_head.fusions'),
    'msf': ('MultiScaleSelectiveFusion', 'decode_head.fusions'),
    'dff': ('DynamicFeatureFusion', 'decode_head.fusions'),
    'mfe': ('MultiFeatureExtraction', 'neck.blocks'),
    'safm': ('SAFM', 'neck.blocks'),
    'osra': ('OSRAttention', 'neck.blocks'),
    'jcsa': ('JointChannelSpatialAttention', 'neck.blocks'),
}


def config_id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def config(name):
    return load_config(osp.join(REPO, 'configs', name))


def build_model(cfg):
    init_default_scope('mmseg')
    return MODELS.build(cfg.model)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_every_expected_config_exists():
    names = {config_id(p) for p in CONFIGS}
    assert len(SYNAPSE_CONFIGS) == 2
    for unet, dca in DCA_PAIRS:
        assert {unet, dca} <= names
    blocks = {n.split('/')[1].split('_')[0] for n in names if n.startswith('blocks/')}
    assert blocks == set(BLOCK_PLACES)
    assert sum(n.startswith('hff/') for n in names) == 2


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_trains_two_iterations(path, tmp_path):
    # About 2 s per U-Net config and 6 s per HFF config on 2 idle cores.
    losses = train_tiny(load_config(path), str(tmp_path), iters=2, size=64)
    assert len(losses) == 2
    assert all(math.isfinite(loss) for loss in losses), losses


@pytest.mark.parametrize('names', DCA_PAIRS, ids=lambda pair: pair[1])
def test_dca_config_is_the_unet_plus_one_neck(names):
    unet_cfg, dca_cfg = (config(n) for n in names)
    assert 'neck' not in unet_cfg.model
    dca_model = dca_cfg.model.to_dict()
    neck = dca_model.pop('neck')
    assert neck['type'] == 'DCANeck' and neck['in_index'] == [0, 1, 2, 3]
    assert dca_model == unet_cfg.model.to_dict()
    for key in ('train_dataloader', 'optim_wrapper', 'train_cfg', 'val_evaluator'):
        assert dca_cfg[key] == unet_cfg[key]
    # The paper's overhead: 8.64 M -> 8.75 M, about 0.11 M.
    overhead = num_params(build_model(dca_cfg)) - num_params(build_model(unet_cfg))
    assert abs(overhead - 0.11e6) <= 0.02 * 0.11e6, overhead


def test_dca_recipe():
    cfg = config(DCA_PAIRS[0][1])
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
    assert cfg.train_cfg.max_epochs == 200
    assert cfg.train_dataloader.batch_size == 16
    head = cfg.model.decode_head
    assert (head.out_channels, head.threshold) == (1, 0.5)
    assert head.loss_decode.type == 'BinaryDiceLoss' and head.loss_decode.use_sigmoid
    assert cfg.val_evaluator.type == 'MedicalMetric'
    assert cfg.default_hooks.checkpoint.save_best == 'mDice'


@pytest.mark.parametrize('prefix', sorted(BLOCK_PLACES))
def test_block_config_places_its_block(prefix):
    block_type, place = BLOCK_PLACES[prefix]
    path, = [p for p in CONFIGS if osp.basename(p).startswith(prefix + '_unet-s5')]
    model = build_model(load_config(path))
    container = model.get_submodule(place)
    found = [m for m in container.modules() if type(m).__name__ == block_type]
    assert found, f'no {block_type} under {place}'
    assert not [
        m for m in model.modules() if type(m).__name__ == block_type and m not in found
    ]


@pytest.mark.parametrize('path', SYNAPSE_CONFIGS, ids=config_id)
def test_synapse_configs_follow_transunet(path):
    cfg = load_config(path)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == 'SynapseSliceDataset'
        assert loader.dataset.img_suffix == '.png'
        assert loader.dataset.data_root == 'data/synapse'
    assert cfg.train_dataloader.dataset.data_prefix.img_path == 'img_dir/train'
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'img_dir/val'
    assert cfg.train_dataloader.batch_size == 24
    # case, slice index and spacing come with each slice (SynapseSliceDataset)
    assert cfg.test_evaluator == dict(type='VolumeMetric', use_spacing=False)
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
    assert cfg.param_scheduler[0].type == 'PolyLR'
    head = cfg.model.decode_head
    assert head.num_classes == head.out_channels == 9
    assert [loss.type
            for loss in head.loss_decode] == ['CrossEntropyLoss', 'TverskyLoss']
    assert build_model(cfg).decode_head.conv_seg.out_channels == 9


@pytest.mark.parametrize('dataset, labels', [('synapse', 9), ('kvasir_seg_224', 2)])
def test_train_pipeline_keeps_label_values(dataset, labels):
    """Rotations and flips must move labels, never blend them (nearest, border 0)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', dataset + '.py'))
    init_default_scope('mmseg')
    steps = [
        t for t in cfg.train_pipeline
        if t.type not in ('LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs')
    ]
    pipeline = Compose([TRANSFORMS.build(t) for t in steps])
    resize_only = Compose([TRANSFORMS.build(t) for t in steps if t.type == 'Resize'])
    rng = np.random.default_rng(0)
    np.random.seed(0)
    augmented = 0
    for _ in range(12):
        seg = rng.integers(0, labels, (6, 4)).repeat(10, axis=0).repeat(10, axis=1)
        seg = seg.astype(np.uint8)
        img = np.repeat(seg[..., None], 3, axis=2) * 20

        def sample():
            return dict(
                img=img.copy(),
                gt_seg_map=seg.copy(),
                seg_fields=['gt_seg_map'],
                img_shape=img.shape[:2])

        out = pipeline(sample())
        assert out['img'].shape[:2] == out['gt_seg_map'].shape == (224, 224)
        assert set(np.unique(out['gt_seg_map'])) <= set(range(labels))
        augmented += not np.array_equal(out['gt_seg_map'],
                                        resize_only(sample())['gt_seg_map'])
    assert augmented
