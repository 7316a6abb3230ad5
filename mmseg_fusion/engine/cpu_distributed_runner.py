"""mmengine's Runner, able to start and end a distributed run without CUDA."""
import atexit
import datetime
import gc
from unittest import mock

import torch
from mmengine.dist import is_distributed
from mmengine.runner import Runner
from mmengine.runner import runner as runner_module
from mmseg.registry import RUNNERS

from .cpu_sync_batch_norm import CPUSyncBatchNorm

# How long the exit barrier waits for the slowest rank before giving up (a rank that
# failed leaves the others in a collective; torchrun then ends them anyway).
EXIT_BARRIER_TIMEOUT = datetime.timedelta(seconds=120)

# Whether the last train/val/test of a runner in this process returned normally.
_last_run = dict(finished=False)


@RUNNERS.register_module()
class CPUDistributedRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` for distributed runs on CPUs.

    With CUDA this is mmengine's Runner, unchanged. Without CUDA it changes three
    things, the first two only for a process group it starts itself:

    * **Start.** mmengine 0.10.7's ``init_dist`` (``mmengine/dist/utils.py``) calls
      ``torch.cuda.set_device(local_rank)`` before ``init_process_group`` for the
      pytorch, slurm and mpi launchers; on a CPU build of torch that call raises
      ``AttributeError`` (no ``torch._C._cuda_setDevice``), on a CUDA build without
      a GPU a ``RuntimeError``. Here mmengine's own ``setup_env`` starts the group
      (its launcher, ``env_cfg.dist_cfg``: backend, timeout) with
      ``torch.cuda.set_device`` a no-op for that call only.
    * **End.** mmengine never destroys the process group. Left to interpreter
      teardown, gloo's worker threads can release the last references to tensors,
      and so to Python objects, while the interpreter finalizes; such a thread
      cannot take the GIL any more, is ended by CPython and ``std::terminate``
      aborts the rank ("terminate called without an active exception") after a
      finished run (pytorch/pytorch#190489; the abandoned pytorch/pytorch#179291
      proposed the same atexit teardown inside torch). So at exit, while Python is
      still whole, the ranks meet at a bounded barrier, the runner's reference
      cycles (which hold the DDP reducer and its pending work) are collected, and
      ``torch.distributed.destroy_process_group`` shuts gloo's threads down. Only
      after a ``train``/``val``/``test`` that returned on this rank: a rank that
      failed exits at once, as with mmengine, and torchrun ends the others (met at
      a barrier, a rank whose peer still waits in another collective would hang).

    * **Synchronised BatchNorm.** torch's ``SyncBatchNorm`` refuses CPU tensors, so
      ``wrap_model`` replaces every ``nn.SyncBatchNorm`` (what ``norm_cfg=dict(
      type='SyncBN')`` builds) by :class:`CPUSyncBatchNorm`, which synchronises over
      gloo; with ``sync_bn`` set in the config (mmengine's switch, 'torch' or
      'mmcv') every BatchNorm layer is replaced, as mmengine would convert them. N
      processes then normalise as one process with the whole batch does.

    The tools select it (``runner_type``) for a distributed run without CUDA, with
    ``env_cfg.dist_cfg.backend='gloo'`` and a DDP wrapper without ``device_ids``
    (:func:`mmseg_fusion.compat.configure_cpu_distributed`); with mmseg's own
    ``tools/train.py`` a config sets the same three keys.
    """

    def setup_env(self, env_cfg: dict) -> None:
        """Start the process group as mmengine does; see the class docstring."""
        if not self.distributed or is_distributed() or torch.cuda.is_available():
            super().setup_env(env_cfg)
            return
        with mock.patch.object(torch.cuda, 'set_device', lambda device: None):
            super().setup_env(env_cfg)
        atexit.register(end_process_group)

    def wrap_model(self, model_wrapper_cfg, model):
        """mmengine's ``wrap_model``; without CUDA, SyncBN layers are made
        :class:`CPUSyncBatchNorm` first (see the class docstring)."""
        if not self.distributed or torch.cuda.is_available():
            return super().wrap_model(model_wrapper_cfg, model)
        sync_bn = self.cfg.get('sync_bn')
        model = CPUSyncBatchNorm.convert(model, batch_norm=sync_bn is not None)
        # mmengine would convert the layers again, to torch's SyncBatchNorm
        with mock.patch.object(
                runner_module,
                'convert_sync_batchnorm',
                lambda module, implementation='torch': module):
            return super().wrap_model(model_wrapper_cfg, model)

    def train(self):
        """mmengine's ``train``, recorded for the teardown at exit."""
        return self._tracked(super().train)

    def val(self):
        """mmengine's ``val``, recorded for the teardown at exit."""
        return self._tracked(super().val)

    def test(self):
        """mmengine's ``test``, recorded for the teardown at exit."""
        return self._tracked(super().test)

    @staticmethod
    def _tracked(run):
        _last_run['finished'] = False
        result = run()
        _last_run['finished'] = True
        return result


def end_process_group() -> None:
    """At exit: meet the other ranks, free what holds the group, and destroy it.

    Without a meeting a rank could close its connections while another still reads
    its last message. Skipped unless the last run returned on this rank."""
    if not torch.distributed.is_initialized() or not _last_run['finished']:
        return
    try:
        torch.distributed.monitored_barrier(timeout=EXIT_BARRIER_TIMEOUT)
    except RuntimeError:
        return  # another rank failed or hangs; torchrun ends the job
    gc.collect()
    torch.distributed.destroy_process_group()
