"""Run tools/train.py and SIGKILL it at a chosen moment (for the engine tests).

    python tests/test_engine/kill_run.py MOMENT CONFIG WORK_DIR [train.py options]

MOMENT is one of
    save:NAME        while writing the file whose name contains NAME (e.g. iter_4):
                     half of the first write reaches the disk, then the kill
    pointer:NAME     while rewriting last_checkpoint to name NAME: half written, kill
    iter:N           at the end of training iteration N (1-based), before anything
                     of that iteration is saved
"""
import builtins
import os
import signal
import sys

import mmengine.config.config as mmengine_config
import torch

sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.scripts import load_script  # noqa: E402


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


class HalfThenKill:
    """A file whose first write stores half of the data, syncs it, then kills."""

    def __init__(self, handle, match=None):
        self._handle = handle
        self._match = match

    def write(self, data):
        if self._match is not None and self._match not in data:
            return self._handle.write(data)
        self._handle.write(data[:len(data) // 2])
        self._handle.flush()
        os.fsync(self._handle.fileno())
        kill()

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return self._handle.__exit__(*args)


def main():
    moment, config, work_dir, *rest = sys.argv[1:]
    kind, _, value = moment.partition(':')
    real_open = builtins.open

    def watching_open(file, mode='r', *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        name = os.path.basename(str(file))
        if 'w' not in mode or not str(file).startswith(work_dir):
            return handle
        if kind == 'save' and value in name:
            return HalfThenKill(handle)
        if kind == 'pointer' and 'last_checkpoint' in name:
            return HalfThenKill(handle, match=value)
        return handle

    builtins.open = watching_open
    if kind == 'iter':
        from mmengine.hooks import Hook
        from mmengine.runner import Runner

        class KillAtIteration(Hook):
            priority = 'HIGHEST'

            def after_train_iter(self,
                                 runner,
                                 batch_idx,
                                 data_batch=None,
                                 outputs=None):
                if runner.iter + 1 == int(value):
                    kill()

        train = Runner.train

        def train_then_kill(self):
            self.register_hook(KillAtIteration())
            return train(self)

        Runner.train = train_then_kill
    torch.set_num_threads(1)
    mmengine_config.FormatCode = lambda text, **kwargs: (text, False)
    load_script('tools/train.py').main([config, '--work-dir', work_dir, *rest])


if __name__ == '__main__':
    main()
