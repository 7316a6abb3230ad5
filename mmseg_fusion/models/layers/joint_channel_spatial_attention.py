"""Joint channel-spatial attention: a CBAM variant whose channel and spatial logits pass
through one shared MLP (2-D or 3-D)."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_feature_map, check_int_or_tuple,
                             check_positive_int)
from .channel_attention import ChannelAttention
from .nd_utils import (adaptive_avg_pool, build_act, check_spatial_dims, conv_nd,
                       linear_mode)
from .spatial_attention import SpatialAttention


@MODELS.register_module()
class JointChannelSpatialAttention(nn.Module):
    """CBAM-style attention in which the channel logits and the spatial logits are
    concatenated and mixed by one joint MLP before their sigmoids, so each attention
    sees the other.

    From "CBAM: Convolutional Block Attention Module" (ECCV 2018), in the variant with
    a joint channel-spatial MLP. Channel logits: CBAM's channel attention
    (:class:`ChannelAttention`: a shared MLP on the global max and average pools,
    summed). Spatial logits: CBAM's spatial attention without its norm
    (:class:`SpatialAttention`: a k x k convolution with bias on the channel-wise max
    and mean). The joint MLP runs over the C channel logits and the ``prod(grid_size)``
    spatial logits; the outputs are ``x * sigmoid(channel part)`` and
    ``x * sigmoid(spatial part)``. With ``spatial_dims=3`` the convolution is k^3, the
    grid is (gd, gh, gw) and the resize is trilinear.

    Fix to the reference code: its joint MLP is built for one fixed H * W, so any other
    input size fails. Here the spatial logits (computed at full resolution) are
    average-pooled to ``grid_size`` before the joint MLP, and the spatial part of its
    output is resized (bi/trilinearly) back to the input size before the sigmoid. When
    the input size equals ``grid_size`` both steps are identities and this is exactly
    the reference.

    The convolution's parameters are ``spatial_conv.0.weight`` and
    ``spatial_conv.0.bias`` (an nn.Sequential); checkpoints that name them
    ``spatial_conv.weight`` and ``spatial_conv.bias`` still load.

    Args:
        channels (int): input channels C.
        reduction (int): hidden width of both MLPs is ``channels // reduction`` (>= 1).
            Default: 16.
        kernel_size (int): odd size of the spatial-attention convolution. Default: 7.
        grid_size (int | Sequence[int]): size at which the spatial logits enter the
            joint MLP, one int for every axis or one per axis ((gh, gw), or
            (gd, gh, gw) in 3-D). Default: 7.
        act_cfg (dict, optional): hidden activation of both MLPs (mmcv config); None
            for none. Default: ``dict(type='ReLU')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W) inputs.
            Default: 2.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - x: (N, C, H, W), or (N, C, D, H, W) when ``spatial_dims`` is 3.
        - output: a tuple (channel_out, spatial_out), each of the shape of ``x``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 16,
                 kernel_size: int = 7,
                 grid_size: Union[int, Sequence[int]] = 7,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 spatial_dims: int = 2,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.grid_size = check_int_or_tuple('grid_size', grid_size, spatial_dims)
        self.channel_mlp = ChannelAttention(
            channels, reduction, act_cfg=act_cfg, spatial_dims=spatial_dims)
        self.spatial_conv = SpatialAttention(
            kernel_size, bias=True, norm_cfg=None, spatial_dims=spatial_dims)
        conv = conv_nd(spatial_dims)
        hidden = channels // reduction
        joint = channels + math.prod(self.grid_size)
        self.joint_mlp = nn.Sequential(
            conv(joint, hidden, 1, bias=False), build_act(act_cfg),
            conv(hidden, joint, 1, bias=False))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=self.spatial_dims + 2)
        n, c = x.shape[:2]
        channel_logits = self.channel_mlp.logits(x)
        spatial_logits = adaptive_avg_pool(self.spatial_conv.logits(x), self.grid_size)
        spatial_logits = spatial_logits.reshape(n, -1, *channel_logits.shape[2:])
        joint = self.joint_mlp(torch.cat([channel_logits, spatial_logits], dim=1))
        channel_weight = torch.sigmoid(joint[:, :c])
        spatial_logits = joint[:, c:].reshape(n, 1, *self.grid_size)
        spatial_weight = torch.sigmoid(
            F.interpolate(
                spatial_logits,
                size=x.shape[2:],
                mode=linear_mode(self.spatial_dims),
                align_corners=False))
        return x * channel_weight, x * spatial_weight
