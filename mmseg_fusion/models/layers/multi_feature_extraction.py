"""Multi-feature extraction (MFE) block of SHISRCNet."""
from typing import Sequence

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int
from .multi_scale_selective_fusion import MultiScaleSelectiveFusion


def _conv_bn_relu(channels: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel_size=3, padding=dilation,
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(channels), nn.ReLU())


@MODELS.register_module()
class MultiFeatureExtraction(nn.Module):
    """Multi-feature extraction (MFE): chained dilated branches, selectively fused.

    From "SHISRCNet: Super-resolution And Classification Network For Low-resolution
    Breast Cancer Histopathology Image" (Xie et al., MICCAI 2023). A 3x3 convolution
    (batch norm, ReLU) is the first branch; then one 3x3 dilated convolution branch per
    rate in ``dilations``, each fed the previous branch's output plus the input. The
    branches are weighted as in :class:`MultiScaleSelectiveFusion` (``fusion``, one
    input per branch), the input is added to their weighted sum, and the result goes
    through the fusion's 1x1 convolution, batch norm and ReLU.

    Args:
        channels (int): C, the input and output channels.
        dilations (Sequence[int]): dilation rates of the branches after the first, each
            >= 1; at least one. Default: (2, 4, 8).

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W).
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (2, 4, 8)) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        if (isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence)
                or not dilations
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                       for d in dilations)):
            raise ValueError('dilations must be a non-empty sequence of ints >= 1, '
                             f'got {dilations!r}')
        self.dilations = tuple(dilations)
        self.branches = nn.ModuleList(
            _conv_bn_relu(channels, d) for d in (1, ) + self.dilations)
        self.fusion = MultiScaleSelectiveFusion(channels, num_inputs=len(self.branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map('x', x, self.channels)
        features = [self.branches[0](x)]
        for branch in self.branches[1:]:
            features.append(branch(features[-1] + x))
        return self.fusion.project(self.fusion.weighted_sum(features) + x)
