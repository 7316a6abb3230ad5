"""What makes a block 2-D or 3-D: one ``spatial_dims`` argument, as in MONAI's blocks.

The blocks pick their convolution, pooling and interpolation here, and build their
norm and activation from mmcv configs (``build_norm_layer``, ``build_activation_layer``)
with the norm's dimensionality following ``spatial_dims``.
"""
import inspect
from typing import Optional, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmseg.registry import MODELS

from ...utils.checks import check_cfg
from .channels_first_layer_norm import ChannelsFirstLayerNorm

SPATIAL_DIMS = (2, 3)

# Norm types whose class depends on the rank. A name without a rank ('BN', 'IN')
# follows spatial_dims; one with a rank (or a class) must match it.
_RANKED_NORMS = {
    'BN': {
        1: 'BN1d',
        2: 'BN',
        3: 'BN3d'
    },
    'IN': {
        1: 'IN1d',
        2: 'IN',
        3: 'IN3d'
    },
}
_NORM_RANK = {
    'BN1d': 1,
    'BN2d': 2,
    'BN3d': 3,
    'IN1d': 1,
    'IN2d': 2,
    'IN3d': 3,
    nn.BatchNorm1d: 1,
    nn.BatchNorm2d: 2,
    nn.BatchNorm3d: 3,
    nn.InstanceNorm1d: 1,
    nn.InstanceNorm2d: 2,
    nn.InstanceNorm3d: 3,
}


def check_spatial_dims(spatial_dims) -> int:
    """Return ``spatial_dims`` if it is the int 2 or 3, else raise naming it."""
    if (isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int)
            or spatial_dims not in SPATIAL_DIMS):
        raise ValueError(f'spatial_dims must be one of {SPATIAL_DIMS}, got '
                         f'{spatial_dims!r}')
    return spatial_dims


def conv_nd(spatial_dims: int) -> Type[nn.Module]:
    """``nn.Conv2d`` for 2, ``nn.Conv3d`` for 3."""
    return nn.Conv2d if spatial_dims == 2 else nn.Conv3d


def adaptive_avg_pool(x: torch.Tensor, output_size) -> torch.Tensor:
    """Adaptive average pooling of an (N, C, H, W) or (N, C, D, H, W) tensor."""
    pool = F.adaptive_avg_pool2d if x.dim() == 4 else F.adaptive_avg_pool3d
    return pool(x, output_size)


def adaptive_max_pool(x: torch.Tensor, output_size) -> torch.Tensor:
    """Adaptive max pooling of an (N, C, H, W) or (N, C, D, H, W) tensor."""
    pool = F.adaptive_max_pool2d if x.dim() == 4 else F.adaptive_max_pool3d
    return pool(x, output_size)


def linear_mode(spatial_dims: int) -> str:
    """The linear interpolation mode of ``F.interpolate``: 'bilinear' or 'trilinear'."""
    return 'bilinear' if spatial_dims == 2 else 'trilinear'


def norm_cfg_for(norm_cfg: dict, spatial_dims: int, name: str = 'norm_cfg') -> dict:
    """Return ``norm_cfg`` with its type fitted to ``spatial_dims``.

    'BN' and 'IN' (mmcv's 2-D batch and instance norms) become 'BN3d' and 'IN3d' in a
    3-D block; a type with an explicit rank ('BN2d', 'BN3d', ``nn.BatchNorm3d``, ...)
    must match ``spatial_dims``; 'LN' is the channels-first LayerNorm
    (:class:`ChannelsFirstLayerNorm`, over the channels at each position), since
    ``nn.LayerNorm`` would normalise the last spatial axis. Rank-free norms ('SyncBN',
    'GN', ...) pass unchanged.
    """
    check_cfg(name, norm_cfg, optional=False)
    cfg = dict(norm_cfg)
    norm_type = cfg['type']
    rank = _NORM_RANK.get(norm_type)
    if norm_type in _RANKED_NORMS:
        cfg['type'] = _RANKED_NORMS[norm_type][spatial_dims]
    elif rank is not None and rank != spatial_dims:
        shown = norm_type if isinstance(norm_type, str) else norm_type.__name__
        raise ValueError(
            f'{name} type {shown!r} is a {rank}-D norm, but the block is '
            f'{spatial_dims}-D (spatial_dims={spatial_dims}); use '
            "'BN' or 'IN' (they follow spatial_dims), 'SyncBN' or 'GN'; got "
            f'{norm_cfg!r}')
    elif norm_type in ('LN', 'ChannelsFirstLayerNorm', nn.LayerNorm):
        cfg['type'] = ChannelsFirstLayerNorm
    if (cfg['type'] == 'GN' or cfg['type'] is nn.GroupNorm) and 'num_groups' not in cfg:
        raise ValueError(f"{name} of type 'GN' needs 'num_groups', got {norm_cfg!r}")
    return cfg


