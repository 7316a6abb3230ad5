"""CBAM channel attention: a shared MLP on the global max and average pools."""
from typing import Optional

import torch
import torch.nn as nn

from ...utils.checks import check_positive_int
from .nd_utils import (adaptive_avg_pool, adaptive_max_pool, build_act,
                       check_spatial_dims, conv_nd)


class ChannelAttention(nn.Sequential):
    """Channel attention of CBAM: ``x * sigmoid(MLP(maxpool(x)) + MLP(avgpool(x)))``.

    From "CBAM: Convolutional Block Attention Module" (Woo et al., ECCV 2018). The MLP
    is two bias-free 1x1 convolutions, ``C -> C // reduction -> C``, with an
    activation between them, shared by both pooled descriptors. The module is that MLP
    (an ``nn.Sequential``: children ``0``, ``1``, ``2``), so its parameters are named
    ``0.weight`` and ``2.weight``. :meth:`logits` gives the pre-sigmoid sum for blocks
    that mix it with something else first (:class:`JointChannelSpatialAttention`).

    Args:
        channels (int): channels C.
        reduction (int): the hidden width is ``channels // reduction``, >= 1.
            Default: 16.
        act_cfg (dict, optional): activation between the two convolutions (mmcv
            config); None for none. Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W).
            Default: 2.

    Shape:
        - x: (N, C, *spatial).
        - output: (N, C, *spatial); :meth:`logits`: (N, C, 1, ...).
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 16,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2) -> None:
        check_positive_int('channels', channels)
        check_positive_int('reduction', reduction)
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f'reduction must be <= channels={channels} so that '
                             f'channels // reduction >= 1, got {reduction}')
        conv = conv_nd(check_spatial_dims(spatial_dims))
        super().__init__(
            conv(channels, hidden, 1, bias=False), build_act(act_cfg),
            conv(hidden, channels, 1, bias=False))
        self.channels = channels
        self.spatial_dims = spatial_dims

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``MLP(maxpool(x)) + MLP(avgpool(x))``, (N, C, 1, ...)."""
        mlp = super().forward
        return mlp(adaptive_max_pool(x, 1)) + mlp(adaptive_avg_pool(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.logits(x))
