"""The MCANet (configs/mcanet), SegNeXt-baseline (configs/segnext) and demo configs
build, follow the paper's recipe, read their data through the real pipelines and
train."""
import math
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, METRICS, MODELS

from tests.config_smoke import REPO, config_paths, load_config, train_tiny
from tests.scripts import load_script

generate_synthetic_polyps = load_script('tools/misc/generate_synthetic_polyps.py')

# MCANet and its SegNeXt baselines share the MSCAN encoder and the recipe.
MCANET_CONFIGS = config_paths('mcanet', 'segnext')
DEMO_CONFIGS = [p for p in config_paths('demo') if 'mcanet' in osp.basename(p)]
POLYP_CONFIGS = [p for p in MCANET_CONFIGS if 'synapse' not in osp.basename(p)]
MSCAN_URL = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segnext/'
PRANET_SUBSETS = ('Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB',
                  'CVC-300')
# (MSCAN variant) -> (embed_dims, depths, checkpoint file)
MSCAN = {
    't': ([32, 64, 160, 256], [3, 3, 5, 2], 'mscan_t_20230227-119e8c9f.pth'),
    's': ([64, 128, 320, 512], [2, 2, 4, 2], 'mscan_s_20230227-f33ccdf2.pth'),
    'b': ([64, 128, 320, 512], [3, 3, 12, 3], 'mscan_b_20230227-3ab7d230.pth'),
}


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')


def name(path):
    return osp.basename(path)


def test_the_expected_configs_exist():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in MCANET_CONFIGS}
    for dataset in ('kvasir-seg', 'cvc-clinicdb', 'pranet-polyp'):
        for variant in 'tsb':
            assert (f'mcanet/mcanet_mscan-{variant}_1xb8-adamw-80k_{dataset}-224x224.py'
                    in names)
        assert f'segnext/segnext_mscan-t_1xb8-adamw-80k_{dataset}-224x224.py' in names
    assert 'mcanet/mcanet_mscan-t_1xb8-adamw-80k_synapse-224x224.py' in names
    assert not [n for n in names if n.startswith('mcanet/segnext')]  # moved
    assert len(DEMO_CONFIGS) == 1


@pytest.mark.parametrize('path', MCANET_CONFIGS + DEMO_CONFIGS, ids=name)
def test_config_builds_its_model(path):
    cfg = load_config(path)
    model = MODELS.build(cfg.model)
    head = cfg.model.decode_head
    assert type(model.decode_head).__name__ == head.type
    assert model.decode_head.out_channels == head.out_channels
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # MSCAN-T models have about 4M parameters (MCANet's "4M+"), -S 14M, -B 27M
    expected = {'t': (3.9, 4.4), 's': (13.5, 14.5), 'b': (26.0, 27.5)}
    low, high = expected[name(path).split('_')[1][-1]]
    assert low < params < high


@pytest.mark.parametrize('path', MCANET_CONFIGS, ids=name)
def test_paper_recipe(path):
    cfg = Config.fromfile(path)
    variant = name(path).split('_')[1][-1]
    embed_dims, depths, checkpoint = MSCAN[variant]
    backbone = cfg.model.backbone
    assert backbone.type == 'MSCAN'
    assert backbone.embed_dims == embed_dims and backbone.depths == depths
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=MSCAN_URL + checkpoint)
    head = cfg.model.decode_head
    assert head.norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)
    if head.type == 'MCAHead':
        assert head.in_channels == embed_dims and head.channels == embed_dims[0]
        assert head.image_size == 128
    if 'synapse' in name(path):
        assert head.num_classes == head.out_channels == 9
        assert head.loss_decode.use_sigmoid is False
    else:
        assert (head.num_classes, head.out_channels, head.threshold) == (2, 1, 0.5)
        assert head.loss_decode.use_sigmoid is True
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 6e-5,
                                                                      0.01)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.begin,
            poly.end) == ('PolyLR', 1.0, 0.0, 1500, 80000)
    assert cfg.train_cfg.max_iters == 80000
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.model.data_preprocessor.size == (224, 224)
    if 'synapse' not in name(path):
        assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'MedicalMetric'
        train_types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
        assert train_types == [
            'LoadImageFromFile', 'LoadAnnotations', 'RandomResize', 'RandomCrop',
            'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs'
        ]
        resize, crop = cfg.train_dataloader.dataset.pipeline[2:4]
        assert resize.ratio_range == (0.5, 2.0) and crop.crop_size == (224, 224)


