"""Train a segmentor: mmseg's tools/train.py with mmseg-fusion's fixes applied.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Beyond mmseg's tool: ``--cfg-options`` refuses a top-level key the config does not
have (naming the close matches), and ``data_root=PATH`` moves every dataset of the
config to PATH; dataloaders use at most as many workers as there are CPUs. A missing
config or data folder, a work dir that already holds checkpoints (without
``--resume``), pretrained weights that cannot be downloaded, a resume checkpoint that
is missing, truncated, not a training checkpoint or of another model, and a NaN or
infinite loss (configs/_base_/default_runtime.py's NonFiniteLossHook) end with one
``error: ...`` line on stderr and exit status 1.
"""
import argparse
import os
from urllib.error import URLError

from mmengine.config import DictAction
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.engine import find_resume_checkpoint, remove_stale_temporary_files
from mmseg_fusion.utils import (ConfigError, PretrainedDownloadError,
                                check_data_folders, load_run_config,
                                refuse_to_overwrite_checkpoints, run_cli)
from mmseg_fusion.utils.run_config import (find_pretrained, is_remote,
                                           quiet_paramwise_options)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_cfg.max_iters=100 or key="[a,b]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (without CUDA, distributed runs use gloo)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_amp(cfg) -> None:
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise ConfigError('--amp needs optim_wrapper.type OptimWrapper or '
                          f'AmpOptimWrapper, got {optim_wrapper!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def download_hint(cfg, error: URLError) -> PretrainedDownloadError:
    """The one-line error for pretrained weights that could not be downloaded."""
    remote = [(key, ckpt) for key, ckpt in find_pretrained(cfg.model)
              if is_remote(ckpt)]
    keys = ' '.join(f'{key}=None' for key, _ in remote)
    return PretrainedDownloadError(
        f'could not download the pretrained weights {", ".join(c for _, c in remote)} '
        f'({getattr(error, "reason", error)}): train without them with --cfg-options '
        f'{keys}, or download them and pass the local file the same way '
        '(e.g. ...init_cfg.checkpoint=PATH)')


def main(argv=None):
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume
    resume_from = None
    if args.resume:
        remove_stale_temporary_files(cfg.work_dir)  # of a run killed while saving
        resume_from = find_resume_checkpoint(cfg.work_dir, cfg.get('load_from'))
        if resume_from is not None:
            cfg.load_from = resume_from.path
    else:
        refuse_to_overwrite_checkpoints(cfg.work_dir)
    check_data_folders(cfg, ['train_dataloader'] +
                       (['val_dataloader'] if cfg.get('val_cfg') else []))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if resume_from is not None:
        resume_from.check_model(runner.model)
    quiet_paramwise_options(runner.logger)
    try:
        runner.train()
    except URLError as error:
        if not any(is_remote(c) for _, c in find_pretrained(cfg.model)):
            raise
        raise download_hint(cfg, error) from error


if __name__ == '__main__':
    run_cli(main)
