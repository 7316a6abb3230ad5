"""Overlapping spatial reduction attention (OSRA), 2-D or 3-D."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils.checks import check_bool, check_cfg, check_feature_map, check_positive_int
from .nd_utils import build_act, build_norm, check_spatial_dims, conv_nd


@MODELS.register_module()
class OSRAttention(nn.Module):
    """Multi-head self-attention whose keys and values come from an overlapping,
    strided reduction of the feature map.

    From "TransXNet: Learning Both Global and Local Dynamics with a Dual Dynamic Token
    Mixer for Visual Recognition" (Lou et al., 2023). Queries are a 1x1 convolution of
    the input. With ``sr_ratio > 1`` the map is reduced by a depthwise convolution
    (kernel ``sr_ratio + 3``, stride ``sr_ratio``, padding ``(sr_ratio + 3) // 2``),
    a norm, an activation, a depthwise 1x1 convolution and a norm (TransXNet: BatchNorm
    and ReLU), so neighbouring windows overlap; with ``sr_ratio == 1`` it is kept as
    is. A 3x3 depthwise convolution is
    added to the reduced map as a residual, and a 1x1 convolution of the result gives
    keys and values. Head ``h`` holds channels ``h * C // num_heads`` to
    ``(h + 1) * C // num_heads - 1``. An optional relative position bias is added to
    the attention logits, resized bicubically (``align_corners=False``) when its last
    two sizes differ from the logits'. With ``spatial_dims=3`` the tokens are the
    voxels of (D, H, W) and the convolutions act on volumes, the reduction along every
    axis.

    Args:
        channels (int): input and output channels C.
        num_heads (int): attention heads; must divide ``channels``.
        qk_scale (float, optional): scale of the logits, > 0. None:
            ``(C // num_heads) ** -0.5``.
        attn_drop (float): dropout probability on the attention weights, in [0, 1).
        sr_ratio (int): spatial reduction stride of keys and values, >= 1.
        norm_cfg (dict, optional): norm of the reduction (mmcv config; 'BN' follows
            ``spatial_dims``, 'SyncBN' and 'GN' work); None for none.
            Default: ``dict(type='BN')``.
        act_cfg (dict, optional): activation of the reduction; None for none.
            Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - x: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - relative_pos_enc (optional): (N or 1, num_heads or 1, H_b, W_b), a bias on
          the (queries, keys) logits; resized to (H * W, H_r * W_r) (in 3-D
          (D * H * W, D_r * H_r * W_r)), the logits' size: for ``sr_ratio = s > 1``,
          H_r = (H + 2 * ((s + 3) // 2) - s - 3) // s + 1 (likewise W_r, D_r); for
          ``sr_ratio == 1``, H_r = H and W_r = W.
        - Output: the shape of ``x``.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int = 8,
                 qk_scale: Optional[float] = None,
                 attn_drop: float = 0.0,
                 sr_ratio: int = 2,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        check_positive_int('channels', channels)
        check_positive_int('num_heads', num_heads)
        check_positive_int('sr_ratio', sr_ratio)
        if channels % num_heads:
            raise ValueError(f'num_heads must divide channels={channels}, got '
                             f'num_heads={num_heads}')
        if qk_scale is not None and not qk_scale > 0:
            raise ValueError(f'qk_scale must be None or > 0, got {qk_scale!r}')
        if not 0 <= attn_drop < 1:
            raise ValueError(f'attn_drop must be in [0, 1), got {attn_drop!r}')
        self.spatial_dims = check_spatial_dims(spatial_dims)
        check_cfg('norm_cfg', norm_cfg)
        check_cfg('act_cfg', act_cfg)
        self.channels = channels
        self.num_heads = num_heads
        if qk_scale is None:
            qk_scale = (channels // num_heads)**-0.5
        self.scale = qk_scale
        conv = conv_nd(spatial_dims)
        self.q = conv(channels, channels, 1)
        self.kv = conv(channels, 2 * channels, 1)
        self.attn_drop = attn_drop
        if sr_ratio > 1:
            kernel_size = sr_ratio + 3
            self.sr = nn.Sequential(
                conv(
                    channels,
                    channels,
                    kernel_size,
                    stride=sr_ratio,
                    padding=kernel_size // 2,
                    groups=channels,
                    bias=False), build_norm(norm_cfg, channels, spatial_dims),
                build_act(act_cfg),
                conv(channels, channels, 1, groups=channels, bias=False),
                build_norm(norm_cfg, channels, spatial_dims))
        else:
            self.sr = nn.Identity()
        self.local_conv = conv(channels, channels, 3, padding=1, groups=channels)

    def _check_inputs(self, x: torch.Tensor,
                      relative_pos_enc: Optional[torch.Tensor]) -> None:
        check_feature_map('x', x, channels=self.channels, ndim=self.spatial_dims + 2)
        if relative_pos_enc is not None:
            check_feature_map('relative_pos_enc', relative_pos_enc)
            if (relative_pos_enc.shape[0] not in (1, x.shape[0])
                    or relative_pos_enc.shape[1] not in (1, self.num_heads)):
                raise ValueError(
                    'relative_pos_enc must be (N or 1, num_heads or 1, H_b, W_b) with '
                    f'N={x.shape[0]}, num_heads={self.num_heads}, got '
                    f'{tuple(relative_pos_enc.shape)}')

    def forward(self,
                x: torch.Tensor,
                relative_pos_enc: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.check_inputs:
            self._check_inputs(x, relative_pos_enc)
        n, c = x.shape[:2]
        heads, head_channels = self.num_heads, c // self.num_heads
        # (N, heads, tokens, C / heads) with unit stride on the last axis, as the fused
        # CPU attention kernel needs (else a far slower fallback runs)
        q = self.q(x).reshape(n, heads, head_channels, -1).transpose(-2,
                                                                     -1).contiguous()
        reduced = self.sr(x)
        reduced = reduced + self.local_conv(reduced)
        k, v = (
            t.transpose(-2, -1).contiguous()
            for t in self.kv(reduced).reshape(n, 2, heads, head_channels, -1).unbind(1))

        bias = None
        if relative_pos_enc is not None:
            attn_shape = (q.shape[-2], k.shape[-2])
            bias = relative_pos_enc
            if tuple(bias.shape[2:]) != attn_shape:
                bias = F.interpolate(
                    bias, size=attn_shape, mode='bicubic', align_corners=False)
        # softmax(q k^T * scale + bias) v, fused: (N, heads, HW, C/heads)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=bias,
            dropout_p=self.attn_drop if self.training else 0.0,
            scale=self.scale)
        return out.transpose(-2, -1).reshape(x.shape)
