"""Multi-feature extraction (MFE) block of SHISRCNet (2-D or 3-D)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_positive_int,
                             check_positive_ints)
from .multi_scale_selective_fusion import MultiScaleSelectiveFusion
from .nd_utils import build_act, build_norm, check_spatial_dims, conv_nd


@MODELS.register_module()
class MultiFeatureExtraction(nn.Module):
    """Multi-feature extraction (MFE): chained dilated branches, selectively fused.

    From "SHISRCNet: Super-resolution And Classification Network For Low-resolution
    Breast Cancer Histopathology Image" (Xie et al., MICCAI 2023). A 3x3 convolution
    (norm, activation) is the first branch; then one 3x3 dilated convolution branch per
    rate in ``dilations``, each fed the previous branch's output plus the input. The
    branches are weighted as in :class:`MultiScaleSelectiveFusion` (``fusion``, one
    input per branch), the input is added to their weighted sum, and the result goes
    through the fusion's 1x1 convolution, norm and activation. The paper's norm and
    activation are batch norm and ReLU. With ``spatial_dims=3`` the convolutions are
    3x3x3, dilated along every axis. The fusion is built with ``check_inputs=False``
    (the block checks ``x``).

    Args:
        channels (int): C, the input and output channels.
        dilations (Sequence[int]): dilation rates of the branches after the first, each
            >= 1; at least one. Default: (2, 4, 8).
        norm_cfg (dict, optional): norm of every branch and of the fusion's projection
            (mmcv config; 'BN' follows ``spatial_dims``, 'SyncBN' and 'GN' work); None
            for none. Default: ``dict(type='BN')``.
        act_cfg (dict, optional): activation of every branch and of the projection;
            None for none. Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - Input: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - Output: the input's shape.
    """

    def __init__(self,
                 channels: int,
                 dilations: Sequence[int] = (2, 4, 8),
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        self.dilations = check_positive_ints('dilations', dilations)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        conv = conv_nd(spatial_dims)
        self.branches = nn.ModuleList(
            nn.Sequential(
                conv(
                    channels,
                    channels,
                    kernel_size=3,
                    padding=d,
                    dilation=d,
                    bias=False), build_norm(norm_cfg, channels, spatial_dims),
                build_act(act_cfg)) for d in (1, ) + self.dilations)
        self.fusion = MultiScaleSelectiveFusion(
            channels,
            num_inputs=len(self.branches),
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            spatial_dims=spatial_dims,
            check_inputs=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=self.spatial_dims + 2)
        features = [self.branches[0](x)]
        for branch in self.branches[1:]:
            features.append(branch(features[-1] + x))
        return self.fusion.project(self.fusion.weighted_sum(features) + x)
