"""Hierarchical feature fusion (HFF) of a CNN (local) and a transformer (global) feature
map, optionally with the previous stage's fused map, and its inverted residual MLP."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import DropPath
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int


def _conv_bn(in_channels: int, out_channels: int, relu: bool = False) -> nn.Sequential:
    """1x1 convolution (with bias, as the reference) + BatchNorm, optionally + ReLU."""
    layers = [nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor (eps 1e-6, as HiFuse).

    Args:
        channels (int): C.

    Shape:
        - x: (N, C, H, W).
        - output: (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class InvertedResidualMLP(nn.Module):
    """Inverted residual MLP (IRMLP) of HiFuse: a residual 3x3 depthwise convolution
    with GELU, BatchNorm, then a 4x expanding 1x1 convolution, GELU, and a 1x1
    projection with BatchNorm.

    From "HiFuse: Hierarchical multi-scale feature fusion network for medical image
    classification" (2024). Fix to the reference code: its Conv helper accepts
    ``group`` but never passes it to nn.Conv2d, so the 3x3 convolution is dense
    (in_channels**2 * 9 weights); here it is depthwise, as the paper intends.

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.

    Shape:
        - x: (N, C_in, H, W).
        - output: (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.norm = nn.BatchNorm2d(in_channels)
        self.fc1 = nn.Conv2d(in_channels, 4 * in_channels, 1, bias=False)
        self.fc2 = nn.Conv2d(4 * in_channels, out_channels, 1, bias=False)
        self.out_norm = nn.BatchNorm2d(out_channels)
        self.act = nn.GELU()

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

        l' = l * sigmoid(BN(conv7x7([max_c(l), mean_c(l)])))
        g' = g * sigmoid(MLP(maxpool(g)) + MLP(avgpool(g)))
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
    projections keep a convolution bias before their BatchNorm (redundant while
    training, kept so the parameters match the reference's).

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

    Shape:
        - local_feat: (N, C_l, H, W).
        - global_feat: (N, C_g, H, W).
        - previous: (N, C_p, H_p, W_p) with H_p >= H and W_p >= W (HiFuse: 2H, 2W);
          given if and only if ``previous_channels`` is set.
        - output: (N, C_out, H, W).
    """

    def __init__(self,
                 local_channels: int,
                 global_channels: int,
                 inter_channels: int,
                 out_channels: int,
                 reduction: int = 4,
                 drop_path_rate: float = 0.0,
                 previous_channels: Optional[int] = None) -> None:
        super().__init__()
        self.local_channels = check_positive_int('local_channels', local_channels)
        self.global_channels = check_positive_int('global_channels', global_channels)
        check_positive_int('inter_channels', inter_channels)
        check_positive_int('out_channels', out_channels)
        check_positive_int('reduction', reduction)
        if global_channels // reduction < 1:
            raise ValueError(f'reduction must be <= global_channels={global_channels}, '
                             f'got {reduction}')
        if (isinstance(drop_path_rate, bool)
                or not isinstance(drop_path_rate, (int, float))
                or not 0 <= drop_path_rate < 1):
            raise ValueError(f'drop_path_rate must be a float in [0, 1), '
                             f'got {drop_path_rate!r}')
        self.previous_channels = previous_channels
        if previous_channels is not None:
            check_positive_int('previous_channels', previous_channels)
            if out_channels != inter_channels:
                raise ValueError(
                    f'out_channels must equal inter_channels={inter_channels} when '
                    f'previous_channels is given (the previous map is added), '
                    f'got {out_channels}')

        self.local_attention = nn.Sequential(
            nn.Conv2d(2, 1, 7, padding=3, bias=False), nn.BatchNorm2d(1))
        self.global_attention = nn.Sequential(
            nn.Conv2d(global_channels, global_channels // reduction, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(global_channels // reduction, global_channels, 1, bias=False))
        self.local_proj = _conv_bn(local_channels, inter_channels)
        self.global_proj = _conv_bn(global_channels, inter_channels)
        num_fused = 2
        if previous_channels is not None:
            self.previous_proj = _conv_bn(previous_channels, inter_channels, relu=True)
            num_fused = 3
        self.fuse_norm = ChannelsFirstLayerNorm(num_fused * inter_channels)
        self.fuse_proj = _conv_bn(num_fused * inter_channels, inter_channels)
        self.act = nn.GELU()
        cat_channels = local_channels + global_channels + inter_channels
        self.norm = ChannelsFirstLayerNorm(cat_channels)
        self.irmlp = InvertedResidualMLP(cat_channels, out_channels)
        self.drop_path = (DropPath(drop_path_rate)
                          if drop_path_rate > 0 else nn.Identity())

    def _check_inputs(self, local_feat: torch.Tensor, global_feat: torch.Tensor,
                      previous: Optional[torch.Tensor]) -> None:
        check_feature_map('local_feat', local_feat, self.local_channels)
        check_feature_map('global_feat', global_feat, self.global_channels)
        n, _, h, w = local_feat.shape
        if global_feat.shape[0] != n or global_feat.shape[2:] != (h, w):
            raise ValueError(
                f'global_feat must be (N={n}, {self.global_channels}, H={h}, W={w}) to '
                f'match local_feat, got {tuple(global_feat.shape)}')
        if (previous is None) != (self.previous_channels is None):
            raise ValueError(
                'previous must be given if and only if the block was built with '
                f'previous_channels; previous_channels={self.previous_channels}, '
                f'previous={"None" if previous is None else tuple(previous.shape)}')
        if previous is not None:
            check_feature_map('previous', previous, self.previous_channels)
            if (previous.shape[0] != n or previous.shape[2] < h
                    or previous.shape[3] < w):
                raise ValueError(
                    f'previous must be (N={n}, {self.previous_channels}, H_p>={h}, '
                    f'W_p>={w}), got {tuple(previous.shape)}')

    def forward(self,
                local_feat: torch.Tensor,
                global_feat: torch.Tensor,
                previous: Optional[torch.Tensor] = None) -> torch.Tensor:
        self._check_inputs(local_feat, global_feat, previous)
        projected = [self.local_proj(local_feat), self.global_proj(global_feat)]
        shortcut = 0
        if previous is not None:
            shortcut = F.adaptive_avg_pool2d(
                self.previous_proj(previous), local_feat.shape[2:])
            projected.insert(0, shortcut)
        fused = self.act(self.fuse_proj(self.fuse_norm(torch.cat(projected, dim=1))))

        descriptors = torch.cat([
            local_feat.amax(dim=1, keepdim=True),
            local_feat.mean(dim=1, keepdim=True)
        ], dim=1)
        local_out = local_feat * torch.sigmoid(self.local_attention(descriptors))
        channel_logits = (self.global_attention(F.adaptive_max_pool2d(global_feat, 1)) +
                          self.global_attention(F.adaptive_avg_pool2d(global_feat, 1)))
        global_out = global_feat * torch.sigmoid(channel_logits)

        out = self.irmlp(self.norm(torch.cat([global_out, local_out, fused], dim=1)))
        return shortcut + self.drop_path(out)
