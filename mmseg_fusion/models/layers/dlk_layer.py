"""Dynamic large kernel (DLK) layer of D-Net: two chained large depthwise kernels,
spatial selection between them, channel attention, residual."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils.checks import check_bool, check_feature_map, check_positive_int
from .nd_utils import check_spatial_dims


@MODELS.register_module()
class DLKLayer(nn.Module):
    """Dynamic large kernel layer: multi-scale large kernels with dynamic spatial and
    channel selection.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (Yang et al., arXiv 2403.10674; Biomedical Signal Processing and
    Control 113, 2026), the "DLK" of upstream ``networks/DNet_blocks.py``::

        p  = proj(x)                                  # 1x1, C -> C/2, no bias
        x1 = dw_conv1(p)                              # depthwise 5^3
        x2 = dw_conv2(x1)                             # depthwise 7^3, dilation 3
        f  = cat(x1, x2)                              # C channels
        w  = sigmoid(spatial_select(cat(mean_C(f), max_C(f))))   # 7^3 conv, 2 -> 2
        s  = cat(w[:, 0] * x1, w[:, 1] * x2)          # one map per branch
        out = s * sigmoid(channel_select(avg_pool(s))) + x     # 1x1, C -> C, no bias

    The chained kernels see 5 and 5 + 6 * 3 = 23 voxels a side. Spatial selection
    follows the paper's figure (``w1 * X1 + w2 * X2``): map ``w[:, 0]`` weights the
    5^3 branch and ``w[:, 1]`` the dilated branch. With the C/2 projection each branch
    has C/2 channels, so the two weighted branches are concatenated back to C channels
    (the channel attention and the residual need C). The current upstream code instead
    multiplies both maps onto the whole concatenation (``f * w0 + f * w1``), which
    makes the selection branch-agnostic; its 2024 version (no projection, no channel
    attention) used one map per branch, as here. The parameters are the same as
    upstream's, so its checkpoints load; only the selection differs.

    Args:
        channels (int): channels C of the input and output; must be even (the two
            branches have C/2 each).
        spatial_dims (int): 3 for (N, C, D, H, W) inputs (the paper), 2 for
            (N, C, H, W).
            Default: 3.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - Input: (N, C, D, H, W) (or (N, C, H, W) when ``spatial_dims`` is 2), any
          sizes.
        - Output: the same shape as the input.
    """

    def __init__(self,
                 channels: int,
                 spatial_dims: int = 3,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        if channels % 2:
            raise ValueError(f'channels must be even (two branches of channels / 2), '
                             f'got {channels!r}')
        self.spatial_dims = check_spatial_dims(spatial_dims)
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        half = channels // 2
        self.proj = conv(channels, half, 1, bias=False)
        self.dw_conv1 = conv(half, half, 5, padding=2, groups=half)
        self.dw_conv2 = conv(half, half, 7, padding=9, dilation=3, groups=half)
        self.spatial_select = conv(2, 2, 7, padding=3)
        self.channel_select = conv(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ndim = self.spatial_dims + 2
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=ndim)
        x1 = self.dw_conv1(self.proj(x))
        x2 = self.dw_conv2(x1)
        branches = torch.cat([x1, x2], dim=1)
        descriptor = torch.cat(
            [branches.mean(dim=1, keepdim=True),
             branches.amax(dim=1, keepdim=True)],
            dim=1)
        weights = torch.sigmoid(self.spatial_select(descriptor))
        selected = torch.cat([x1 * weights[:, :1], x2 * weights[:, 1:]], dim=1)
        pooled = selected.mean(dim=tuple(range(2, ndim)), keepdim=True)
        return selected * torch.sigmoid(self.channel_select(pooled)) + x
