"""Multi-scale cross-axis attention (MCA), the core block of MCANet."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_positive_int,
                             check_positive_ints)
from .channels_first_layer_norm import ChannelsFirstLayerNorm


class _BiasFreeChannelNorm(nn.Module):
    """Restormer's BiasFree norm over the channels of an (N, C, H, W) map, which
    MCANet reuses: ``x / sqrt(var_C(x) + 1e-5) * weight``, the biased variance, no mean
    subtracted, no bias (so not a LayerNorm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = torch.var(x, dim=1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + self.eps) * self.weight[:, None, None]


# Per head, one token per row (features: the row's width x head channels) or per column.
_TO_ROWS = 'b (head c) h w -> b head h (w c)'
_TO_COLS = 'b (head c) h w -> b head w (h c)'


def _cross_axis_attention(query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v + q with L2-normalised q and k, over the last two dims."""
    query = F.normalize(query, dim=-1)
    key = F.normalize(key_value, dim=-1)
    attn = (query @ key.transpose(-2, -1)).softmax(dim=-1)
    return attn @ key_value + query


@MODELS.register_module()
class MultiScaleCrossAxisAttention(nn.Module):
    """Multi-scale cross-axis attention (MCA).

    From "MCANet: Medical Image Segmentation with Multi-Scale Cross-Axis Attention"
    (Shao et al., arXiv 2312.08866, 2023). The input is normalised over channels; for
    each kernel size k a depthwise (1, k) strip convolution looks along the x axis and
    a depthwise (k, 1) one along the y axis. The x-axis strips are summed, the y-axis
    strips are summed, and both sums go through a shared 1x1 projection. Then the axes
    cross: per head, each row of the y-axis map (query) attends over the rows of the
    x-axis map (keys and values), and each column of the x-axis map over the columns of
    the y-axis map, with L2-normalised queries and keys, a softmax and the query added
    back. Both results go through the same 1x1 projection and are added to the input.

    Defect fixed: the reference code also creates a ``temperature`` parameter that it
    never uses; it is left out here, so every parameter takes part in the forward pass.

    2-D only: the cross-axis attention is defined on the two axes of an image (each row
    attends over rows, each column over columns, with strip convolutions along x and
    y); it has no one volumetric counterpart, so ``spatial_dims=3`` is refused. The
    block has no batch norm and no activation to configure.

    Args:
        channels (int): C, the input and output channels.
        num_heads (int): attention heads; must divide ``channels``. Default: 8.
        kernel_sizes (Sequence[int]): lengths of the strip convolutions, one x-axis and
            one y-axis convolution per entry; each odd and >= 1. Default: (7, 11, 21).
        norm_with_bias (bool): True for the layer norm (eps 1e-5) with a bias
            (MCANet's ``'WithBias'``), False for Restormer's bias-free norm
            (``'BiasFree'``: no mean subtracted, a weight only). Default: True.
        spatial_dims (int): must be 2 (see above). Default: 2.

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W).
    """

    def __init__(self,
                 channels: int,
                 num_heads: int = 8,
                 kernel_sizes: Sequence[int] = (7, 11, 21),
                 norm_with_bias: bool = True,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        if isinstance(spatial_dims, bool) or spatial_dims != 2:
            raise ValueError(
                f'spatial_dims must be 2, got {spatial_dims!r}: '
                'MultiScaleCrossAxisAttention (MCA) is 2-D only, its cross-axis '
                'attention is defined on the two axes of an image (rows and columns)')
        check_positive_int('channels', channels)
        check_positive_int('num_heads', num_heads)
        if channels % num_heads:
            raise ValueError(f'num_heads must divide channels={channels}, '
                             f'got {num_heads!r}')
        for i, k in enumerate(check_positive_ints('kernel_sizes', kernel_sizes)):
            if k % 2 == 0:
                raise ValueError(f'kernel_sizes[{i}] must be odd, got {kernel_sizes!r}')
        check_bool('norm_with_bias', norm_with_bias)
        self.channels = channels
        self.num_heads = num_heads
        self.kernel_sizes = tuple(kernel_sizes)
        self.spatial_dims = 2
        self.norm = (ChannelsFirstLayerNorm(channels, eps=1e-5)
                     if norm_with_bias else _BiasFreeChannelNorm(channels))
        self.x_axis_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), groups=channels)
            for k in self.kernel_sizes)
        self.y_axis_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), groups=channels)
            for k in self.kernel_sizes)
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map('x', x, self.channels)
        h, w = x.shape[-2:]
        normed = self.norm(x)
        x_axis = self.project_out(sum(conv(normed) for conv in self.x_axis_convs))
        y_axis = self.project_out(sum(conv(normed) for conv in self.y_axis_convs))

        n = self.num_heads
        rows = _cross_axis_attention(rearrange(y_axis, _TO_ROWS, head=n),
                                     rearrange(x_axis, _TO_ROWS, head=n))
        cols = _cross_axis_attention(rearrange(x_axis, _TO_COLS, head=n),
                                     rearrange(y_axis, _TO_COLS, head=n))
        rows = rearrange(rows, 'b head h (w c) -> b (head c) h w', w=w)
        cols = rearrange(cols, 'b head w (h c) -> b (head c) h w', h=h)
        return self.project_out(rows) + self.project_out(cols) + x
