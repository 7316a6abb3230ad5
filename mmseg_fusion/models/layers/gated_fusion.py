"""Gated fusion of two feature maps (2-D or 3-D)."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_positive_int,
                             check_same_shape)
from .nd_utils import check_spatial_dims, conv_nd


@MODELS.register_module()
class GatedFusion(nn.Module):
    """Gated fusion: a per-pixel, per-channel sigmoid gate mixes two feature maps.

    ``z = sigmoid(W1 x1 + W2 x2)``, ``out = z * x1 + (1 - z) * x2``, with W1 and W2
    1x1 convolutions with bias: the gated fusion of GMAN ("GMAN: A Graph
    Multi-Attention Network for Traffic Prediction", Zheng et al., AAAI 2020), in the
    form of the plug-and-play reference code (bias on both gates, no output layer).
    That code applies ``nn.Linear`` to channels-last tensors, the same map as a 1x1
    convolution on (N, C, H, W); being pointwise, it applies unchanged to volumes
    (1x1x1 convolutions with ``spatial_dims=3``). It has no norm and no activation
    besides the gate.

    Args:
        channels (int): C, the channels of both inputs and of the output.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - x1: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - x2: the same shape as ``x1``.
        - Output: the same shape as ``x1``.
    """

    def __init__(self,
                 channels: int,
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        conv = conv_nd(spatial_dims)
        self.gate_x1 = conv(channels, channels, kernel_size=1)
        self.gate_x2 = conv(channels, channels, kernel_size=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        ndim = self.spatial_dims + 2
        if self.check_inputs:
            check_feature_map('x1', x1, self.channels, ndim=ndim)
            check_feature_map('x2', x2, self.channels, ndim=ndim)
            check_same_shape(('x1', 'x2'), (x1, x2))
        z = torch.sigmoid(self.gate_x1(x1) + self.gate_x2(x2))
        # z * x1 + (1 - z) * x2 as one lerp: a single elementwise kernel forward and
        # backward, the faster step on CPU (README, "Benchmarks"). lerp takes
        # one dtype, which mixed inputs (autocast) share after promotion.
        dtype = torch.promote_types(torch.promote_types(x1.dtype, x2.dtype), z.dtype)
        return torch.lerp(x2.to(dtype), x1.to(dtype), z.to(dtype))
