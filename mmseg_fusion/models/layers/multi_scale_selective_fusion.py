"""Multi-scale selective fusion (MSF) of SHISRCNet."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int, check_same_shape


@MODELS.register_module()
class MultiScaleSelectiveFusion(nn.Module):
    """Multi-scale selective fusion (MSF): a per-channel softmax choice between inputs.

    From "SHISRCNet: Super-resolution And Classification Network For Low-resolution
    Breast Cancer Histopathology Image" (Xie et al., MICCAI 2023). Each input is
    average-pooled to (N, C, 1, 1) and passed through its own 1x1 convolution without
    bias; the descriptors go through a sigmoid, then a softmax across the inputs, which
    gives every input a weight per channel. The weighted sum of the inputs goes through
    a 1x1 convolution, batch norm and ReLU (``project``).

    :meth:`weighted_sum` is the selection without the projection, for blocks that add
    something before projecting (:class:`MultiFeatureExtraction` adds a residual).

    Args:
        channels (int): C, the channels of every input and of the output.
        num_inputs (int): how many maps are fused, >= 2. Default: 4.

    Shape:
        - inputs: ``num_inputs`` tensors of one shape (N, C, H, W), positionally.
        - Output: (N, C, H, W).
    """

    def __init__(self, channels: int, num_inputs: int = 4) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        if check_positive_int('num_inputs', num_inputs) < 2:
            raise ValueError(f'num_inputs must be an int >= 2, got {num_inputs!r}')
        self.num_inputs = num_inputs
        self.squeeze = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=1, bias=False)
            for _ in range(num_inputs))
        self.project = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU())

    def weighted_sum(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum of the inputs, each scaled by its per-channel selection weight.

        Args:
            inputs (Sequence[Tensor]): ``num_inputs`` tensors of one shape (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W), before ``project``.
        """
        if len(inputs) != self.num_inputs:
            raise ValueError(f'expected {self.num_inputs} inputs (num_inputs), '
                             f'got {len(inputs)}')
        names = [f'inputs[{i}]' for i in range(len(inputs))]
        for name, x in zip(names, inputs):
            check_feature_map(name, x, self.channels)
        check_same_shape(names, inputs)
        descriptors = torch.stack([
            squeeze(F.adaptive_avg_pool2d(x, 1))
            for squeeze, x in zip(self.squeeze, inputs)
        ])
        weights = descriptors.sigmoid().softmax(dim=0)
        return sum(w * x for w, x in zip(weights, inputs))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.project(self.weighted_sum(inputs))
