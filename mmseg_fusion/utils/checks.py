"""Argument and input checks shared by every subpackage.

Each check raises ``ValueError`` naming the argument, the value it got and what was
expected, and returns the checked value (sequences as tuples), so a constructor can
check and store in one line. Components check their arguments once, where the user
gives them (a constructor, a config); what they pass on to their own parts is not
checked again.
"""
from numbers import Number
from typing import Iterable, Optional, Sequence, Tuple

import torch


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is True or False, else raise naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f'{name} must be a bool, got {value!r}')
    return value


def check_int(name: str, value) -> int:
    """Return ``value`` if it is an int (a bool is not), else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{name} must be an int, got {value!r}')
    return value


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is an int >= 1 (a bool is not), else raise naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return value


def check_rate(name: str, value) -> float:
    """Return ``value`` if it is a number in [0, 1) (a drop rate), else raise naming
    ``name``."""
    if (isinstance(value, bool) or not isinstance(value, Number) or not 0 <= value < 1):
        raise ValueError(f'{name} must be a float in [0, 1), got {value!r}')
    return value


def check_positive_ints(name: str,
                        value,
                        length: Optional[int] = None,
                        min_length: int = 1,
                        what: str = '') -> Tuple[int, ...]:
    """Return a list or tuple of positive ints as a tuple, else raise naming ``name``.

    Args:
        name (str): the argument's name; an entry is named ``name[i]``.
        value: the value given.
        length (int, optional): the exact number of entries; None allows any number
            from ``min_length`` on.
        min_length (int): the fewest entries allowed when ``length`` is None; 1 means
            non-empty.
        what (str): what the entries are, for the message, e.g. 'one per stage'.
    """
    if length is not None:
        kind = f'a list or tuple of {length}'
    elif min_length <= 1:
        kind = 'a non-empty list or tuple of'
    else:
        kind = f'a list or tuple of at least {min_length}'
    if (not isinstance(value, (list, tuple)) or len(value) < min_length
            or (length is not None and len(value) != length)):
        hint = f' ({what})' if what else ''
        raise ValueError(f'{name} must be {kind} positive ints{hint}, got {value!r}')
    for i, entry in enumerate(value):
        check_positive_int(f'{name}[{i}]', entry)
    return tuple(value)


def check_stage_indices(name: str,
                        value,
                        num_stages: int,
                        length: Optional[int] = None,
                        increasing: bool = False) -> Tuple[int, ...]:
    """Return a non-empty list or tuple of distinct stage indices in
    ``[0, num_stages)`` as a tuple, else raise naming ``name``.

    Args:
        name (str): the argument's name, e.g. 'in_index'.
        value: the value given.
        num_stages (int): how many stages there are to select from.
        length (int, optional): the exact number of indices; None allows any number
            from 1 to ``num_stages``.
        increasing (bool): whether the indices must be in increasing order.
    """
    valid = (
        isinstance(value, (list, tuple)) and len(value) > 0
        and (length is None or len(value) == length)
        and all(not isinstance(i, bool) and isinstance(i, int) and 0 <= i < num_stages
                for i in value) and len(set(value)) == len(value)
        and (not increasing or list(value) == sorted(value)))
    if not valid:
        kind = (f'a list or tuple of {length}'
                if length is not None else 'a non-empty list or tuple of')
        order = ', increasing' if increasing else ''
        raise ValueError(f'{name} must be {kind} distinct{order} stage indices in '
                         f'[0, {num_stages}), got {value!r}')
    return tuple(value)


def check_int_or_tuple(name: str,
                       value,
                       length: int,
                       what: str = '',
                       optional: bool = False) -> Optional[Tuple[int, ...]]:
    """Return a positive int (for every axis) or a list or tuple of ``length``
    positive ints as a tuple of ``length`` ints, else raise naming ``name``.

    Args:
        name (str): the argument's name, e.g. 'image_size'.
        value: the value given.
        length (int): the number of axes, e.g. 2 for an (H, W) pair.
        what (str): the axes, for the message, e.g. '(H, W)'.
        optional (bool): whether None is allowed (and returned).
    """
    if value is None and optional:
        return None
    sizes = (value, ) * length if isinstance(value, int) else value
    if (not isinstance(sizes, (list, tuple)) or len(sizes) != length or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
        axes = f' {what}' if what else ''
        none = 'None, ' if optional else ''
        raise ValueError(f'{name} must be {none}a positive int or a list or tuple of '
                         f'{length}{axes} positive ints, got {value!r}')
    return tuple(sizes)


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


def check_same_batch_size(names: Sequence[str],
                          tensors: Sequence[torch.Tensor]) -> None:
    """Check that all ``tensors`` have one batch size N; the message lists each name's
    shape."""
    if len({int(t.shape[0]) for t in tensors}) > 1:
        listed = ', '.join(f'{n}={tuple(int(d) for d in t.shape)}'
                           for n, t in zip(names, tensors))
        raise ValueError(f'inputs must have one batch size, got {listed}')


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


def check_cfg(name: str, cfg, optional: bool = True) -> None:
    """Check an mmcv layer config: a dict with a 'type' key (or None if optional)."""
    if cfg is None and optional:
        return
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"{name} must be a config dict with a 'type' key"
                         f"{' or None' if optional else ''}, got {cfg!r}")
