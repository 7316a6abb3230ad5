"""Spatially-adaptive feature modulation (SAFM): multi-scale depthwise modulation
(2-D or 3-D)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils.checks import check_bool, check_feature_map, check_positive_int
from .nd_utils import adaptive_max_pool, build_act, check_spatial_dims, conv_nd


@MODELS.register_module()
class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: the channels are split into
    ``num_levels`` groups; group i is max-pooled by 2**i, filtered by a 3x3 depthwise
    convolution and upsampled back (nearest); a 1x1 convolution aggregates the groups
    and the activation (GELU) of the result modulates the input.

    From "Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution"
    (SAFMN, ICCV 2023). With ``spatial_dims=3`` every axis of a volume is pooled by
    2**i and the convolutions are 3x3x3 (depthwise) and 1x1x1.

    Fixes to the reference code: it requires ``channels % num_levels == 0`` silently
    (other values break the channel split), here it is checked; the pooled size of
    level i is ``max(1, size // 2**i)`` per axis, so inputs of any size work, including
    sizes not divisible by ``2**(num_levels - 1)`` and maps smaller than the coarsest
    level.

    Args:
        channels (int): input and output channels C; a multiple of ``num_levels``.
        num_levels (int): number of scales (channel groups). Default: 4.
        act_cfg (dict, optional): activation of the aggregated map (mmcv config); None
            for none. Default: ``dict(type='GELU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - x: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - output: the shape of ``x``.
    """

    def __init__(self,
                 channels: int,
                 num_levels: int = 4,
                 act_cfg: Optional[dict] = dict(type='GELU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        self.num_levels = check_positive_int('num_levels', num_levels)
        if channels % num_levels:
            raise ValueError(f'channels must be a multiple of num_levels={num_levels}, '
                             f'got {channels}')
        self.spatial_dims = check_spatial_dims(spatial_dims)
        conv = conv_nd(spatial_dims)
        group = channels // num_levels
        self.mfr = nn.ModuleList(
            conv(group, group, 3, padding=1, groups=group) for _ in range(num_levels))
        self.aggr = conv(channels, channels, 1)
        self.act = build_act(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=self.spatial_dims + 2)
        spatial = x.shape[2:]
        groups = x.chunk(self.num_levels, dim=1)
        out = [self.mfr[0](groups[0])]
        for level in range(1, self.num_levels):
            size = tuple(max(1, s // 2**level) for s in spatial)
            s = self.mfr[level](adaptive_max_pool(groups[level], size))
            out.append(F.interpolate(s, size=spatial, mode='nearest'))
        return self.act(self.aggr(torch.cat(out, dim=1))) * x
