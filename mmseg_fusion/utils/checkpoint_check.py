"""Refuse to test a checkpoint that holds the weights of another model."""
import re
from typing import Dict, List

import torch
from torch import nn

from .cli import CheckpointMismatchError

__all__ = ['checkpoint_state_dict', 'check_checkpoint_fits', 'unwrap_model']


def unwrap_model(model: nn.Module) -> nn.Module:
    """The segmentor inside distributed and test-time-augmentation wrappers (their
    ``module``), whose keys the checkpoint holds."""
    while isinstance(getattr(model, 'module', None), nn.Module):
        model = model.module
    return model


def checkpoint_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint file, keys without the ``module.`` prefix of
    wrapped models (as mmengine's loader revises them).

    Raises:
        CheckpointMismatchError: the file cannot be read as a checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')
    except Exception as error:  # torch raises many types for a non-checkpoint
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise CheckpointMismatchError(
            f'cannot read checkpoint {path}: {type(error).__name__}: '
            f'{first_line}') from error
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(
            f'checkpoint {path} holds no state_dict (got {type(checkpoint).__name__})')
    return {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}


def _examples(items: List[str], limit: int = 2) -> str:
    shown = ', '.join(items[:limit])
    return shown + (', ...' if len(items) > limit else '')


def check_checkpoint_fits(model: nn.Module, path: str) -> None:
    """Raise unless the checkpoint at ``path`` has a weight of the same shape for every
    parameter and persistent buffer of ``model`` (wrappers are looked through).

    mmengine loads such a checkpoint with a warning only, and the test then scores a
    partly random model (e.g. mDice 0) and exits 0.

    Raises:
        CheckpointMismatchError: weights are missing or of another shape; the message
            counts both and names a few.
    """
    expected = unwrap_model(model).state_dict()
    found = checkpoint_state_dict(path)
    missing = [key for key in expected if key not in found]
    resized = [
        f'{key} {tuple(found[key].shape)} in the checkpoint, '
        f'{tuple(expected[key].shape)} in the model' for key in expected
        if key in found and hasattr(found[key], 'shape')
        and tuple(found[key].shape) != tuple(expected[key].shape)
    ]
    if not missing and not resized:
        return
    problems = []
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(expected)} weights are '
                        f'missing (e.g. {_examples(missing)})')
    if resized:
        problems.append(f'{len(resized)} have another shape (e.g. '
                        f'{_examples(resized, 1)})')
    raise CheckpointMismatchError(
        f'checkpoint {path} is not a checkpoint of this config\'s model: '
        f'{"; ".join(problems)}. Test it with the config it was trained with')
