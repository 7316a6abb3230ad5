"""Tiny deterministic training runs for the engine tests: a 2-D U-Net on 32 px images
with random augmentations and dropout, and a 3-D D-Net on synthetic CT with MONAI
random transforms; trained in-process through tools/train.py's main."""
import os.path as osp
import uuid
from typing import Optional, Sequence

import torch

from tests.scripts import load_script
from tests.tiny_run import write_tiny_data

HOOKS = ("custom_hooks = [dict(type='ExactResumeHook'), "
         "dict(type='NonFiniteLossHook')]\n")

CONFIG_2D = '''
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
default_scope = 'mmseg'
data_root = {data_root!r}
metainfo = dict(classes=('background', 'square'), palette=[[0, 0, 0], [255, 0, 0]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(32, 32), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(24, 24), cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.png', seg_map_suffix='.png', pipeline=train_pipeline,
               data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))
train_dataloader = dict(batch_size=2, num_workers={num_workers},
                        persistent_workers={persistent},
                        sampler=dict(type='{sampler}', shuffle=True),
                        dataset=dataset)
val_dataloader = dict(batch_size=1, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3,
                           std=[127.5] * 3, bgr_to_rgb=True, size=(24, 24)),
    backbone=dict(type='UNet', in_channels=3, base_channels=4, num_stages=3,
                  strides=(1, 1, 1), enc_num_convs=(1, 1, 1), dec_num_convs=(1, 1),
                  downsamples=(True, True), enc_dilations=(1, 1, 1),
                  dec_dilations=(1, 1), norm_cfg=dict(type='BN')),
    decode_head=dict(type='FCNHead', in_channels=4, in_index=2, channels=4,
                     num_convs=1, num_classes=2, dropout_ratio=0.5,
                     norm_cfg=dict(type='BN'),
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=100,
                        by_epoch={by_epoch})]
train_cfg = {train_cfg}
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch={by_epoch}),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch={by_epoch}, interval={interval}),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch={by_epoch})
log_level = 'WARNING'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=True)
'''


def write_2d_config(tmp_path,
                    num_workers: int = 0,
                    persistent: bool = False,
                    sampler: str = 'InfiniteSampler',
                    interval: int = 2,
                    val_interval: int = 2,
                    by_epoch: bool = False,
                    hooks: str = HOOKS,
                    extra: str = '') -> str:
    """The 2-D run's data (4 images of 32 px) and config under ``tmp_path``."""
    data_root = str(tmp_path / 'data')
    if not osp.isdir(data_root):
        write_tiny_data(data_root, num_classes=2, size=32, num_images=4)
    if by_epoch:
        train_cfg = (f"dict(type='EpochBasedTrainLoop', max_epochs=2, "
                     f'val_interval={val_interval})')
    else:
        train_cfg = (f"dict(type='IterBasedTrainLoop', max_iters=4, "
                     f'val_interval={val_interval})')
    config = tmp_path / f'tiny_2d_{uuid.uuid4().hex[:6]}.py'
    config.write_text(
        CONFIG_2D.format(
            data_root=data_root,
            num_workers=num_workers,
            persistent=persistent,
            sampler=sampler,
            interval=interval,
            by_epoch=by_epoch,
            train_cfg=train_cfg) + hooks + extra)
    return str(config)


_TRAIN = None


def train(config: str,
          work_dir: str,
          options: Sequence[str] = (),
          resume: bool = False) -> None:
    """Run tools/train.py's main in this process (a fresh experiment name, so
    mmengine's global message hub and logger are new)."""
    global _TRAIN
    if _TRAIN is None:
        _TRAIN = load_script('tools/train.py')
    argv = [config, '--work-dir', work_dir]
    if resume:
        argv.append('--resume')
    argv += ['--cfg-options', f'experiment_name=run_{uuid.uuid4().hex}', *options]
    _TRAIN.main(argv)


def weights(path: str) -> dict:
    return torch.load(path, map_location='cpu')['state_dict']


