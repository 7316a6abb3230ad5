"""Measure how far a resumed run lands from an uninterrupted one.

    python tests/test_engine/measure_resume.py CONFIG --work-dir DIR \
        [--iters 6] [--split 3] [--cfg-options k=v ...]

Runs ``tools/train.py`` three times, as a user would: CONFIG for ``--iters``
iterations straight (checkpoints every ``--split`` iterations), then CONFIG for
``--split`` iterations and a fresh ``tools/train.py --resume`` up to ``--iters``.
Every run is deterministic (``randomness=dict(seed=0, deterministic=True)``). Prints
the largest absolute difference between the two final checkpoints' weights (and
buffers) and whether they are bit-identical; exits 1 above ``--tolerance``.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train(config, work_dir, options, resume=False):
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if resume:
        command.append('--resume')
    command += ['--cfg-options', *options]
    env = dict(
        os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f'training failed ({" ".join(command)}):\n' +
                 (result.stdout + result.stderr)[-3000:])
    return time.time() - start


def weight_difference(path_a, path_b):
    """(max |a - b| over the state_dicts' floating tensors, all bit-identical,
    number of tensors)."""
    import torch

    import mmseg_fusion  # noqa: F401  (weights-only allow-list for the checkpoints)
    a = torch.load(path_a, map_location='cpu')['state_dict']
    b = torch.load(path_b, map_location='cpu')['state_dict']
    if a.keys() != b.keys():
        sys.exit(f'{path_a} and {path_b} hold different keys')
    largest, identical = 0.0, True
    for key in a:
        identical &= torch.equal(a[key], b[key])
        if a[key].is_floating_point():
            diff = (a[key].double() - b[key].double()).abs().max().item()
            largest = max(largest, diff)
    return largest, identical, len(a)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--iters', type=int, default=6)
    parser.add_argument('--split', type=int, default=3)
    parser.add_argument('--tolerance', type=float, default=1e-6)
    parser.add_argument('--cfg-options', nargs='*', default=[])
    args = parser.parse_args(argv)
    common = [
        'randomness.seed=0', 'randomness.deterministic=True',
        f'default_hooks.checkpoint.interval={args.split}', *args.cfg_options
    ]
    straight = osp.join(args.work_dir, 'straight')
    resumed = osp.join(args.work_dir, 'resumed')
    t0 = train(args.config, straight, common + [f'train_cfg.max_iters={args.iters}'])
    t1 = train(args.config, resumed, common + [f'train_cfg.max_iters={args.split}'])
    t2 = train(
        args.config,
        resumed,
        common + [f'train_cfg.max_iters={args.iters}'],
        resume=True)
    first, same_first, _ = weight_difference(
        osp.join(straight, f'iter_{args.split}.pth'),
        osp.join(resumed, f'iter_{args.split}.pth'))
    largest, identical, count = weight_difference(
        osp.join(straight, f'iter_{args.iters}.pth'),
        osp.join(resumed, f'iter_{args.iters}.pth'))
    print(f'runs: straight {t0:.0f} s, first part {t1:.0f} s, resumed part {t2:.0f} s')
    print(f'iter {args.split} (before the interruption): max |diff| {first:.3g}, '
          f'bit-identical: {same_first}')
    print(f'iter {args.iters}: max |straight - resumed| over {count} tensors: '
          f'{largest:.3g}, bit-identical: {identical}')
    return 0 if largest <= args.tolerance else 1


if __name__ == '__main__':
    sys.exit(main())
