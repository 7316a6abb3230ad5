"""Argument and input checks shared by the blocks: each raises ``ValueError`` naming the
argument, the value it got and what was expected."""
from typing import Iterable, Optional, Sequence

import torch


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return value


def check_choice(name: str, value, choices: Iterable):
    """Return ``value`` if it is one of ``choices``, else raise naming ``name``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f'{name} must be one of {choices}, got {value!r}')
    return value


def check_feature_map(name: str,
                      x: torch.Tensor,
                      channels: Optional[int] = None,
                      ndim: int = 4) -> None:
    """Check that ``x`` is an (N, C, *spatial) tensor of rank ``ndim``, C ``channels``.

    Args:
        name (str): the input's name in the caller's signature, for the message.
        x (Tensor): the input.
        channels (int, optional): the expected channel count; None skips the check.
        ndim (int): the expected rank: 4 for NCHW, 5 for NCDHW.
    """
    layout = {4: '(N, C, H, W)', 5: '(N, C, D, H, W)'}.get(ndim, f'{ndim}-D')
    if not isinstance(x, torch.Tensor) or x.dim() != ndim:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f'{name} must be a {layout} tensor, got {got}')
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f'{name} must have {channels} channels {layout}, got shape '
                         f'{tuple(x.shape)}')


def check_same_shape(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """Check that all ``tensors`` have one shape; the message lists each name's shape.

    Sizes are compared as ints: under tracing (FLOP counting, ``torch.jit.trace``) they
    are tensors, which compare by identity.
    """
    shapes = [tuple(int(d) for d in t.shape) for t in tensors]
    if len(set(shapes)) > 1:
        listed = ', '.join(f'{n}={s}' for n, s in zip(names, shapes))
        raise ValueError(f'inputs must have the same shape, got {listed}')


def check_stage_inputs(inputs: Sequence[torch.Tensor], in_index: Sequence[int],
                       in_channels: Sequence[int]) -> None:
    """Check that a backbone's stages ``inputs`` hold every stage ``in_index`` selects,
    each an (N, C, H, W) map with its ``in_channels`` C."""
    if len(inputs) <= max(in_index):
        raise ValueError(f'inputs must hold at least {max(in_index) + 1} stages for '
                         f'in_index={tuple(in_index)}, got {len(inputs)}')
    for index, stage_channels in zip(in_index, in_channels):
        check_feature_map(f'inputs[{index}]', inputs[index], stage_channels)


def check_block_cfg(name: str, cfg, owner: Optional[str] = None) -> None:
    """Check a module config that another module builds through mmseg's MODELS.

    Args:
        name (str): the argument's name, e.g. 'skip_fusion'.
        cfg: the value given: a dict with a 'type' registered in mmseg's MODELS.
        owner (str, optional): the module that builds the block with ``channels``
            injected per stage; then ``cfg`` must not set 'channels' itself.
    """
    from mmseg.registry import MODELS
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"{name} must be a config dict with a 'type' key, "
                         f'got {cfg!r}')
    block_type = cfg['type']
    if isinstance(block_type, str) and MODELS.get(block_type) is None:
        raise ValueError(f'{name} type {block_type!r} is not registered in '
                         'mmseg.registry.MODELS')
    if owner is not None and 'channels' in cfg:
        raise ValueError(f"{name} must not set 'channels': {owner} injects each "
                         f"stage's channels, got {cfg!r}")
