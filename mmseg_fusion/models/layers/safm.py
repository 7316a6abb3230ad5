"""Spatially-adaptive feature modulation (SAFM): multi-scale depthwise modulation."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int


@MODELS.register_module()
class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: the channels are split into
    ``num_levels`` groups; group i is max-pooled by 2**i, filtered by a 3x3 depthwise
    convolution and upsampled back (nearest); a 1x1 convolution aggregates the groups
    and GELU of the result modulates the input.

    From "Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution"
    (SAFMN, ICCV 2023).

    Fixes to the reference code: it requires ``channels % num_levels == 0`` silently
    (other values break the channel split), here it is checked; the pooled size of
    level i is ``max(1, size // 2**i)``, so inputs of any size work, including sizes not
    divisible by ``2**(num_levels - 1)`` and maps smaller than the coarsest level.

    Args:
        channels (int): input and output channels C; a multiple of ``num_levels``.
        num_levels (int): number of scales (channel groups). Default: 4.

    Shape:
        - x: (N, C, H, W).
        - output: (N, C, H, W).
    """

    def __init__(self, channels: int, num_levels: int = 4) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        self.num_levels = check_positive_int('num_levels', num_levels)
        if channels % num_levels:
            raise ValueError(f'channels must be a multiple of num_levels={num_levels}, '
                             f'got {channels}')
        group = channels // num_levels
        self.mfr = nn.ModuleList(
            nn.Conv2d(group, group, 3, padding=1, groups=group)
            for _ in range(num_levels))
        self.aggr = nn.Conv2d(channels, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map('x', x, self.channels)
        height, width = x.shape[-2:]
        groups = x.chunk(self.num_levels, dim=1)
        out = [self.mfr[0](groups[0])]
        for level in range(1, self.num_levels):
            size = (max(1, height // 2**level), max(1, width // 2**level))
            s = self.mfr[level](F.adaptive_max_pool2d(groups[level], size))
            out.append(F.interpolate(s, size=(height, width), mode='nearest'))
        return self.act(self.aggr(torch.cat(out, dim=1))) * x
