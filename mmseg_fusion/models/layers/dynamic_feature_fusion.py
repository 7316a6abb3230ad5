"""Dynamic feature fusion (DFF) of a feature map and a skip connection (2-D or 3-D)."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_positive_int,
                             check_same_shape)
from .nd_utils import check_spatial_dims, conv_nd


@MODELS.register_module()
class DynamicFeatureFusion(nn.Module):
    """Dynamic feature fusion: global channel attention on the concatenation, a 1x1
    channel reduction, then a spatial gate computed from both inputs.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (arXiv 2403.10674, 2024). The reference code is 3-D only; here
    ``spatial_dims`` selects 2-D or 3-D convolutions (as MONAI blocks do), with the same
    computation::

        z = cat(x, skip)
        z = z * sigmoid(conv_atten(avg_pool(z)))
        out = conv_redu(z) * sigmoid(conv1(x) + conv2(skip))

    It has no norm and no activation besides its sigmoid gates.

    Args:
        channels (int): channels C of each input (and of the output).
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - x: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - skip: the same shape as ``x``.
        - output: the same shape as ``x``.
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
        self.conv_atten = conv(2 * channels, 2 * channels, 1, bias=False)
        self.conv_redu = conv(2 * channels, channels, 1, bias=False)
        self.conv1 = conv(channels, 1, 1)
        self.conv2 = conv(channels, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        ndim = self.spatial_dims + 2
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=ndim)
            check_feature_map('skip', skip, self.channels, ndim=ndim)
            check_same_shape(('x', 'skip'), (x, skip))
        fused = torch.cat([x, skip], dim=1)
        pooled = fused.mean(dim=tuple(range(2, ndim)), keepdim=True)
        fused = fused * torch.sigmoid(self.conv_atten(pooled))
        gate = torch.sigmoid(self.conv1(x) + self.conv2(skip))
        return self.conv_redu(fused) * gate
