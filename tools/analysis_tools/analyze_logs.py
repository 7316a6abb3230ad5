"""Training curves and best values from mmengine's ``vis_data/scalars.json`` logs.

    python tools/analysis_tools/analyze_logs.py RUN [RUN ...] [--keys loss mDice]
        [--out curves.png] [--summary] [--legend NAME ...] [--title TEXT]

A RUN is a ``scalars.json`` file (one JSON object per line, each with a ``step``), a
work dir's timestamped run folder holding ``vis_data/scalars.json``, or a work dir:
then the ``*/vis_data/scalars.json`` of all its runs are read in name (time) order, so
a resumed run continues its first part; a step logged twice keeps its last value.
``--out`` plots one panel per key, one line per RUN (matplotlib, Agg backend).
``--summary`` prints, per RUN and key, the best value and its step: the lowest for
keys containing 'loss', 'hd95', 'time' or 'memory', the highest for the others.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import matplotlib

import mmseg_fusion  # noqa: F401  (compat fixes, as in every tool)
from mmseg_fusion.utils import PathNotFoundError, UsageError, run_cli

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

LOWER_IS_BETTER = ('loss', 'hd95', 'time', 'memory')

# key -> sorted [(step, value)]
Curves = Dict[str, List[Tuple[int, float]]]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot curves and summarise mmengine scalars.json logs')
    parser.add_argument(
        'runs',
        nargs='+',
        metavar='RUN',
        help='scalars.json files, run folders or work dirs')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=['loss'],
        help='scalars to plot / summarise (default: loss)')
    parser.add_argument('--out', help='PNG file to write the curves to')
    parser.add_argument(
        '--summary',
        action='store_true',
        help='print the best value of each key and its step')
    parser.add_argument('--legend', nargs='+', help='one name per RUN')
    parser.add_argument('--title', help='figure title')
    args = parser.parse_args(argv)
    if not args.out and not args.summary:
        parser.error('nothing to do: give --out FILE.png and/or --summary')
    if args.legend and len(args.legend) != len(args.runs):
        parser.error(f'--legend needs one name per RUN ({len(args.runs)}), '
                     f'got {len(args.legend)}')
    names = args.legend or args.runs
    if len(set(names)) != len(names):
        parser.error(f'each RUN needs its own name, got {names}')
    return args


def find_scalar_files(run: str) -> List[str]:
    """The scalars.json files of one RUN argument, oldest first."""
    if osp.isfile(run):
        return [run]
    direct = osp.join(run, 'vis_data', 'scalars.json')
    if osp.isfile(direct):
        return [direct]
    found = sorted(glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise PathNotFoundError(f'no scalars.json in {run!r} (looked for the file '
                                'itself, vis_data/scalars.json and '
                                '*/vis_data/scalars.json)')
    return found


def load_curves(files: Sequence[str]) -> Curves:
    """Every numeric scalar of the files, by key, as sorted (step, value) pairs."""
    by_key: Dict[str, Dict[int, float]] = {}
    for path in files:
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if 'step' not in record:
                    raise UsageError(f'{path}:{line_no} has no "step": {line.strip()}')
                for key, value in record.items():
                    if key != 'step' and isinstance(value, (int, float)):
                        by_key.setdefault(key, {})[record['step']] = value
    return {key: sorted(points.items()) for key, points in by_key.items()}


def best(key: str, points: List[Tuple[int, float]]) -> Tuple[float, int, str]:
    """(best value, its first step, 'min' or 'max') of one curve."""
    lower = any(word in key.lower() for word in LOWER_IS_BETTER)
    pick = min if lower else max
    value = pick(v for _, v in points)
    step = next(s for s, v in points if v == value)
    return value, step, 'min' if lower else 'max'


def summary_table(runs: Dict[str, Curves], keys: Sequence[str]) -> str:
    lines = [
        '| run | key | best | step | direction | last |', '|---|---|---:|---:|---|---:|'
    ]
    for name, curves in runs.items():
        for key in keys:
            if key not in curves:
                continue
            value, step, direction = best(key, curves[key])
            lines.append(f'| {name} | {key} | {value:.6g} | {step} | {direction} | '
                         f'{curves[key][-1][1]:.6g} |')
    return '\n'.join(lines) + '\n'


def plot(runs: Dict[str, Curves], keys: Sequence[str], out: str, title=None) -> None:
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(8, 3 * len(keys)), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], keys):
        for name, curves in runs.items():
            if key in curves:
                steps, values = zip(*curves[key])
                ax.plot(steps, values, marker='.', label=name)
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[-1, 0].set_xlabel('step')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None) -> Dict[str, Curves]:
    args = parse_args(argv)
    names = args.legend or args.runs
    runs = {
        name: load_curves(find_scalar_files(run))
        for name, run in zip(names, args.runs)
    }
    missing = [k for k in args.keys if not any(k in c for c in runs.values())]
    if missing:
        available = sorted(set().union(*runs.values()))
        raise UsageError(f'--keys {missing} are in no log; available: {available}')
    if args.out:
        plot(runs, args.keys, args.out, args.title)
        print(f'curves of {args.keys} written to {args.out}')
    if args.summary:
        print(summary_table(runs, args.keys), end='')
    return runs


if __name__ == '__main__':
    run_cli(main)
