"""Joint channel-spatial attention: a CBAM variant whose channel and spatial logits pass
through one shared MLP."""
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int


def _to_grid(grid_size) -> Tuple[int, int]:
    """Return ``grid_size`` (an int or a pair of ints >= 1) as (height, width)."""
    pair = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or any(
            isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in pair)):
        raise ValueError('grid_size must be a positive int or a pair of positive ints, '
                         f'got {grid_size!r}')
    return tuple(pair)


@MODELS.register_module()
class JointChannelSpatialAttention(nn.Module):
    """CBAM-style attention in which the channel logits and the spatial logits are
    concatenated and mixed by one joint MLP before their sigmoids, so each attention
    sees the other.

    From "CBAM: Convolutional Block Attention Module" (ECCV 2018), in the variant with
    a joint channel-spatial MLP. Channel logits: a shared MLP on the global max and
    average pools, summed. Spatial logits: a k x k convolution on the channel-wise max
    and mean. The joint MLP runs over the C channel logits and the gh * gw spatial
    logits; the outputs are ``x * sigmoid(channel part)`` and
    ``x * sigmoid(spatial part)``.

    Fix to the reference code: its joint MLP is built for one fixed H * W, so any other
    input size fails. Here the spatial logits (computed at full resolution) are
    average-pooled to ``grid_size`` before the joint MLP, and the spatial part of its
    output is resized bilinearly back to (H, W) before the sigmoid. When (H, W) equals
    ``grid_size`` both steps are identities and this is exactly the reference.

    Args:
        channels (int): input channels C.
        reduction (int): hidden width of both MLPs is ``channels // reduction`` (>= 1).
            Default: 16.
        kernel_size (int): odd size of the spatial-attention convolution. Default: 7.
        grid_size (int | tuple[int, int]): size (gh, gw) at which the spatial logits
            enter the joint MLP. Default: 7.

    Shape:
        - x: (N, C, H, W).
        - output: a tuple (channel_out, spatial_out), each (N, C, H, W).
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 16,
                 kernel_size: int = 7,
                 grid_size: Union[int, Tuple[int, int]] = 7) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        check_positive_int('reduction', reduction)
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f'reduction must be <= channels={channels} so that '
                             f'channels // reduction >= 1, got {reduction}')
        check_positive_int('kernel_size', kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.grid_size = _to_grid(grid_size)
        joint = channels + self.grid_size[0] * self.grid_size[1]
        self.channel_mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False))
        self.spatial_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.joint_mlp = nn.Sequential(
            nn.Conv2d(joint, hidden, 1, bias=False), nn.ReLU(),
            nn.Conv2d(hidden, joint, 1, bias=False))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        check_feature_map('x', x, self.channels)
        n, c, h, w = x.shape
        channel_logits = (self.channel_mlp(F.adaptive_max_pool2d(x, 1)) +
                          self.channel_mlp(F.adaptive_avg_pool2d(x, 1)))
        descriptors = torch.cat(
            [x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        spatial_logits = F.adaptive_avg_pool2d(
            self.spatial_conv(descriptors), self.grid_size)
        joint = torch.cat([channel_logits, spatial_logits.reshape(n, -1, 1, 1)], dim=1)
        joint = self.joint_mlp(joint)
        channel_weight = torch.sigmoid(joint[:, :c])
        spatial_logits = joint[:, c:].reshape(n, 1, *self.grid_size)
        spatial_weight = torch.sigmoid(
            F.interpolate(spatial_logits, size=(h, w), mode='bilinear',
                          align_corners=False))
        return x * channel_weight, x * spatial_weight
