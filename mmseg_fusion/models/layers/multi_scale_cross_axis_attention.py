"""Multi-scale cross-axis attention (MCA), the core block of MCANet."""
from typing import Sequence, Tuple

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


# Largest axis length for which a strip convolution runs as a banded (Toeplitz)
# matrix product; beyond it the matrix costs more than the convolution.
_MAX_TOEPLITZ_SIZE = 256


def _merged_strip_kernel(convs: nn.ModuleList) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sum of depthwise strip convolutions as one: ((C, k_max) weight, (C,) bias).

    Each (C, 1, 1, k) or (C, 1, k, 1) kernel is zero-padded on both sides to the
    longest length; with 'same' padding the summed convolution equals the sum of the
    convolutions."""
    longest = max(max(c.kernel_size) for c in convs)
    weight = sum(
        F.pad(c.weight.flatten(1), ((longest - max(c.kernel_size)) // 2, ) * 2)
        for c in convs)
    return weight, sum(c.bias for c in convs)


def _strip_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                dim: int) -> torch.Tensor:
    """Depthwise 'same' convolution of (N, C, H, W) ``x`` along ``dim`` (-1: x axis,
    -2: y axis) with a (C, k) ``weight`` (k odd) and a (C,) ``bias``.

    Up to ``_MAX_TOEPLITZ_SIZE`` it is a product with a (C, L, L) banded matrix
    ``T[c, i, j] = weight[c, i - j + k // 2]`` (zero off the band): the CPU backward of
    a depthwise convolution is several times slower than the two matrix products."""
    channels, k = weight.shape
    size = x.shape[dim]
    if size > _MAX_TOEPLITZ_SIZE:
        shape = (channels, 1, 1, k) if dim == -1 else (channels, 1, k, 1)
        padding = (0, k // 2) if dim == -1 else (k // 2, 0)
        return F.conv2d(
            x, weight.reshape(shape), bias, padding=padding, groups=channels)
    steps = torch.arange(size, device=x.device)
    taps = steps[:, None] - steps[None, :] + k // 2
    taps = torch.where((taps >= 0) & (taps < k), taps, k)  # k: the zero appended below
    band = torch.cat([weight, weight.new_zeros(channels, 1)], dim=1)[:, taps]
    out = x @ band if dim == -1 else band.transpose(-2, -1) @ x
    return out + bias[:, None, None]


# Per head, one token per row or per column; a token's features are the head's
# channels across the row (or column). Their order does not matter to the L2 norms
# and dot products, so channels stay outer: (c w), not the reference's (w c).
_TO_ROWS = 'b (head c) h w -> b head h (c w)'
_TO_COLS = 'b (head c) h w -> b head w (c h)'


def _cross_axis_attention(query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v + q with L2-normalised q and k, over the last two dims.

    The keys' norms divide the (tokens x tokens) logits rather than the keys."""
    query = F.normalize(query, dim=-1)
    key_norm = key_value.norm(dim=-1).clamp_min(1e-12)  # F.normalize's eps
    attn = (query @ key_value.transpose(-2, -1) / key_norm[..., None, :]).softmax(-1)
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

    Computed as the reference computes it, in fewer steps: the strip convolutions of
    one axis are summed into one kernel (the parameters stay one convolution per
    kernel size, so checkpoints keep their keys) and applied as a banded matrix product
    on axes up to 256 long; the keys' L2 norms scale the logits instead of the keys;
    the two final projections are one (the projection is affine).

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
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W).
    """

    def __init__(self,
                 channels: int,
                 num_heads: int = 8,
                 kernel_sizes: Sequence[int] = (7, 11, 21),
                 norm_with_bias: bool = True,
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
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
        self.norm = (
            ChannelsFirstLayerNorm(channels, eps=1e-5)
            if norm_with_bias else _BiasFreeChannelNorm(channels))
        self.x_axis_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), groups=channels)
            for k in self.kernel_sizes)
        self.y_axis_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), groups=channels)
            for k in self.kernel_sizes)
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_feature_map('x', x, self.channels)
        h, w = x.shape[-2:]
        normed = self.norm(x)
        # Both strip sums through project_out in one call (stacked along the batch).
        strips = torch.cat([
            _strip_conv(normed, *_merged_strip_kernel(self.x_axis_convs), dim=-1),
            _strip_conv(normed, *_merged_strip_kernel(self.y_axis_convs), dim=-2)
        ])
        x_axis, y_axis = self.project_out(strips).chunk(2)

        n = self.num_heads
        rows = _cross_axis_attention(
            rearrange(y_axis, _TO_ROWS, head=n), rearrange(x_axis, _TO_ROWS, head=n))
        cols = _cross_axis_attention(
            rearrange(x_axis, _TO_COLS, head=n), rearrange(y_axis, _TO_COLS, head=n))
        rows = rearrange(rows, 'b head h (c w) -> b (head c) h w', w=w)
        cols = rearrange(cols, 'b head w (c h) -> b (head c) h w', h=h)
        # project_out(rows) + project_out(cols), one 1x1 convolution (it is affine).
        out = F.conv2d(rows + cols, self.project_out.weight, 2 * self.project_out.bias)
        return out + x
