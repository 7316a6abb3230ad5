"""Resident memory of a long training run, sampled every N iterations.

    python tools/analysis_tools/memory_curve.py CONFIG --work-dir DIR
        [--iters 2000] [--val-interval 250] [--every 100] [--warmup 500]
        [--threads N] [--cfg-options k=v ...]
    python tools/analysis_tools/memory_curve.py CONFIG --from-csv DIR/memory_curve.csv
        [--warmup 500]

Trains CONFIG with ``tools/train.py``'s config handling (``--cfg-options``,
``data_root=PATH``, workers fitted to the CPUs) for ``--iters`` iterations, validating
every ``--val-interval``. Schedulers and the checkpoint interval that ended at the
config's ``max_iters`` are stretched to ``--iters``, so the learning rate does not
drop to zero half-way. Before the first iteration and after every ``--every``-th, a
hook reads from ``/proc`` (Linux only):

- ``main_rss_mib``: the resident set size (VmRSS) of the training process;
- ``workers_rss_mib``: the summed VmRSS of its descendants (dataloader workers);
- ``total_rss_mib``: their sum (pages shared after ``fork`` are counted once per
  process, so this overstates the physical memory);
- ``total_pss_mib``: the summed proportional set size (shared pages divided among
  the processes sharing them), the physical memory the run holds;
- ``processes``: how many processes were summed.

Written to the work dir: ``memory_curve.csv`` (one row per sample, appended as the
run goes, so a run stopped early keeps its samples: ``--from-csv`` summarises them),
``memory_curve.json`` (samples, least-squares slopes and the verdict) and
``memory_curve.md`` (the table and the verdict, for a README). The slopes, in MiB
per 1,000 iterations, are fitted to the samples from ``--warmup`` on (the first
iterations and the first validation start the dataloader workers and fill the
allocator's caches). The run is called flat when the fitted growth of the total RSS
over the fitted span is below ``--tolerance`` percent of its mean (PSS also moves
when other processes sharing the same library pages start or end, e.g. on a shared
machine, so it is reported, not judged).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import (OutputExistsError, UsageError, check_data_folders,
                                load_run_config, refuse_to_overwrite_checkpoints,
                                run_cli)
from mmseg_fusion.utils.run_config import quiet_paramwise_options

MIB = 1024 * 1024
FIELDS = ('iteration', 'seconds', 'processes', 'main_rss_mib', 'workers_rss_mib',
          'total_rss_mib', 'total_pss_mib')
SLOPE_FIELDS = ('main_rss_mib', 'workers_rss_mib', 'total_rss_mib', 'total_pss_mib')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Resident memory of a training run, every N iterations')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir', help='work dir of the run; the curve is written there')
    parser.add_argument(
        '--from-csv',
        metavar='CSV',
        help='train nothing: summarise the memory_curve.csv of a run '
        '(e.g. one stopped early) and write its .json and .md beside '
        'it')
    parser.add_argument(
        '--iters',
        type=int,
        default=2000,
        help='training iterations (default: %(default)s)')
    parser.add_argument(
        '--val-interval',
        type=int,
        default=250,
        help='validate every N iterations (default: %(default)s)')
    parser.add_argument(
        '--every',
        type=int,
        default=100,
        help='sample memory every N iterations (default: %(default)s)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=500,
        help='fit the slopes to samples from this iteration on '
        '(default: %(default)s)')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=2.0,
        help='flat when the fitted total RSS growth is below this percent '
        'of its mean (default: %(default)s)')
    parser.add_argument(
        '--threads',
        type=int,
        help="torch intra-op threads (default: PyTorch's choice)")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    for name in ('iters', 'val_interval', 'every', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive int, "
                         f'got {value}')
    if args.work_dir is None and args.from_csv is None:
        parser.error('--work-dir is required (unless --from-csv)')
    if not 0 <= args.warmup < args.iters:
        parser.error(f'--warmup must be in [0, --iters), got {args.warmup}')
    return args


def read_kib(path: str, key: str) -> int:
    """The ``key:  N kB`` field of a ``/proc`` file in KiB; 0 when the process is gone
    or the field is absent (a kernel thread, a zombie)."""
    try:
        with open(path) as file:
            for line in file:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def descendants(pid: int) -> List[int]:
    """Ids of every process below ``pid`` in the process tree, read from /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as file:
                stat = file.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # the command name (2nd field) may hold spaces; the ppid follows its ')'
        parent = int(stat[stat.rindex(')') + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def memory_sample(pid: int) -> Dict[str, float]:
    """RSS and PSS (MiB) of process ``pid`` and of its descendants."""
    workers = descendants(pid)
    main_rss = read_kib(f'/proc/{pid}/status', 'VmRSS')
    workers_rss = sum(read_kib(f'/proc/{p}/status', 'VmRSS') for p in workers)
    pss = sum(read_kib(f'/proc/{p}/smaps_rollup', 'Pss') for p in [pid] + workers)
    return dict(
        processes=1 + len(workers),
        main_rss_mib=main_rss / 1024,
        workers_rss_mib=workers_rss / 1024,
        total_rss_mib=(main_rss + workers_rss) / 1024,
        total_pss_mib=pss / 1024)


class MemorySamplingHook(Hook):
    """Record :func:`memory_sample` of the training process before the first
    iteration and after every ``every``-th; ``samples`` holds one dict per sample
    (``FIELDS``), and each is appended to ``csv_path`` at once (so a run stopped
    early keeps its curve; :func:`main`'s ``--from-csv`` summarises it)."""

    priority = 'LOWEST'

    def __init__(self, every: int, csv_path: str):
        self.every = every
        self.csv_path = csv_path
        self.samples: List[Dict[str, float]] = []
        self.start = time.monotonic()

    def record(self, iteration: int) -> None:
        sample = dict(
            iteration=iteration, seconds=round(time.monotonic() - self.start, 1))
        sample.update(memory_sample(os.getpid()))
        self.samples.append(sample)
        with open(self.csv_path, 'a', newline='') as file:
            writer = csv.DictWriter(file, fieldnames=FIELDS)
            if file.tell() == 0:
                writer.writeheader()
            writer.writerow(sample)

    def before_train(self, runner) -> None:
        self.start = time.monotonic()
        self.record(0)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if (runner.iter + 1) % self.every == 0:
            self.record(runner.iter + 1)


def slope_per_kiter(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``, times 1,000."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x)**2 for x in xs)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return 1000.0 * cov / var


def summarise(samples: List[Dict[str, float]], warmup: int, tolerance: float) -> dict:
    """Slopes (MiB per 1,000 iterations) of each memory field over the samples from
    ``warmup`` on, the fitted total RSS growth over that span and whether it is flat."""
    fitted = [s for s in samples if s['iteration'] >= warmup]
    if len(fitted) < 2:
        raise UsageError(f'only {len(fitted)} memory sample(s) from iteration {warmup} '
                         'on; lower --warmup or --every, or raise --iters')
    xs = [s['iteration'] for s in fitted]
    slopes = {
        name: slope_per_kiter(xs, [s[name] for s in fitted])
        for name in SLOPE_FIELDS
    }
    span = xs[-1] - xs[0]
    growth = slopes['total_rss_mib'] * span / 1000.0
    mean = sum(s['total_rss_mib'] for s in fitted) / len(fitted)
    return dict(
        fitted_from=xs[0],
        fitted_to=xs[-1],
        slopes_mib_per_kiter={
            k: round(v, 3)
            for k, v in slopes.items()
        },
        fitted_rss_growth_mib=round(growth, 2),
        mean_rss_mib=round(mean, 1),
        tolerance_percent=tolerance,
        flat=abs(growth) < tolerance / 100.0 * mean)


def markdown(samples: List[Dict[str, float]], summary: dict, command: str) -> str:
    """The samples as a markdown table, with the slopes and the verdict."""
    header = ('| iteration | time (s) | processes | main RSS (MiB) | workers RSS (MiB) '
              '| total RSS (MiB) | total PSS (MiB) |')
    lines = [header, '|' + '---:|' * 7]
    for s in samples:
        lines.append(f"| {s['iteration']} | {s['seconds']:.0f} | {s['processes']} | "
                     f"{s['main_rss_mib']:.1f} | {s['workers_rss_mib']:.1f} | "
                     f"{s['total_rss_mib']:.1f} | {s['total_pss_mib']:.1f} |")
    slopes = summary['slopes_mib_per_kiter']
    verdict = 'flat' if summary['flat'] else 'NOT flat'
    lines += [
        '',
        f"Least-squares slopes over iterations {summary['fitted_from']}-"
        f"{summary['fitted_to']}, MiB per 1,000 iterations: main RSS "
        f"{slopes['main_rss_mib']:+.2f}, workers RSS {slopes['workers_rss_mib']:+.2f}, "
        f"total RSS {slopes['total_rss_mib']:+.2f}, total PSS "
        f"{slopes['total_pss_mib']:+.2f}. Fitted total RSS growth over the span: "
        f"{summary['fitted_rss_growth_mib']:+.1f} MiB of {summary['mean_rss_mib']:.0f} "
        f"MiB: **{verdict}** (tolerance {summary['tolerance_percent']:g}%).",
        '',
        f'Command: `{command}`',
        '',
    ]
    return '\n'.join(lines)


def stretch_schedule(cfg, iters: int, val_interval: int) -> None:
    """Set the run's length and validation interval in ``cfg`` (in place); iteration
    schedulers and a checkpoint interval that ended at the old ``max_iters`` end at
    ``iters``."""
    old = cfg.train_cfg.get('max_iters')
    if old is None:
        raise UsageError('memory_curve.py needs an iteration-based config '
                         f'(train_cfg.max_iters); {cfg.filename} has train_cfg '
                         f'{dict(cfg.train_cfg)}')
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_interval
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler.get('end') == old:
            scheduler['end'] = iters
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('interval') == old:
        checkpoint['interval'] = iters


def read_csv(path: str) -> List[Dict[str, float]]:
    """The samples of a ``memory_curve.csv``."""
    if not osp.isfile(path):
        raise UsageError(f'--from-csv {path} does not exist')
    with open(path, newline='') as file:
        rows = list(csv.DictReader(file))
    if not rows or set(rows[0]) != set(FIELDS):
        raise UsageError(f'--from-csv {path} is not a memory_curve.csv: expected the '
                         f'columns {", ".join(FIELDS)}')
    return [{
        key: (int(row[key]) if key in ('iteration', 'processes') else float(row[key]))
        for key in FIELDS
    } for row in rows]


def write_outputs(work_dir: str, samples: List[Dict[str, float]], summary: dict,
                  command: str) -> None:
    """``memory_curve.json`` and ``memory_curve.md`` beside the CSV."""
    with open(osp.join(work_dir, 'memory_curve.json'), 'w') as file:
        json.dump(
            dict(command=command, summary=summary, samples=samples), file, indent=1)
    with open(osp.join(work_dir, 'memory_curve.md'), 'w') as file:
        file.write(markdown(samples, summary, command))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    command = 'python tools/analysis_tools/memory_curve.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])
    if args.from_csv is not None:
        samples = read_csv(args.from_csv)
        summary = summarise(samples, args.warmup, args.tolerance)
        write_outputs(
            osp.dirname(osp.abspath(args.from_csv)), samples, summary, command)
        print(markdown(samples, summary, command))
        return summary
    if not osp.isdir('/proc/self'):
        raise UsageError('memory_curve.py reads /proc and runs on Linux only')
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = load_run_config(args.config, args.work_dir, args.cfg_options)
    stretch_schedule(cfg, args.iters, args.val_interval)
    refuse_to_overwrite_checkpoints(cfg.work_dir)
    check_data_folders(cfg, ['train_dataloader', 'val_dataloader'])
    runner = Runner.from_cfg(cfg)
    quiet_paramwise_options(runner.logger)
    csv_path = osp.join(cfg.work_dir, 'memory_curve.csv')
    if osp.exists(csv_path):
        raise OutputExistsError(f'{csv_path} exists: pass another --work-dir (or '
                                'summarise it with --from-csv)')
    hook = MemorySamplingHook(args.every, csv_path)
    runner.register_hook(hook)
    runner.train()
    summary = summarise(hook.samples, args.warmup, args.tolerance)
    write_outputs(cfg.work_dir, hook.samples, summary, command)
    print(markdown(hook.samples, summary, command))
    return summary


if __name__ == '__main__':
    run_cli(main)
