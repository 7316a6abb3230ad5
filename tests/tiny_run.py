"""A tiny mmseg run for end-to-end tests of the tools: a few 32 px images in mmseg's
layout and a config that trains a small U-Net on them for a few iterations."""
import os
import os.path as osp

import cv2
import numpy as np

CONFIG_TEMPLATE = '''
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
default_scope = 'mmseg'
data_root = {data_root!r}
metainfo = dict(classes=('background', 'square'), palette=[[0, 0, 0], [255, 0, 0]])
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.png', seg_map_suffix='.png', pipeline=pipeline,
               data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'))
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dataset)
val_dataloader = dict(batch_size=1, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dataset)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3,
                           std=[127.5] * 3, bgr_to_rgb=True, size=(32, 32)),
    backbone=dict(type='UNet', in_channels=3, base_channels=4, num_stages=3,
                  strides=(1, 1, 1), enc_num_convs=(1, 1, 1), dec_num_convs=(1, 1),
                  downsamples=(True, True), enc_dilations=(1, 1, 1),
                  dec_dilations=(1, 1), norm_cfg=dict(type='BN')),
    decode_head=dict(type='FCNHead', in_channels=4, in_index=2, channels=4,
                     num_convs=1, num_classes=2, norm_cfg=dict(type='BN'),
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={max_iters}, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={max_iters})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
'''


def write_tiny_data(root: str, num_classes: int, size: int, num_images: int = 2):
    """Write ``num_images`` images in mmseg's layout (``img_dir/train``,
    ``ann_dir/train``): noise with a brighter block per class, and masks with class
    ids 0..num_classes-1."""
    rng = np.random.default_rng(0)
    for sub in ('img_dir/train', 'ann_dir/train'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(num_images):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        step = size // num_classes
        for label in range(1, num_classes):
            mask[step * (label - 1):step * label, step * label - step // 2:] = label
        image[mask > 0] += (40 * mask[mask > 0, None]).astype(np.uint8) % 190
        cv2.imwrite(osp.join(root, 'img_dir/train', f'{i}.png'), image)
        cv2.imwrite(osp.join(root, 'ann_dir/train', f'{i}.png'), mask)


def write_tiny_run(tmp_path, max_iters: int = 2) -> str:
    """Write the dataset and the config under ``tmp_path``; return the config path."""
    data_root = str(tmp_path / 'data')
    write_tiny_data(data_root, num_classes=2, size=32, num_images=4)
    config = tmp_path / 'tiny_unet.py'
    config.write_text(CONFIG_TEMPLATE.format(data_root=data_root, max_iters=max_iters))
    return str(config)
