"""Stop training at the first iteration whose loss is NaN or infinite."""
import math
from numbers import Number

import torch
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

from ...utils.cli import ToolError


class NonFiniteLossError(ToolError, FloatingPointError):
    """The training loss became NaN or infinite; ``tools/train.py`` reports it as one
    ``error: ...`` line and exits 1."""


def _value(value):
    if isinstance(value, torch.Tensor):
        return value.detach().float().mean().item() if value.numel() else None
    if isinstance(value, Number):
        return float(value)
    return None


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop the run, naming the iteration, when a loss is NaN or infinite.

    After every training iteration the hook reads the losses the model's
    ``train_step`` returned (every logged value whose name contains ``'loss'``:
    the total ``loss`` and each term). A NaN or infinite one raises
    :class:`NonFiniteLossError`, whose message names the iteration (1-based, as the
    log counts them), the epoch for epoch-based loops, the offending terms and the
    last checkpoint. The hook runs before ``CheckpointHook``, so no checkpoint of
    the broken weights is written; ``tools/train.py`` prints the message as one
    ``error: ...`` line and exits with status 1.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not isinstance(outputs, dict):
            return
        bad = {}
        for name, value in outputs.items():
            if 'loss' not in name:
                continue
            number = _value(value)
            if number is not None and not math.isfinite(number):
                bad[name] = number
        if not bad:
            return
        terms = ', '.join(f'{name}={value}' for name, value in bad.items())
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1})'
        last = runner.message_hub.get_info('last_ckpt')
        resume = (f'; the last checkpoint is {last}'
                  if last else '; no checkpoint was written yet')
        raise NonFiniteLossError(
            f'training stopped at {where}: the loss is not finite ({terms}); the '
            f'weights of this iteration are not saved{resume}. Lower the learning '
            'rate, add gradient clipping (optim_wrapper.clip_grad) or check the data '
            'of this iteration')
