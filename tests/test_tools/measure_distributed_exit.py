"""Count aborts at the end of 2-process CPU runs: ``tools/dist_train.sh`` on the tiny
GroupNorm config of :mod:`tests.test_tools.distributed_runs`, N times.

    python -m tests.test_tools.measure_distributed_exit --runs 50 --out DIR
        [--control] [--norm GN|BN] [--cfg-options k=v ...]

Each run trains 2 iterations on 2 processes (gloo), validates and saves a
checkpoint, in a fresh work dir under DIR (``--norm BN``: tests/tiny_run.py's
BatchNorm model; ``--cfg-options`` go to every run). A run counts as an abort when
torchrun exits non-zero or a rank printed ``terminate called`` / ``Aborted`` / a
fatal signal; its output is kept as ``DIR/run_K.log``. The summary (runs, aborts,
the failed runs, seconds per run, load average) is printed and written to
``DIR/summary.json``. ``--control`` leaves the process group to interpreter
teardown, as mmengine does (``RunnerWithoutTeardown``), to measure what the
runner's teardown at exit changes.
"""
import argparse
import json
import os
import os.path as osp
import re
import time

from tests.test_tools.distributed_runs import dist_train, free_port, write_config

ABORT_SIGNS = re.compile(r'terminate called|Aborted|SIGABRT|Signal 6|core dumped|'
                         r'Fatal Python error')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=50, help='number of runs')
    parser.add_argument('--out', required=True, help='folder for the runs (new)')
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument(
        '--control', action='store_true', help='no teardown at exit (the control)')
    parser.add_argument('--norm', choices=['GN', 'BN'], default='GN')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='more key=value overrides for every run')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.runs < 1:
        raise SystemExit(f'--runs must be a positive number, got {args.runs}')
    if osp.exists(args.out) and os.listdir(args.out):
        raise SystemExit(f'--out {args.out} is not empty: choose a new folder')
    os.makedirs(args.out, exist_ok=True)
    config = write_config(args.out, max_iters=2, norm=args.norm)
    failed, seconds = [], []
    for k in range(1, args.runs + 1):
        start = time.monotonic()
        result = dist_train(
            config,
            osp.join(args.out, f'work_{k}'),
            free_port(),
            batch_per_process=1,
            processes=args.processes,
            options=args.cfg_options +
            (['runner_type=RunnerWithoutTeardown'] if args.control else []))
        seconds.append(time.monotonic() - start)
        output = result.stdout + result.stderr
        if result.returncode != 0 or ABORT_SIGNS.search(output):
            with open(osp.join(args.out, f'run_{k}.log'), 'w') as file:
                file.write(output)
            failed.append(
                dict(
                    run=k,
                    returncode=result.returncode,
                    sign=(ABORT_SIGNS.search(output) or [''])[0]))
        print(
            f'run {k}/{args.runs}: rc={result.returncode} '
            f'{seconds[-1]:.0f} s, aborts so far {len(failed)}',
            flush=True)
    summary = dict(
        runs=args.runs,
        processes=args.processes,
        control=args.control,
        norm=args.norm,
        cfg_options=args.cfg_options,
        aborts=len(failed),
        failed=failed,
        mean_seconds=sum(seconds) / len(seconds),
        load_average=os.getloadavg())
    with open(osp.join(args.out, 'summary.json'), 'w') as file:
        json.dump(summary, file, indent=1)
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
