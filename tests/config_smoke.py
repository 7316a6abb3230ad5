"""Build a repository config and train it for a few iterations on tiny synthetic data.

The config's model, optimizer, schedule and loss are used as they are; its pretrained
weights are dropped (no network in tests) and its data is replaced by a few 64 px
images in mmseg's layout with as many classes as the model predicts.
"""
import os
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from mmseg_fusion.utils import drop_pretrained
from tests.tiny_run import write_tiny_data

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_paths(*folders):
    """Every ``*.py`` config under ``configs/{folder}`` (recursively), sorted."""
    paths = []
    for folder in folders:
        for root, _, files in os.walk(osp.join(REPO, 'configs', folder)):
            paths += [osp.join(root, f) for f in files if f.endswith('.py')]
    return sorted(paths)


def load_config(path: str) -> Config:
    cfg = Config.fromfile(path)
    drop_pretrained(cfg.model)
    return cfg


def predicted_classes(cfg: Config) -> int:
    """Label values the model is trained on: 2 for a 1-channel sigmoid head."""
    head = cfg.model.decode_head
    head = head[-1] if isinstance(head, (list, tuple)) else head
    return 2 if head.get('out_channels') == 1 else head.num_classes


def train_tiny(cfg: Config,
               work_dir: str,
               iters: int = 2,
               size: int = 64,
               batch_size: int = 2) -> list:
    """Train ``cfg`` ``iters`` iterations on tiny data; return each iteration's loss."""
    data_root = osp.join(work_dir, 'data')
    num_classes = predicted_classes(cfg)
    write_tiny_data(data_root, num_classes, size, num_images=batch_size)
    cfg.train_dataloader = dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=False),
        dataset=dict(
            type='BaseSegDataset',
            data_root=data_root,
            metainfo=dict(classes=tuple(str(c) for c in range(num_classes))),
            img_suffix='.png',
            seg_map_suffix='.png',
            data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader',
                'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.model.data_preprocessor.size = (size, size)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks = dict(
        logger=dict(type='LoggerHook', interval=1), checkpoint=None)
    cfg.work_dir = work_dir
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return list(runner.message_hub.get_scalar('train/loss').data[0])
