"""Dual cross-attention (DCA) over the stages of an encoder (2-D or 3-D)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_cfg, check_feature_map,
                             check_int_or_tuple, check_positive_int,
                             check_positive_ints, check_same_batch_size)
from .channels_first_layer_norm import ChannelsFirstLayerNorm
from .nd_utils import (adaptive_avg_pool, build_act, build_norm, check_spatial_dims,
                       conv_nd, linear_mode)


class _DepthwiseProjection(nn.Conv1d):
    """Depthwise 1x1 convolution over (N, C, L) tokens: a per-channel scale and bias.

    An ``nn.Conv1d`` (its (C, 1, 1) weight and (C,) bias are the reference's
    parameters) computed as ``x * weight + bias``: the same numbers, without the
    convolution's overhead (on CPU its backward dominated the block's time)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, kernel_size=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias[:, None], x, self.weight[:, 0])


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(N, C, L) -> (N, num_heads, C // num_heads, L); head h holds channels
    h * C // num_heads to (h + 1) * C // num_heads - 1."""
    return x.reshape(x.shape[0], num_heads, -1, x.shape[-1])


class _ChannelCrossAttention(nn.Module):
    """Channel cross-attention of one stage: the stage's channels are the queries, the
    channels of all stages the keys and values; tokens are (N, C, L)."""

    def __init__(self, channels: int, total_channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        # The reference scales by the total channel count, not the per-head one.
        self.scale = total_channels**-0.5
        self.q_proj = _DepthwiseProjection(channels)
        self.k_proj = _DepthwiseProjection(total_channels)
        self.v_proj = _DepthwiseProjection(total_channels)
        self.out_proj = _DepthwiseProjection(channels)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q = _split_heads(self.q_proj(query), self.num_heads)
        k = _split_heads(self.k_proj(context), self.num_heads)
        v = _split_heads(self.v_proj(context), self.num_heads)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        return self.out_proj((attn @ v).flatten(1, 2))


class _SpatialCrossAttention(nn.Module):
    """Spatial cross-attention of one stage: the tokens of all stages (concatenated
    along channels) are the queries and keys, the stage's tokens the values; tokens
    are (N, C, L)."""

    def __init__(self, channels: int, total_channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (total_channels // num_heads)**-0.5
        self.q_proj = _DepthwiseProjection(total_channels)
        self.k_proj = _DepthwiseProjection(total_channels)
        self.v_proj = _DepthwiseProjection(channels)
        self.out_proj = _DepthwiseProjection(channels)

    def forward(self, context: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q = _split_heads(self.q_proj(context), self.num_heads)
        k = _split_heads(self.k_proj(context), self.num_heads)
        v = _split_heads(self.v_proj(value), self.num_heads)
        attn = torch.softmax(q.transpose(-2, -1) @ k * self.scale, dim=-1)
        return self.out_proj((v @ attn.transpose(-2, -1)).flatten(1, 2))


class _ChannelSpatialBlock(nn.Module):
    """One CCSA block: channel cross-attention then spatial cross-attention, each on
    per-stage LayerNorm'd tokens (over channels, eps 1e-6) and added to its input;
    tokens are (N, C_i, L)."""

    def __init__(self, in_channels: Sequence[int], channel_heads: Sequence[int],
                 spatial_heads: Sequence[int], channel_attention: bool,
                 spatial_attention: bool) -> None:
        super().__init__()
        total = sum(in_channels)
        self.channel_norms = self.channel_attns = None
        self.spatial_norms = self.spatial_attns = None
        if channel_attention:
            self.channel_norms = nn.ModuleList(
                ChannelsFirstLayerNorm(c) for c in in_channels)
            self.channel_attns = nn.ModuleList(
                _ChannelCrossAttention(c, total, h)
                for c, h in zip(in_channels, channel_heads))
        if spatial_attention:
            self.spatial_norms = nn.ModuleList(
                ChannelsFirstLayerNorm(c) for c in in_channels)
            self.spatial_attns = nn.ModuleList(
                _SpatialCrossAttention(c, total, h)
                for c, h in zip(in_channels, spatial_heads))

    def forward(self, tokens: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
        if self.channel_attns is not None:
            normed = [norm(t) for norm, t in zip(self.channel_norms, tokens)]
            context = torch.cat(normed, dim=1)
            tokens = [
                t + attn(q, context)
                for t, q, attn in zip(tokens, normed, self.channel_attns)
            ]
        if self.spatial_attns is not None:
            normed = [norm(t) for norm, t in zip(self.spatial_norms, tokens)]
            context = torch.cat(normed, dim=1)
            tokens = [
                t + attn(context, v)
                for t, v, attn in zip(tokens, normed, self.spatial_attns)
            ]
        return tokens


@MODELS.register_module()
class DualCrossAttention(nn.Module):
    """Dual cross-attention: channel then spatial cross-attention across encoder stages.

    From "Dual Cross-Attention for Medical Image Segmentation" (Ates et al., 2023).
    Each stage is average-pooled to a ``patch_size`` grid of tokens (p x p, or
    p x p x p in 3-D) and projected by a depthwise 1x1 convolution. ``num_blocks``
    blocks then apply, each with per-stage LayerNorm and a residual connection, channel
    cross-attention (queries: the stage's channels; keys and values: the channels of
    all stages) and spatial cross-attention (queries and keys: all stages' tokens
    concatenated along channels; values: the stage's tokens), with depthwise 1x1
    projections of queries, keys, values and output. The tokens are upsampled
    (bilinear, or trilinear in 3-D, ``align_corners=True``) to the stage's size,
    projected by a 1x1 convolution, added to the stage's input and passed through a
    norm and an activation (the paper's BatchNorm and ReLU). As in the reference,
    channel attention scales the logits by ``sum(in_channels) ** -0.5`` and spatial
    attention by ``(sum(in_channels) // spatial_heads[i]) ** -0.5``. The depthwise 1x1
    projections are ``nn.Conv1d`` modules over (N, C, L) tokens (the reference's
    (C, 1, 1, 1) weights map onto these (C, 1, 1) ones by a reshape), computed as a
    per-channel multiply-add; each stage's output 1x1 convolution runs on the token
    grid before the upsampling (the two commute), not on the full-size map.

    The reference upsamples by a fixed ``strides[i]``, assuming each stage is
    ``patch_size * strides[i]`` pixels, so other and non-square sizes crash; here each
    stage is upsampled to its own (H_i, W_i), which gives the same result at the
    reference's sizes, and there is no ``strides`` argument.

    With ``spatial_dims=3`` the stages are volumes and the token grid has
    ``prod(patch_size)`` tokens; spatial cross-attention is quadratic in that number,
    so volumes want a small grid (e.g. ``patch_size=(4, 8, 8)``).

    Args:
        in_channels (Sequence[int]): channels of each stage.
        patch_size (int | Sequence[int]): size of the token grid each stage is pooled
            to: one int for every axis, or one per axis (``spatial_dims`` ints).
        channel_heads (Sequence[int], optional): channel-attention heads per stage; each
            must divide the stage's channels and ``sum(in_channels)`` (checked only when
            channel attention is used). None: all 1.
        spatial_heads (Sequence[int], optional): spatial-attention heads per stage; each
            must divide the stage's channels and ``sum(in_channels)`` (checked only when
            spatial attention is used). None: all 4.
        num_blocks (int): number of channel-spatial attention blocks.
        channel_attention (bool): whether to apply channel cross-attention.
        spatial_attention (bool): whether to apply spatial cross-attention. At least one
            of the two must be True.
        norm_cfg (dict, optional): norm after each stage's output convolution (mmcv
            config; 'BN' follows ``spatial_dims``, 'SyncBN' and 'GN' work); None for
            none. Default: ``dict(type='BN')``.
        act_cfg (dict, optional): activation after that norm; None for none.
            Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) stages, 3 for (N, C, D, H, W) stages.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - Input: sequence of ``len(in_channels)`` tensors, stage i (N, in_channels[i],
          H_i, W_i) (or (N, in_channels[i], D_i, H_i, W_i) in 3-D), any sizes.
        - Output: tuple of tensors of the inputs' shapes.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 patch_size: Union[int, Sequence[int]] = 28,
                 channel_heads: Optional[Sequence[int]] = None,
                 spatial_heads: Optional[Sequence[int]] = None,
                 num_blocks: int = 1,
                 channel_attention: bool = True,
                 spatial_attention: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        in_channels = check_positive_ints('in_channels', in_channels)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.token_grid = check_int_or_tuple('patch_size', patch_size, spatial_dims)
        check_cfg('norm_cfg', norm_cfg)
        check_cfg('act_cfg', act_cfg)
        check_positive_int('num_blocks', num_blocks)
        if not (channel_attention or spatial_attention):
            raise ValueError(
                'at least one of channel_attention and spatial_attention must be '
                f'True, got channel_attention={channel_attention!r}, '
                f'spatial_attention={spatial_attention!r}')
        channel_heads = self._check_heads('channel_heads', channel_heads, 1,
                                          in_channels, channel_attention)
        spatial_heads = self._check_heads('spatial_heads', spatial_heads, 4,
                                          in_channels, spatial_attention)
        self.in_channels = tuple(in_channels)
        self.patch_size = patch_size

        self.token_projs = nn.ModuleList(_DepthwiseProjection(c) for c in in_channels)
        self.blocks = nn.ModuleList(
            _ChannelSpatialBlock(in_channels, channel_heads, spatial_heads,
                                 channel_attention, spatial_attention)
            for _ in range(num_blocks))
        conv = conv_nd(spatial_dims)
        self.out_convs = nn.ModuleList(conv(c, c, 1) for c in in_channels)
        self.out_norms = nn.ModuleList(
            build_norm(norm_cfg, c, spatial_dims) for c in in_channels)
        self.out_acts = nn.ModuleList(build_act(act_cfg) for _ in in_channels)

    @staticmethod
    def _check_heads(name: str, heads: Optional[Sequence[int]], default: int,
                     in_channels: Sequence[int], used: bool) -> Tuple[int, ...]:
        """Default, length and (if the attention is used) divisibility checks."""
        if heads is None:
            heads = (default, ) * len(in_channels)
        heads = check_positive_ints(
            name, heads, len(in_channels), what='one per in_channels stage')
        total = sum(in_channels)
        for i, (c, h) in enumerate(zip(in_channels, heads)):
            if used and (c % h or total % h):
                raise ValueError(
                    f'{name}[{i}]={h} must divide in_channels[{i}]={c} and '
                    f'sum(in_channels)={total}, got {name}={tuple(heads)!r}')
        return tuple(heads)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if isinstance(inputs, torch.Tensor) or len(inputs) != len(self.in_channels):
            got = (
                tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else
                [tuple(getattr(x, 'shape', ())) for x in inputs])
            raise ValueError(
                f'inputs must be a sequence of {len(self.in_channels)} tensors with '
                f'channels {self.in_channels}, got {got}')
        if self.check_inputs:
            for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
                check_feature_map(
                    f'inputs[{i}]', x, channels=c, ndim=self.spatial_dims + 2)
            check_same_batch_size([f'inputs[{i}]' for i in range(len(inputs))], inputs)

        tokens = [
            proj(adaptive_avg_pool(x, self.token_grid).flatten(2))
            for proj, x in zip(self.token_projs, inputs)
        ]
        for block in self.blocks:
            tokens = block(tokens)
        outputs = []
        mode = linear_mode(self.spatial_dims)
        for x, t, conv, norm, act in zip(inputs, tokens, self.out_convs, self.out_norms,
                                         self.out_acts):
            # The 1x1 convolution runs on the token grid, before upsampling: linear
            # interpolation weights sum to one, so conv and upsampling commute.
            t = conv(t.unflatten(2, self.token_grid))
            t = F.interpolate(t, size=x.shape[2:], mode=mode, align_corners=True)
            outputs.append(act(norm(t + x)))
        return tuple(outputs)
