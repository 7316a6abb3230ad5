"""Run the whole demo loop: synthetic data, training, test, prediction overlays.

    python tools/misc/run_demo.py [--work-dir work_dirs/demo]
        [--data-root data/synthetic_polyp] [--cfg-options k=v ...]

1. Generates the synthetic polyp set with ``generate_synthetic_polyps.py`` unless
   ``--data-root`` already holds it (existing data is never overwritten).
2. Trains the demo config (MCANet, MSCAN-T, from scratch, CPU-sized) with
   ``tools/train.py``; the log shows the progress. A work dir that already holds
   checkpoints is refused.
3. Tests the final checkpoint with ``tools/test.py`` on the validation images and writes
   one overlay PNG per image (ground truth | prediction) with mmseg's visualizer.
4. Prints the Dice and where the log, the checkpoint and the pictures are.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'demo',
                          'mcanet_mscan-t_1xb8-adamw-1k_synthetic-polyp-96x96.py')
GENERATOR = osp.join(REPO, 'tools', 'misc', 'generate_synthetic_polyps.py')
SHOW_DIR = 'overlays'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic polyp set, train the demo MCANet on it, '
        'test the checkpoint and save prediction overlays as PNG.')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='demo config (default: %(default)s)')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='folder for the logs, the checkpoint and the overlays; '
                        'must not hold checkpoints (default: %(default)s)')
    parser.add_argument('--data-root', default='data/synthetic_polyp',
                        help='synthetic data folder, generated if missing or empty '
                        '(default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=160,
                        help='training images to generate (default: %(default)s)')
    parser.add_argument('--num-val', type=int, default=40,
                        help='validation images to generate (default: %(default)s)')
    parser.add_argument('--size', type=int, default=128,
                        help='side of the generated images (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the generated data (default: %(default)s)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='config overrides passed to train.py and test.py, '
                        'e.g. train_cfg.max_iters=200')
    return parser.parse_args(argv)


def run(command: List[str]) -> None:
    """Run a tool of this repository; its output goes straight to the terminal."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    subprocess.run([sys.executable, *command], cwd=REPO, env=env, check=True)


def prepare_data(args: argparse.Namespace) -> None:
    """Generate the synthetic set unless the data root already holds one."""
    if osp.isdir(args.data_root) and os.listdir(args.data_root):
        expected = [
            osp.join(args.data_root, sub, split) for sub in ('img_dir', 'ann_dir')
            for split in ('train', 'val')
        ]
        missing = [path for path in expected if not osp.isdir(path)]
        if missing:
            raise FileExistsError(
                f'{args.data_root} is not empty but lacks {", ".join(missing)}: '
                'choose another --data-root (it is never overwritten)')
        print(f'[demo] using the existing data in {args.data_root}', flush=True)
        return
    print(f'[demo] generating {args.num_train} + {args.num_val} synthetic images in '
          f'{args.data_root}', flush=True)
    run([GENERATOR, '--out', args.data_root, '--num-train', str(args.num_train),
         '--num-val', str(args.num_val), '--size', str(args.size), '--seed',
         str(args.seed)])


def newest_metrics(work_dir: str, since: float) -> dict:
    """The metrics ``tools/test.py`` dumped to ``{work_dir}/{time}/{time}.json``."""
    runs = [
        path for path in glob.glob(osp.join(work_dir, '*', '*.json'))
        if osp.getmtime(path) >= since
    ]
    for path in sorted(runs, key=osp.getmtime, reverse=True):
        with open(path) as f:
            metrics = json.load(f)
        if 'mDice' in metrics:
            return metrics
    raise FileNotFoundError(f'no test metrics written in {work_dir} by the test run')


def main(argv: Optional[List[str]] = None) -> float:
    """Run the loop; return the test mDice as a fraction (0-1)."""
    args = parse_args(argv)
    args.work_dir = osp.abspath(args.work_dir)
    args.data_root = osp.abspath(args.data_root)
    existing = sorted(glob.glob(osp.join(args.work_dir, '*.pth')))
    if existing:
        raise FileExistsError(
            f'work dir {args.work_dir} already holds checkpoints (e.g. '
            f'{osp.basename(existing[-1])}): choose another --work-dir')
    start = time.time()
    prepare_data(args)

    data_options = [
        f'{loader}.dataset.data_root={args.data_root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]
    options = ['--cfg-options', *data_options, *args.cfg_options]
    print(f'[demo] training {osp.relpath(args.config, REPO)} into {args.work_dir}',
          flush=True)
    run(['tools/train.py', args.config, '--work-dir', args.work_dir, *options])
    with open(osp.join(args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()

    print(f'[demo] testing {checkpoint}', flush=True)
    test_start = time.time()
    run(['tools/test.py', args.config, checkpoint, '--work-dir', args.work_dir,
         '--show-dir', SHOW_DIR, *options])
    metrics = newest_metrics(args.work_dir, test_start)
    overlays = sorted(
        glob.glob(osp.join(args.work_dir, SHOW_DIR, '**', '*.png'), recursive=True))
    logs = sorted(glob.glob(osp.join(args.work_dir, '*', '*.log')))

    dice = metrics['mDice'] / 100
    print(f'[demo] done in {(time.time() - start) / 60:.1f} min\n'
          f'[demo] validation Dice {dice:.3f} (mDice {metrics["mDice"]:.2f} %, '
          f'mIoU {metrics["mIoU"]:.2f} %, mHD95 {metrics["mHD95"]:.2f} px)\n'
          f'[demo] checkpoint: {checkpoint}\n'
          f'[demo] logs:       {", ".join(logs)}\n'
          f'[demo] overlays:   {len(overlays)} PNG in '
          f'{osp.dirname(overlays[0]) if overlays else "(none)"}', flush=True)
    return dice


if __name__ == '__main__':
    try:
        main()
    except (FileExistsError, FileNotFoundError) as error:
        sys.exit(f'error: {error}')
    except subprocess.CalledProcessError as error:
        sys.exit(f'error: {osp.basename(error.cmd[1])} failed with exit status '
                 f'{error.returncode}')
