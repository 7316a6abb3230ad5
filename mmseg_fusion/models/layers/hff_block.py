"""Hierarchical feature fusion (HFF) of a CNN (local) and a transformer (global) feature
map, optionally with the previous stage's fused map, and its inverted residual MLP
(2-D or 3-D)."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_cfg, check_feature_map,
                             check_positive_int, check_rate)
from .channel_attention import ChannelAttention
from .channels_first_layer_norm import ChannelsFirstLayerNorm
from .nd_utils import (adaptive_avg_pool, build_act, build_norm, check_spatial_dims,
                       conv_nd)
from .spatial_attention import SpatialAttention


def _conv_norm(in_channels: int,
               out_channels: int,
               norm_cfg: Optional[dict],
               spatial_dims: int,
               act_cfg: Optional[dict] = None) -> nn.Sequential:
    """1x1 convolution (with bias, as the reference) + norm, optionally + activation."""
    layers = [
        conv_nd(spatial_dims)(in_channels, out_channels, 1),
        build_norm(norm_cfg, out_channels, spatial_dims)
    ]
    if act_cfg is not None:
        layers.append(build_act(act_cfg))
    return nn.Sequential(*layers)


class InvertedResidualMLP(nn.Module):
    """Inverted residual MLP (IRMLP) of HiFuse: a residual 3x3 depthwise convolution
    with an activation, a norm, then a 4x expanding 1x1 convolution, the activation,
    and a 1x1 projection with a norm (HiFuse: GELU and BatchNorm).

    From "HiFuse: Hierarchical multi-scale feature fusion network for medical image
    classification" (2024). Fix to the reference code: its Conv helper accepts
    ``group`` but never passes it to nn.Conv2d, so the 3x3 convolution is dense
    (in_channels**2 * 9 weights); here it is depthwise, as the paper intends.

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.
        norm_cfg (dict, optional): mmcv norm config; None for none.
            Default: ``dict(type='BN')``.
        act_cfg (dict, optional): mmcv activation config; None for none.
            Default: ``dict(type='GELU')``.
        spatial_dims (int): 2 or 3 (3x3x3 and 1x1x1 convolutions). Default: 2.

    Shape:
        - x: (N, C_in, *spatial).
        - output: (N, C_out, *spatial).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='GELU'),
                 spatial_dims: int = 2) -> None:
        super().__init__()
        conv = conv_nd(check_spatial_dims(spatial_dims))
        self.dwconv = conv(
            in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.norm = build_norm(norm_cfg, in_channels, spatial_dims)
        self.fc1 = conv(in_channels, 4 * in_channels, 1, bias=False)
        self.fc2 = conv(4 * in_channels, out_channels, 1, bias=False)
        self.out_norm = build_norm(norm_cfg, out_channels, spatial_dims)
        self.act = build_act(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x + self.act(self.dwconv(x)))
        return self.out_norm(self.fc2(self.act(self.fc1(x))))


@MODELS.register_module()
class HFFBlock(nn.Module):
    """Hierarchical feature fusion block: spatial attention on the local (CNN) branch,
    channel attention on the global (transformer) branch, a fused projection of both
    (and of the previous stage's output, when given), all concatenated and passed
    through a LayerNorm and an inverted residual MLP.

    From "HiFuse: Hierarchical multi-scale feature fusion network for medical image
    classification" (2024)::

        l' = l * sigmoid(BN(conv7x7([max_c(l), mean_c(l)])))       (CBAM spatial)
        g' = g * sigmoid(MLP(maxpool(g)) + MLP(avgpool(g)))        (CBAM channel)
        without previous: X = GELU(W(LN(cat(W_l l, W_g g)))),            shortcut = 0
        with previous p:  P = pool(Updim(p)),
                          X = GELU(W3(LN(cat(P, W_l l, W_g g)))),        shortcut = P
        out = shortcut + drop_path(IRMLP(LN(cat(g', l', X))))

    Fixes to the reference code: IRMLP's 3x3 convolution is depthwise (the reference's
    Conv helper drops ``group``, making it dense; see :class:`InvertedResidualMLP`). The
    reference builds both the with-previous and the without-previous paths and leaves
    one unused; here ``previous_channels`` selects the one that is built, so every
    parameter is used. The previous stage is downsampled by adaptive average pooling to
    the current size, which equals the reference's 2x2 average pooling when it is
    exactly twice as large and also handles odd sizes. As in the reference, the 1x1
    projections keep a convolution bias before their norm (redundant while training
    with batch norm, kept so the parameters match the reference's).

    The attentions are the shared CBAM modules (:class:`SpatialAttention`,
    :class:`ChannelAttention`) and LN the channels-first LayerNorm
    (:class:`ChannelsFirstLayerNorm`, eps 1e-6 as HiFuse). BN is ``norm_cfg``; GELU
    is ``act_cfg``; the ReLUs of the channel-attention MLP and of ``Updim`` are
    ``conv_act_cfg``. With ``spatial_dims=3`` the convolutions are 7x7x7, 3x3x3 and
    1x1x1 and the pooling is over (D, H, W).

    Args:
        local_channels (int): channels C_l of the local (CNN) feature map.
        global_channels (int): channels C_g of the global (transformer) feature map.
        inter_channels (int): channels C_i of the fused projection.
        out_channels (int): output channels C_out; must equal ``inter_channels`` when
            ``previous_channels`` is given (the pooled previous map is added).
        reduction (int): channel-attention MLP reduction; ``global_channels //
            reduction`` must be >= 1. Default: 4.
        drop_path_rate (float): stochastic depth rate in [0, 1). Default: 0.
        previous_channels (int, optional): channels C_p of the previous stage's fused
            map (HiFuse uses ``inter_channels // 2``); None builds the block without a
            previous input. Default: None.
        norm_cfg (dict, optional): norm of the spatial attention, the projections and
            the IRMLP (mmcv config; 'BN' follows ``spatial_dims``, 'SyncBN' and 'GN'
            work, GN with one group on the one-channel attention map); None for none.
            Default: ``dict(type='BN')``.
        act_cfg (dict, optional): activation of the fused projection and of the
            IRMLP; None for none. Default: ``dict(type='GELU')``.
        conv_act_cfg (dict, optional): activation inside the channel-attention MLP and
            after the previous stage's projection; None for none.
            Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) maps, 3 for (N, C, D, H, W) maps.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - local_feat: (N, C_l, H, W), or (N, C_l, D, H, W) when ``spatial_dims`` is 3.
        - global_feat: (N, C_g, *spatial), the spatial size of ``local_feat``.
        - previous: (N, C_p, *spatial_p), each size >= that of ``local_feat`` (HiFuse:
          twice); given if and only if ``previous_channels`` is set.
        - output: (N, C_out, *spatial).
    """

    def __init__(self,
                 local_channels: int,
                 global_channels: int,
                 inter_channels: int,
                 out_channels: int,
                 reduction: int = 4,
                 drop_path_rate: float = 0.0,
                 previous_channels: Optional[int] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='GELU'),
                 conv_act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.local_channels = check_positive_int('local_channels', local_channels)
        self.global_channels = check_positive_int('global_channels', global_channels)
        check_positive_int('inter_channels', inter_channels)
        check_positive_int('out_channels', out_channels)
        check_positive_int('reduction', reduction)
        if global_channels // reduction < 1:
            raise ValueError(f'reduction must be <= global_channels={global_channels}, '
                             f'got {reduction}')
        check_rate('drop_path_rate', drop_path_rate)
        self.previous_channels = previous_channels
        if previous_channels is not None:
            check_positive_int('previous_channels', previous_channels)
            if out_channels != inter_channels:
                raise ValueError(
                    f'out_channels must equal inter_channels={inter_channels} when '
                    f'previous_channels is given (the previous map is added), '
                    f'got {out_channels}')
        self.spatial_dims = check_spatial_dims(spatial_dims)
        check_cfg('norm_cfg', norm_cfg)
        check_cfg('act_cfg', act_cfg)
        check_cfg('conv_act_cfg', conv_act_cfg)

        self.local_attention = SpatialAttention(
            7, bias=False, norm_cfg=norm_cfg, spatial_dims=spatial_dims)
        self.global_attention = ChannelAttention(
            global_channels, reduction, act_cfg=conv_act_cfg, spatial_dims=spatial_dims)
        self.local_proj = _conv_norm(local_channels, inter_channels, norm_cfg,
                                     spatial_dims)
        self.global_proj = _conv_norm(global_channels, inter_channels, norm_cfg,
                                      spatial_dims)
        num_fused = 2
        if previous_channels is not None:
            self.previous_proj = _conv_norm(
                previous_channels,
                inter_channels,
                norm_cfg,
                spatial_dims,
                act_cfg=conv_act_cfg)
            num_fused = 3
        self.fuse_norm = ChannelsFirstLayerNorm(num_fused * inter_channels)
        self.fuse_proj = _conv_norm(num_fused * inter_channels, inter_channels,
                                    norm_cfg, spatial_dims)
        self.act = build_act(act_cfg)
        cat_channels = local_channels + global_channels + inter_channels
        self.norm = ChannelsFirstLayerNorm(cat_channels)
        self.irmlp = InvertedResidualMLP(cat_channels, out_channels, norm_cfg, act_cfg,
                                         spatial_dims)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity())

    def _check_inputs(self, local_feat: torch.Tensor, global_feat: torch.Tensor,
                      previous: Optional[torch.Tensor]) -> None:
        ndim = self.spatial_dims + 2
        check_feature_map('local_feat', local_feat, self.local_channels, ndim=ndim)
        check_feature_map('global_feat', global_feat, self.global_channels, ndim=ndim)
        n, spatial = local_feat.shape[0], tuple(local_feat.shape[2:])
        if global_feat.shape[0] != n or tuple(global_feat.shape[2:]) != spatial:
            raise ValueError(
                f'global_feat must be (N={n}, {self.global_channels}, *{spatial}) to '
                f'match local_feat, got {tuple(global_feat.shape)}')
        if previous is not None:
            check_feature_map('previous', previous, self.previous_channels, ndim=ndim)
            if previous.shape[0] != n or any(
                    p < s for p, s in zip(previous.shape[2:], spatial)):
                raise ValueError(
                    f'previous must be (N={n}, {self.previous_channels}, *sizes) with '
                    f'every size >= local_feat\'s {spatial}, got '
                    f'{tuple(previous.shape)}')

    def forward(self,
                local_feat: torch.Tensor,
                global_feat: torch.Tensor,
                previous: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (previous is None) != (self.previous_channels is None):
            raise ValueError(
                'previous must be given if and only if the block was built with '
                f'previous_channels; previous_channels={self.previous_channels}, '
                f'previous={"None" if previous is None else tuple(previous.shape)}')
        if self.check_inputs:
            self._check_inputs(local_feat, global_feat, previous)
        projected = [self.local_proj(local_feat), self.global_proj(global_feat)]
        shortcut = 0
        if previous is not None:
            shortcut = adaptive_avg_pool(
                self.previous_proj(previous), local_feat.shape[2:])
            projected.insert(0, shortcut)
        fused = self.act(self.fuse_proj(self.fuse_norm(torch.cat(projected, dim=1))))

        local_out = self.local_attention(local_feat)
        global_out = self.global_attention(global_feat)

        out = self.irmlp(self.norm(torch.cat([global_out, local_out, fused], dim=1)))
        return shortcut + self.drop_path(out)
