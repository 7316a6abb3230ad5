"""Test (and evaluate) a checkpoint: mmseg's tools/test.py with mmseg-fusion's fixes.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show-dir DIR] [--tta] [--cfg-options k=v ...] [--launcher ...]

Beyond mmseg's tool:

- ``--out DIR`` sets ``output_dir`` on every test metric that takes it (as mmseg's
  tool does; ``keep_results`` too where a metric names it): the 2-D metrics write one
  PNG label mask per test image, named after the image; a 3-D metric writes its own
  format. DIR must not exist or be empty.
- ``--tta`` gives the ``tta_pipeline`` to every test dataset (through
  ``ConcatDataset``), and says so in one line when the config has none.
- ``--show-dir DIR`` (relative to the work dir) is printed with the overlays' folder.
- The checkpoint must hold every weight of the config's model with the same shape.
- User errors (missing config, checkpoint or data folder, checkpoint of another model,
  unknown ``--cfg-options`` key, non-empty ``--out``) end with one ``error: ...``
  line on stderr and exit status 1.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import (ConfigError, OutputExistsError, PathNotFoundError,
                                check_checkpoint_fits, check_data_folders,
                                load_run_config, run_cli)
from mmseg_fusion.utils.run_config import set_output_dir, set_tta


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and the metrics as json')
    parser.add_argument(
        '--out',
        help='directory to save the predictions (2-D: one PNG label mask per '
        'test image, named after the image); must not exist or be empty')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where the prediction overlays are saved (PNG, under '
        'vis_data/vis_image); a relative path is taken inside the work dir')
    parser.add_argument(
        '--show-interval',
        type=int,
        default=1,
        help='draw every N-th test image (default: every image)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (without CUDA, distributed runs use gloo)')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg, args) -> None:
    if 'visualization' not in cfg.default_hooks:
        raise ConfigError('--show/--show-dir need default_hooks.visualization = '
                          "dict(type='SegVisualizationHook') in the config")
    hook = cfg.default_hooks.visualization
    hook.draw = True
    hook.interval = args.show_interval
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if args.show_dir:
        cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if not osp.isfile(args.checkpoint):
        raise PathNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    # A test run builds no training parts: mmseg's visualization hook reads
    # runner.iter, which would otherwise build the train dataloader (and need its data).
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = None
    cfg.param_scheduler = None
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        set_tta(cfg)
    if args.out is not None:
        if osp.isdir(args.out) and os.listdir(args.out):
            raise OutputExistsError(f'--out {args.out} is not empty; predictions would '
                                    'overwrite its files: choose another folder')
        set_output_dir(cfg, args.out)
    check_data_folders(cfg, ['test_dataloader'])
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    check_checkpoint_fits(runner.model, args.checkpoint)
    metrics = runner.test()
    if is_main_process():
        if args.out is not None:
            print(f'predictions written to {args.out}', flush=True)
        if args.show_dir:
            print(
                'prediction overlays written to '
                f'{osp.join(cfg.visualizer.save_dir, "vis_data", "vis_image")}',
                flush=True)
    return metrics


if __name__ == '__main__':
    run_cli(main)