def build_norm(norm_cfg: Optional[dict],
               channels: int,
               spatial_dims: int,
               name: str = 'norm_cfg') -> nn.Module:
    """Build the norm of ``norm_cfg`` (see :func:`norm_cfg_for`) over ``channels``;
    None gives ``nn.Identity``."""
    if norm_cfg is None:
        return nn.Identity()
    return build_norm_layer(norm_cfg_for(norm_cfg, spatial_dims, name), channels)[1]


def build_act(act_cfg: Optional[dict], name: str = 'act_cfg') -> nn.Module:
    """Build the activation of ``act_cfg``; None gives ``nn.Identity``."""
    check_cfg(name, act_cfg)
    if act_cfg is None:
        return nn.Identity()
    return build_activation_layer(dict(act_cfg))


def check_block_spatial_dims(name: str,
                             cfg: dict,
                             owner: str,
                             expected: int = 2,
                             block: Optional[nn.Module] = None) -> None:
    """Refuse a block config (before building) or a built block (after) whose
    ``spatial_dims`` is not ``expected``: ``owner`` feeds it ``expected``-D maps, so
    it could build but never run.

    Args:
        name (str): the owner's argument that holds the config, e.g. 'skip_fusion'.
        cfg (dict): that config.
        owner (str): the module that builds the block, for the message.
        expected (int): the dimensionality the owner works in. Default: 2.
        block (nn.Module, optional): the built block; its ``spatial_dims`` attribute
            is checked (a block may default to 3-D). None checks ``cfg`` only.
    """
    if block is None:
        dims = cfg.get('spatial_dims', expected)
    else:
        dims = getattr(block, 'spatial_dims', expected)
    if dims != expected:
        raise ValueError(
            f'{name} must build a {expected}-D block: {owner} is {expected}-D and '
            f'expects spatial_dims={expected}, got spatial_dims={dims!r} from {cfg!r}')


def owned_block_cfg(cfg: dict, **injected) -> dict:
    """Return the config an owner builds a block from: ``cfg`` with ``injected`` (e.g.
    ``channels``) and, when the block's class takes ``check_inputs``,
    ``check_inputs=False``, overriding any value in ``cfg``: the owner has checked
    the tensors it passes, so the block does not check them again.

    Args:
        cfg (dict): the block config (checked by ``check_block_cfg``): its 'type' is
            a name registered in mmseg's MODELS or a class.
        **injected: entries the owner sets, e.g. ``channels=64``.
    """
    block_type = cfg['type']
    block_class = MODELS.get(block_type) if isinstance(block_type, str) else block_type
    owned = dict(cfg, **injected)
    if 'check_inputs' in inspect.signature(block_class).parameters:
        owned['check_inputs'] = False
    return owned


__all__ = [
    'SPATIAL_DIMS', 'adaptive_avg_pool', 'adaptive_max_pool', 'build_act', 'build_norm',
    'check_block_spatial_dims', 'check_spatial_dims', 'conv_nd', 'linear_mode',
    'norm_cfg_for', 'owned_block_cfg'
]