def max_difference(path_a: str, path_b: str) -> float:
    """Largest absolute difference between the weights and buffers of two
    checkpoints (0.0 when bit-identical)."""
    a, b = weights(path_a), weights(path_b)
    assert a.keys() == b.keys()
    largest = 0.0
    for key in a:
        if not torch.equal(a[key], b[key]):
            diff = (a[key].double() - b[key].double()).abs().max().item()
            largest = max(largest, diff if diff > 0 else float('inf'))
    return largest


def straight_and_resumed(config: str,
                         root,
                         total: int,
                         split: int,
                         unit: str = 'iter',
                         options: Sequence[str] = (),
                         resumed_options: Optional[Sequence[str]] = None):
    """Train ``total`` steps straight, and ``split`` steps then ``--resume`` to
    ``total``; return the two final checkpoints' paths."""
    key = 'train_cfg.max_iters' if unit == 'iter' else 'train_cfg.max_epochs'
    straight, resumed = str(root / 'straight'), str(root / 'resumed')
    train(config, straight, [f'{key}={total}', *options])
    train(config, resumed, [f'{key}={split}', *options])
    train(
        config,
        resumed,
        [f'{key}={total}', *(options if resumed_options is None else resumed_options)],
        resume=True)
    name = f'{unit}_{total}.pth'
    return osp.join(straight, name), osp.join(resumed, name)


CONFIG_3D = '''
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
default_scope = 'mmseg'
data_root = {data_root!r}
crop = (16, 16, 16)
train_pipeline = [
    dict(type='LoadVolumeFromFile'),
    dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
    dict(type='MONAITransform', transform='ScaleIntensityRanged', keys='img',
         a_min=-175.0, a_max=250.0, b_min=0.0, b_max=1.0, clip=True),
    dict(type='MONAITransform', transform='SpatialPadd', spatial_size=crop),
    dict(type='MONAITransform', transform='RandCropByPosNegLabeld',
         label_key='gt_seg_map', spatial_size=crop, pos=1, neg=1, num_samples=1,
         image_key='img', image_threshold=0),
    dict(type='MONAITransform', transform='RandFlipd', prob=0.5, spatial_axis=0),
    dict(type='MONAITransform', transform='RandFlipd', prob=0.5, spatial_axis=2),
    dict(type='MONAITransform', transform='RandShiftIntensityd', keys='img',
         offsets=0.1, prob=0.5),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers={num_workers}, persistent_workers={persistent},
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='BTCVDataset', data_root=data_root, split='train',
                 pipeline=train_pipeline))
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(type='DNetEncoder', in_channels=1, widths=(4, 8, 8, 16),
                  depths=(1, 1, 1, 1), salience_channels=2, drop_path_rate=0.2),
    decode_head=dict(type='DFF3DHead', in_channels=(2, 4, 8, 8, 16),
                     num_classes=14, depths=(1, 1, 1), deep_supervision=True),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', patch_size=crop, overlap=0.5, sw_batch_size=2))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-5))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                        end=10)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'WARNING'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=True)
'''


def write_synthetic_ct(root, num_cases: int = 2, shape=(40, 40, 20)) -> str:
    """Synthetic CT cases (tools/misc/generate_synthetic_ct.py) converted to the BTCV
    layout (tools/dataset_converters/btcv.py --protocol all) under ``root``."""
    converted = osp.join(str(root), 'synthetic_ct_btcv')
    if not osp.isdir(converted):
        raw = osp.join(str(root), 'synthetic_ct_raw')
        load_script('tools/misc/generate_synthetic_ct.py').main(
            ['--out', raw, '--num-cases',
             str(num_cases), '--shape', *map(str, shape)])
        load_script('tools/dataset_converters/btcv.py').main(
            [raw, '-o', converted, '--protocol', 'all', '--no-unlabelled'])
    return converted


def write_3d_config(tmp_path,
                    num_workers: int = 0,
                    persistent: bool = False,
                    hooks: str = HOOKS) -> str:
    """A tiny D-Net on 16^3 crops of synthetic CT, MONAI random transforms."""
    data_root = write_synthetic_ct(tmp_path)
    config = tmp_path / f'tiny_3d_{uuid.uuid4().hex[:6]}.py'
    config.write_text(
        CONFIG_3D.format(
            data_root=data_root, num_workers=num_workers, persistent=persistent) +
        hooks)
    return str(config)
