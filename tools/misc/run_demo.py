"""Run the whole demo loop: synthetic data, training, test, predictions.

    python tools/misc/run_demo.py [--volumetric] [--work-dir DIR] [--data-root DIR]
        [--raw-root DIR] [--threads N] [--cfg-options k=v ...]

2-D (default): MCANet on synthetic polyps.

1. Generates the synthetic polyp set with ``generate_synthetic_polyps.py`` unless
   ``--data-root`` already holds it (existing data is never overwritten).
2. Trains the demo config (MCANet, MSCAN-T, from scratch, CPU-sized) with
   ``tools/train.py``; the log shows the progress. A work dir that already holds
   checkpoints is refused.
3. Tests the final checkpoint with ``tools/test.py`` on the validation images and writes
   one overlay PNG per image (ground truth | prediction) with mmseg's visualizer.
4. Prints the Dice and where the log, the checkpoint and the pictures are.

3-D (``--volumetric``): a tiny D-Net on synthetic abdominal CT.

1. Generates synthetic CT volumes with 13 organ labels with ``generate_synthetic_ct.py``
   into ``--raw-root`` (unless it holds them already) and converts them with
   ``dataset_converters/btcv.py --protocol holdout`` into ``--data-root``
   (``--num-val`` cases held out), unless ``--data-root`` already holds the
   converted set. Existing data is never overwritten.
2. Trains the 3-D demo config with ``tools/train.py`` (the resampled, windowed volumes
   are cached once under ``{data-root}/cache``).
3. Tests the final checkpoint with ``tools/test.py --out``: sliding-window inference
   over each whole held-out volume, Dice / HD95 (mm) / NSD per organ in the original
   image space, one NIfTI prediction per case aligned with its CT.
4. Prints the mean Dice over organs and where the NIfTI files, the per-case CSV, the
   logs and the checkpoint are.
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
# The 3-D demo (--volumetric).
DEFAULT_CONFIG_3D = osp.join(
    REPO, 'configs', 'demo',
    'dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py')
GENERATOR_3D = osp.join(REPO, 'tools', 'misc', 'generate_synthetic_ct.py')
CONVERTER_3D = osp.join(REPO, 'tools', 'dataset_converters', 'btcv.py')
PREDICTIONS_DIR = 'predictions'
# Per mode: config, work dir, data root, training and held-out cases (2-D: images).
MODE_DEFAULTS = {
    False:
    dict(
        config=DEFAULT_CONFIG,
        work_dir='work_dirs/demo',
        data_root='data/synthetic_polyp',
        num_train=160,
        num_val=40),
    True:
    dict(
        config=DEFAULT_CONFIG_3D,
        work_dir='work_dirs/demo_3d',
        data_root='data/synthetic_ct_btcv',
        num_train=16,
        num_val=4),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic polyp set, train the demo MCANet on it, '
        'test the checkpoint and save prediction overlays as PNG; with --volumetric, '
        'generate synthetic CT, train a tiny D-Net, test it on whole volumes and save '
        'NIfTI predictions.')
    parser.add_argument(
        '--volumetric',
        action='store_true',
        help='run the 3-D demo (synthetic CT, tiny D-Net)')
    parser.add_argument(
        '--config',
        help='demo config (default: '
        f'{osp.relpath(DEFAULT_CONFIG, REPO)}; 3-D: '
        f'{osp.relpath(DEFAULT_CONFIG_3D, REPO)})')
    parser.add_argument(
        '--work-dir',
        help='folder for the logs, the checkpoint and the overlays or '
        'predictions; must not hold checkpoints (default: '
        'work_dirs/demo; 3-D: work_dirs/demo_3d)')
    parser.add_argument(
        '--data-root',
        help='synthetic data folder, generated if missing or empty '
        '(default: data/synthetic_polyp; 3-D: the converted volumes, '
        'data/synthetic_ct_btcv)')
    parser.add_argument(
        '--raw-root',
        default='data/synthetic_ct',
        help='3-D: the generated volumes in the raw BTCV layout, '
        'generated if missing or empty (default: %(default)s)')
    parser.add_argument(
        '--num-train',
        type=int,
        help='training images to generate (default: 160; 3-D: '
        'volumes, 16)')
    parser.add_argument(
        '--num-val',
        type=int,
        help='validation images to generate (default: 40; 3-D: '
        'held-out volumes, 4)')
    parser.add_argument(
        '--size',
        type=int,
        default=128,
        help='2-D: side of the generated images (default: '
        '%(default)s)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=3,
        default=(96, 96, 48),
        metavar=('X', 'Y', 'Z'),
        help='3-D: voxels per axis of the generated volumes '
        '(default: 96 96 48)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the generated data (default: %(default)s)')
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads of training and test (OMP_NUM_THREADS; '
        "default: PyTorch's choice, one per core). On a machine "
        'other jobs keep busy, 1 is often faster.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='config overrides passed to train.py and test.py, '
        'e.g. train_cfg.max_iters=200')
    args = parser.parse_args(argv)
    for key, value in MODE_DEFAULTS[args.volumetric].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.num_train < 1 or args.num_val < 1:
        parser.error(f'--num-train and --num-val must be positive, got '
                     f'{args.num_train} and {args.num_val}')
    if args.volumetric and args.num_train + args.num_val > 30:
        parser.error('--volumetric: the generator makes at most 30 labelled volumes '
                     f'(BTCV case numbers), got {args.num_train} + {args.num_val}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be a positive int, got {args.threads}')
    return args


def run(command: List[str], threads: Optional[int] = None) -> None:
    """Run a tool of this repository; its output goes straight to the terminal.
    ``threads`` sets OMP_NUM_THREADS (PyTorch's CPU threads) for it."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO, env.get('PYTHONPATH')) if p)
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
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
    print(
        f'[demo] generating {args.num_train} + {args.num_val} synthetic images in '
        f'{args.data_root}',
        flush=True)
    run([
        GENERATOR, '--out', args.data_root, '--num-train',
        str(args.num_train), '--num-val',
        str(args.num_val), '--size',
        str(args.size), '--seed',
        str(args.seed)
    ])


def is_empty(folder: str) -> bool:
    """Whether ``folder`` is missing or holds nothing."""
    return not (osp.isdir(folder) and os.listdir(folder))


def prepare_volumes(args: argparse.Namespace) -> None:
    """Generate the synthetic CT set into the raw root and convert it into the data
    root, skipping each step whose output already exists (never overwritten)."""
    raw, converted = args.raw_root, args.data_root
    if not is_empty(converted):
        if not osp.isfile(osp.join(converted, 'dataset.json')):
            raise FileExistsError(
                f'{converted} is not empty but lacks dataset.json: choose another '
                '--data-root (it is never overwritten)')
        print(f'[demo] using the existing volumes in {converted}', flush=True)
        return
    num_cases = args.num_train + args.num_val
    if is_empty(raw):
        print(
            f'[demo] generating {num_cases} synthetic CT volumes in {raw}', flush=True)
        run([
            GENERATOR_3D, '--out', raw, '--num-cases',
            str(num_cases), '--shape', *(str(s) for s in args.shape), '--seed',
            str(args.seed)
        ])
    elif not osp.isdir(osp.join(raw, 'RawData', 'Training')):
        raise FileExistsError(
            f'{raw} is not empty but lacks RawData/Training: choose another '
            '--raw-root (it is never overwritten)')
    else:
        print(f'[demo] using the existing volumes in {raw}', flush=True)
    print(
        f'[demo] converting them into {converted} ({args.num_val} held out)',
        flush=True)
    run([
        CONVERTER_3D, raw, '-o', converted, '--protocol', 'holdout', '--val-ratio',
        repr(args.num_val / num_cases), '--seed',
        str(args.seed)
    ])


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
    args.raw_root = osp.abspath(args.raw_root)
    existing = sorted(glob.glob(osp.join(args.work_dir, '*.pth')))
    if existing:
        raise FileExistsError(
            f'work dir {args.work_dir} already holds checkpoints (e.g. '
            f'{osp.basename(existing[-1])}): choose another --work-dir')
    start = time.time()
    if args.volumetric:
        prepare_volumes(args)
        # data_root moves every path of the config under it (datasets, cache).
        data_options = [f'data_root={args.data_root}']
    else:
        prepare_data(args)
        data_options = [
            f'{loader}.dataset.data_root={args.data_root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        ]
    options = ['--cfg-options', *data_options, *args.cfg_options]
    print(
        f'[demo] training {osp.relpath(args.config, REPO)} into {args.work_dir}',
        flush=True)
    train_start = time.time()
    run(['tools/train.py', args.config, '--work-dir', args.work_dir, *options],
        args.threads)
    train_minutes = (time.time() - train_start) / 60
    with open(osp.join(args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()

    print(f'[demo] testing {checkpoint}', flush=True)
    test_start = time.time()
    if args.volumetric:
        predictions = osp.join(args.work_dir, PREDICTIONS_DIR)
        outputs = ['--out', predictions]
    else:
        outputs = ['--show-dir', SHOW_DIR]
    run([
        'tools/test.py', args.config, checkpoint, '--work-dir', args.work_dir, *outputs,
        *options
    ], args.threads)
    metrics = newest_metrics(args.work_dir, test_start)
    logs = sorted(glob.glob(osp.join(args.work_dir, '*', '*.log')))
    dice = metrics['mDice'] / 100
    timing = (f'[demo] done in {(time.time() - start) / 60:.1f} min (training '
              f'{train_minutes:.1f} min)\n')
    if args.volumetric:
        organs = ', '.join(f'{key[5:]} {value / 100:.2f}'
                           for key, value in metrics.items() if key.startswith('Dice.'))
        niftis = sorted(glob.glob(osp.join(predictions, '*.nii.gz')))
        csvs = [
            path for path in glob.glob(osp.join(args.work_dir, '*', '*.csv'))
            if osp.getmtime(path) >= test_start
        ]
        print(
            f'{timing}'
            f'[demo] test mean Dice over organs {dice:.3f} (mDice '
            f'{metrics["mDice"]:.2f} %, mHD95 {metrics["mHD95"]:.2f} mm, mNSD '
            f'{metrics["mNSD"]:.2f} % at 1 mm)\n'
            f'[demo] Dice per organ: {organs}\n'
            f'[demo] predictions: {len(niftis)} NIfTI in {predictions}\n'
            f'[demo] per-case CSV: {", ".join(sorted(csvs)) or "(none)"}\n'
            f'[demo] checkpoint:  {checkpoint}\n'
            f'[demo] logs:        {", ".join(logs)}',
            flush=True)
        return dice
    overlays = sorted(
        glob.glob(osp.join(args.work_dir, SHOW_DIR, '**', '*.png'), recursive=True))
    print(
        f'{timing}'
        f'[demo] validation Dice {dice:.3f} (mDice {metrics["mDice"]:.2f} %, '
        f'mIoU {metrics["mIoU"]:.2f} %, mHD95 {metrics["mHD95"]:.2f} px)\n'
        f'[demo] checkpoint: {checkpoint}\n'
        f'[demo] logs:       {", ".join(logs)}\n'
        f'[demo] overlays:   {len(overlays)} PNG in '
        f'{osp.dirname(overlays[0]) if overlays else "(none)"}',
        flush=True)
    return dice


if __name__ == '__main__':
    try:
        main()
    except (FileExistsError, FileNotFoundError) as error:
        sys.exit(f'error: {error}')
    except subprocess.CalledProcessError as error:
        sys.exit(f'error: {osp.basename(error.cmd[1])} failed with exit status '
                 f'{error.returncode}')
