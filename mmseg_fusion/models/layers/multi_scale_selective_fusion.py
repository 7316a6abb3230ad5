"""Multi-scale selective fusion (MSF) of SHISRCNet (2-D or 3-D)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_positive_int,
                             check_same_shape)
from .nd_utils import (adaptive_avg_pool, build_act, build_norm, check_spatial_dims,
                       conv_nd)


@MODELS.register_module()
class MultiScaleSelectiveFusion(nn.Module):
    """Multi-scale selective fusion (MSF): a per-channel softmax choice between inputs.

    From "SHISRCNet: Super-resolution And Classification Network For Low-resolution
    Breast Cancer Histopathology Image" (Xie et al., MICCAI 2023). Each input is
    average-pooled to (N, C, 1, 1) and passed through its own 1x1 convolution without
    bias; the descriptors go through a sigmoid, then a softmax across the inputs, which
    gives every input a weight per channel. The weighted sum of the inputs goes through
    a 1x1 convolution, a norm and an activation (``project``; the paper's batch norm
    and ReLU by default). With ``spatial_dims=3`` the pooling is over (D, H, W) and the
    convolutions are 1x1x1.

    :meth:`weighted_sum` is the selection without the projection, for blocks that add
    something before projecting (:class:`MultiFeatureExtraction` adds a residual).

    Args:
        channels (int): C, the channels of every input and of the output.
        num_inputs (int): how many maps are fused, >= 2. Default: 4.
        norm_cfg (dict, optional): norm of ``project`` (mmcv config; 'BN' follows
            ``spatial_dims``, 'SyncBN' and 'GN' work); None for none.
            Default: ``dict(type='BN')``.
        act_cfg (dict, optional): activation of ``project``; None for none.
            Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - inputs: ``num_inputs`` tensors of one shape (N, C, H, W) (or (N, C, D, H, W)
          when ``spatial_dims`` is 3), positionally.
        - Output: that shape.
    """

    def __init__(self,
                 channels: int,
                 num_inputs: int = 4,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        if check_positive_int('num_inputs', num_inputs) < 2:
            raise ValueError(f'num_inputs must be an int >= 2, got {num_inputs!r}')
        self.num_inputs = num_inputs
        self.spatial_dims = check_spatial_dims(spatial_dims)
        conv = conv_nd(spatial_dims)
        self.squeeze = nn.ModuleList(
            conv(channels, channels, kernel_size=1, bias=False)
            for _ in range(num_inputs))
        self.project = nn.Sequential(
            conv(channels, channels, kernel_size=1, bias=False),
            build_norm(norm_cfg, channels, spatial_dims), build_act(act_cfg))

    def weighted_sum(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum of the inputs, each scaled by its per-channel selection weight.

        Args:
            inputs (Sequence[Tensor]): ``num_inputs`` tensors of one shape (N, C, H, W)
                (or (N, C, D, H, W)).

        Returns:
            Tensor: that shape, before ``project``.
        """
        if len(inputs) != self.num_inputs:
            raise ValueError(f'expected {self.num_inputs} inputs (num_inputs), '
                             f'got {len(inputs)}')
        if self.check_inputs:
            names = [f'inputs[{i}]' for i in range(len(inputs))]
            for name, x in zip(names, inputs):
                check_feature_map(name, x, self.channels, ndim=self.spatial_dims + 2)
            check_same_shape(names, inputs)
        descriptors = torch.stack([
            squeeze(adaptive_avg_pool(x, 1))
            for squeeze, x in zip(self.squeeze, inputs)
        ])
        weights = descriptors.sigmoid().softmax(dim=0)
        return sum(w * x for w, x in zip(weights, inputs))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.project(self.weighted_sum(inputs))
