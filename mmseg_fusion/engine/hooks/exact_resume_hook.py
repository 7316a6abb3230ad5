"""Save and restore the random number generators, so a resumed run is exact."""
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop, EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

from ...utils.checks import check_bool

STATE_KEY = 'exact_resume'
STATE_VERSION = 1


def random_states() -> Dict[str, Any]:
    """The states of the process-wide generators: Python's ``random``, NumPy's
    global ``np.random``, torch's CPU generator and, where present, the CUDA ones."""
    states = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: Dict[str, Any]) -> None:
    """Restore what :func:`random_states` returned (CUDA states only when this
    process sees as many devices as the saving one did)."""
    random.setstate(_as_python_state(states['python']))
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    cuda = states.get('cuda')
    if cuda is not None and torch.cuda.is_available() and \
            torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


def _as_python_state(state):
    """``random.setstate`` needs tuples; a round trip through some serialisers
    turns them into lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss


def _data_position(runner) -> Dict[str, Any]:
    """What decides which samples the next iterations read: the iteration, the
    epoch, the batch size, the number of processes and of dataloader workers (the
    workers' seeds derive from it), the sampler and the dataset's length."""
    if not isinstance(getattr(runner, '_train_loop', None), BaseLoop):
        return dict(iter=runner.iter, epoch=runner.epoch)  # not training
    loader = runner.train_dataloader
    sampler = getattr(loader, 'sampler', None)
    try:
        length = len(loader.dataset)
    except TypeError:
        length = None
    return dict(
        iter=runner.iter,
        epoch=runner.epoch,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        world_size=runner.world_size,
        sampler=type(sampler).__name__,
        dataset_length=length)


class _RestoreBeforeFirstNewBatch:
    """Wraps ``IterBasedTrainLoop.dataloader_iterator`` on resume: lets the loop
    skip the ``skip`` batches it already trained on (mmengine re-reads them so the
    sampler and the workers' augmentation streams stand where the interrupted run
    left them), then calls ``restore`` just before the first new batch is read and
    hands the loop its plain iterator back."""

    def __init__(self, loop, skip: int, restore):
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._skip = skip
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
            return next(self._iterator)
        self._restore()
        self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` continue exactly where an interrupted run stood.

    mmengine's checkpoints hold the weights, optimizer, schedulers and iteration, but
    not the random number generators; a resumed run re-seeds them, so its
    augmentations, dropout masks and sampling differ from the uninterrupted run's.
    This hook

    - stores, in every checkpoint (``before_save_checkpoint``), the states of
      Python's, NumPy's and torch's (CPU and CUDA) generators and the data position
      (iteration, epoch, batch size, processes, workers, sampler, dataset length)
      under the key ``'exact_resume'``;
    - on resume (``after_load_checkpoint`` with ``resume=True``) restores the
      generators exactly where the saving run continued from them: for
      ``IterBasedTrainLoop``, after mmengine re-read the batches already trained on
      (which puts the sampler and the dataloader workers' generators, seeded from
      the config's seed and the worker id, where they stood) and just before the
      first new batch; for ``EpochBasedTrainLoop``, at the start of the next epoch;
    - keeps validation out of the training streams: the generators are saved before
      validation and restored after it (``before_val`` / ``after_val``), so a
      resumed run, which does not repeat the validation at its checkpoint, draws the
      same numbers as the uninterrupted one.

    With ``randomness=dict(seed=..., deterministic=True)`` a run resumed from any
    checkpoint (also after SIGKILL) reaches bit-identical weights. A changed data
    position (another batch size, number of workers or processes, dataset) is
    logged as a warning: the resumed run then reads other samples. In distributed
    runs only rank 0 saves checkpoints, so only rank 0's generators are restored.

    Args:
        restore (bool): restore the saved states on resume. With False the hook
            still saves them. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, restore: bool = True):
        self.restore = check_bool('restore', restore)
        self._pending: Optional[Dict[str, Any]] = None
        self._before_val: Optional[Dict[str, Any]] = None

    # saving ------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._before_val if self._before_val is not None else random_states()
        position = _data_position(runner)
        position['iter'] = checkpoint.get('meta', {}).get('iter', position['iter'])
        position['epoch'] = checkpoint.get('meta', {}).get('epoch', position['epoch'])
        checkpoint[STATE_KEY] = dict(
            version=STATE_VERSION,
            rank=runner.rank,
            random_states=states,
            data=position)

    def before_val(self, runner) -> None:
        self._before_val = random_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_random_states(self._before_val)
            self._before_val = None

    # resuming ----------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False) or \
                not isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            return  # load_from (fine-tuning, testing): the weights only
        saved = checkpoint.get(STATE_KEY)
        if not isinstance(saved, dict) or 'random_states' not in saved:
            runner.logger.warning(
                'ExactResumeHook: the checkpoint holds no random states (it was saved '
                'without this hook): the resumed run re-seeds its generators and will '
                'not repeat the uninterrupted run exactly')
            return
        self._check_position(runner, saved.get('data', {}))
        self._check_epoch_boundary(runner, saved.get('data', {}))
        if not self.restore:
            return
        if runner.rank != saved.get('rank', 0):
            runner.logger.info(
                f'ExactResumeHook: the checkpoint holds the random states of rank '
                f'{saved.get("rank", 0)}; rank {runner.rank} keeps its seeded ones')
            return
        self._pending = saved['random_states']

    def _check_position(self, runner, saved: Dict[str, Any]) -> None:
        current = _data_position(runner)
        changed = [
            f'{key} {saved[key]} -> {current[key]}'
            for key in ('batch_size', 'num_workers', 'world_size', 'sampler',
                        'dataset_length') if key in saved and saved[key] != current[key]
        ]
        if changed:
            runner.logger.warning(
                'ExactResumeHook: the training data differs from the checkpoint\'s '
                f'run ({", ".join(changed)}): the resumed run reads other samples '
                'than the uninterrupted run would have')

    @staticmethod
    def _check_epoch_boundary(runner, saved: Dict[str, Any]) -> None:
        loop = runner.train_loop
        if not isinstance(loop, EpochBasedTrainLoop):
            return
        try:
            per_epoch = len(loop.dataloader)
        except TypeError:
            return
        if 'iter' in saved and saved['iter'] != saved.get('epoch', 0) * per_epoch:
            runner.logger.warning(
                f'ExactResumeHook: the checkpoint was saved in the middle of an epoch '
                f'(iteration {saved["iter"]}, {per_epoch} per epoch); '
                'EpochBasedTrainLoop restarts that epoch, so the resumed run trains on '
                'some batches twice and is not exact (save by epoch to resume exactly)')

    def before_train(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and \
                hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreBeforeFirstNewBatch(
                loop, loop.iter, lambda: self._restore_pending(runner))
        elif isinstance(loop, EpochBasedTrainLoop):
            self._replay_persistent_workers(runner, loop)
        else:
            self._restore_pending(runner)  # another loop: the best point we know

    @staticmethod
    def _replay_persistent_workers(runner, loop) -> None:
        """Persistent dataloader workers carry their generators from one epoch to
        the next (others are re-seeded every epoch): read the epochs already
        trained on again, as IterBasedTrainLoop re-reads its batches, so the
        workers' augmentation streams stand where the interrupted run left them."""
        loader = loop.dataloader
        if loop.epoch == 0 or not loader.num_workers or \
                not getattr(loader, 'persistent_workers', False):
            return
        runner.logger.warning(
            f'ExactResumeHook: reading the {loop.epoch} epochs already trained on '
            'again, so the persistent dataloader workers\' random streams stand where '
            'the interrupted run left them')
        sampler = getattr(loader, 'sampler', None)
        for epoch in range(loop.epoch):
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epoch)
            for _ in loader:
                pass

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and \
                isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._restore_pending(runner)

    def _restore_pending(self, runner) -> None:
        if self._pending is None:
            return
        set_random_states(self._pending)
        self._pending = None
        runner.logger.info('ExactResumeHook: random states of the checkpoint restored '
                           f'(resuming at iteration {runner.iter}, epoch '
                           f'{runner.epoch})')
