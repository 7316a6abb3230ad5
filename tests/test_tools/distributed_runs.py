"""Tiny distributed runs for the multi-process tests and the exit measurement: a
32 px U-Net config whose runs record each rank's loss per iteration, and helpers
that run ``tools/dist_train.sh`` (torchrun) or ``tools/train.py`` on it."""
import atexit
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS, RUNNERS

from mmseg_fusion.engine import CPUDistributedRunner, end_process_group
from tests.tiny_run import CONFIG_TEMPLATE, write_tiny_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# The tiny run with GroupNorm (per-sample statistics, so a batch split across
# processes normalises as one batch does) and SGD (Adam's first step is sign(g) * lr,
# which turns rounding-level differences of gradients near zero into lr-sized ones).
RECORDED = '''
custom_imports = dict(imports=['mmseg_fusion', 'tests.test_tools.distributed_runs'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='LossRecorderHook')]
'''


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Append each training iteration's loss, as this rank computed it, to
    ``{work_dir}/losses_rank{rank}.jsonl``."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        path = osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl')
        with open(path, 'a') as file:
            file.write(
                json.dumps(dict(iter=runner.iter + 1, loss=float(outputs['loss']))) +
                '\n')


@HOOKS.register_module()
class FailOnRankHook(Hook):
    """Raise after the first training iteration on one rank only (the others go on
    to their next collective), as a data error on one process would."""

    def __init__(self, rank: int):
        self.rank = rank

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_rank() == self.rank:
            raise RuntimeError(f'rank {self.rank} fails on purpose')


@RUNNERS.register_module()
class RunnerWithoutTeardown(CPUDistributedRunner):
    """The control of the exit measurement: the CPU runner, but the process group is
    left to interpreter teardown, as mmengine leaves it."""

    def setup_env(self, env_cfg: dict) -> None:
        super().setup_env(env_cfg)
        atexit.unregister(end_process_group)


def write_config(root: str,
                 max_iters: int = 2,
                 norm: str = 'GN',
                 fail_rank: Optional[int] = None) -> str:
    """The data (4 images of 32 px) and the SGD config under ``root``, with GroupNorm
    (``norm='GN'``) or tests/tiny_run.py's BatchNorm (``norm='BN'``); with
    ``fail_rank``, that rank raises after its first iteration."""
    data_root = osp.join(root, 'data')
    if not osp.isdir(data_root):
        write_tiny_data(data_root, num_classes=2, size=32, num_images=4)
    text = CONFIG_TEMPLATE.format(data_root=data_root, max_iters=max_iters)
    if norm == 'GN':
        text = text.replace("norm_cfg=dict(type='BN')",
                            "norm_cfg=dict(type='GN', num_groups=2)")
    text = text.replace("optimizer=dict(type='Adam', lr=0.01)",
                        "optimizer=dict(type='SGD', lr=0.05, momentum=0.9)")
    if fail_rank is not None:
        text += RECORDED.replace("dict(type='LossRecorderHook')",
                                 f"dict(type='FailOnRankHook', rank={fail_rank})")
        name = f'tiny_unet_{norm.lower()}_fail{fail_rank}.py'
    else:
        text += RECORDED
        name = f'tiny_unet_{norm.lower()}.py'
    config = osp.join(root, name)
    with open(config, 'w') as file:
        file.write(text)
    return config


def free_port() -> int:
    """A TCP port nobody listens on now, for torchrun's rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_env(port: int) -> dict:
    """Environment of a tool run: the repository importable, one intra-op thread per
    process, the torchrun port."""
    return dict(
        os.environ,
        PYTHONPATH=REPO,
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        PORT=str(port))


def run(args: Sequence[str],
        port: int,
        timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command from the repository root, capturing its output; past
    ``timeout`` its whole process group (torchrun and the ranks) is killed and
    ``subprocess.TimeoutExpired`` raised."""
    with subprocess.Popen(
            list(args),
            cwd=REPO,
            env=tool_env(port),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


Completed = subprocess.CompletedProcess


def dist_train(config: str,
               work_dir: str,
               port: int,
               batch_per_process: int,
               processes: int = 2,
               options: Sequence[str] = (),
               timeout: int = 600) -> Completed:
    """``tools/dist_train.sh CONFIG N`` with ``batch_per_process`` images per rank
    and more ``--cfg-options``."""
    return run([
        'bash', 'tools/dist_train.sh', config,
        str(processes), '--work-dir', work_dir, '--cfg-options',
        f'train_dataloader.batch_size={batch_per_process}', *options
    ],
               port,
               timeout=timeout)


def losses(work_dir: str) -> Dict[int, List[float]]:
    """The recorded losses: rank -> the loss of iterations 1, 2, ..."""
    found = {}
    for name in sorted(os.listdir(work_dir)):
        if name.startswith('losses_rank') and name.endswith('.jsonl'):
            rank = int(name[len('losses_rank'):-len('.jsonl')])
            with open(osp.join(work_dir, name)) as file:
                rows = [json.loads(line) for line in file]
            found[rank] = [row['loss'] for row in sorted(rows, key=lambda r: r['iter'])]
    return found