def test_optimizer_groups_follow_the_recipe():
    cfg = load_config(
        osp.join(REPO, 'configs/mcanet',
                 'mcanet_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py'))
    model = MODELS.build(cfg.model)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {names[id(g['params'][0])]: g for g in optimizer.param_groups}
    head_conv = groups['decode_head.squeeze.conv.weight']
    assert math.isclose(head_conv['lr'], 6e-4)
    assert math.isclose(head_conv['weight_decay'], 0.01)
    backbone_conv = groups['backbone.block1.0.attn.proj_1.weight']
    assert math.isclose(backbone_conv['lr'], 6e-5)
    assert math.isclose(backbone_conv['weight_decay'], 0.01)
    assert groups['backbone.block1.0.norm1.weight']['weight_decay'] == 0
    assert groups['backbone.norm1.weight']['weight_decay'] == 0


def write_synthetic(root):
    """Two 64 px synthetic images per split, in the converters' layout."""
    generate_synthetic_polyps.main(
        ['--out',
         str(root), '--num-train', '2', '--num-val', '2', '--size', '64'])


def first_sample(dataset_cfg, data_root):
    dataset_cfg.data_root = str(data_root)
    dataset = DATASETS.build(dataset_cfg)
    return dataset, dataset[0]


@pytest.mark.parametrize(
    'path', [
        p for p in POLYP_CONFIGS + DEMO_CONFIGS
        if 'pranet' not in name(p) and '_mscan-t_' in name(p)
    ],
    ids=name)
def test_polyp_pipelines_read_converted_data(path, tmp_path):
    write_synthetic(tmp_path)
    cfg = Config.fromfile(path)
    crop = cfg.model.data_preprocessor.size
    _, train = first_sample(cfg.train_dataloader.dataset, tmp_path)
    assert tuple(train['inputs'].shape) == (3, ) + tuple(crop)
    assert set(train['data_samples'].gt_sem_seg.data.unique().tolist()) <= {0, 1, 255}
    _, val = first_sample(cfg.val_dataloader.dataset, tmp_path)
    assert val['data_samples'].gt_sem_seg.data.shape[-2:] == (64, 64)


def test_pranet_tests_five_sets_and_reports_each(tmp_path):
    write_synthetic(tmp_path)
    for subset in PRANET_SUBSETS:  # the converter's layout: img_dir/test/<subset>
        for kind in ('img_dir', 'ann_dir'):
            shutil.copytree(tmp_path / kind / 'val', tmp_path / kind / 'test' / subset)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/mcanet',
                 'mcanet_mscan-t_1xb8-adamw-80k_pranet-polyp-224x224.py'))
    _, train = first_sample(cfg.train_dataloader.dataset, tmp_path)
    assert tuple(train['inputs'].shape) == (3, 224, 224)
    test_cfg = cfg.test_dataloader.dataset
    for dataset in test_cfg.datasets:
        dataset.data_root = str(tmp_path)
    dataset = DATASETS.build(test_cfg)
    assert len(dataset) == 2 * len(PRANET_SUBSETS)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    samples = []
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        sample.pred_sem_seg = sample.gt_sem_seg
        samples.append(sample.to_dict())
    assert [s['subset'] for s in samples[::2]] == list(PRANET_SUBSETS)
    metric.process([], samples)
    results = metric.compute_metrics(metric.results)
    for subset in PRANET_SUBSETS:
        assert results[f'{subset}/mDice'] == pytest.approx(100.0)


@pytest.mark.parametrize('config', [
    'mcanet/mcanet_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py',
    'segnext/segnext_mscan-t_1xb8-adamw-80k_kvasir-seg-224x224.py',
    'mcanet/mcanet_mscan-t_1xb8-adamw-80k_synapse-224x224.py',
])
def test_config_trains_two_iterations(config, tmp_path):
    cfg = load_config(osp.join(REPO, 'configs', config))
    losses = train_tiny(cfg, str(tmp_path), iters=2, size=64)
    assert len(losses) == 2
    assert np.isfinite(losses).all()
