"""D-Net's salience layer: full-resolution low-level features for the last skip."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import (ConvModule, build_activation_layer, build_conv_layer,
                      build_norm_layer)
from mmseg.registry import MODELS

from ...utils.checks import check_bool, check_cfg, check_feature_map, check_positive_int


@MODELS.register_module()
class SalienceLayer(nn.Module):
    """Salience layer: a 3^3 convolution at the input's resolution, then a residual
    channel mixer.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (Yang et al., arXiv 2403.10674; journal version 2026): low-level
    features extracted from the image without patch embedding, fused by the decoder's
    last step. Upstream ``SaliencyMLPblock`` in ``networks/DNet_blocks.py``::

        y = act(norm(conv3x3x3(x)))                            # in -> C
        out = y + fc2(gelu(dw_conv3x3x3(fc1(mixer_norm(y)))))  # 1x1 C -> r*C, ..., back

    Two differences from upstream. Upstream applies ONE BatchNorm module twice (after
    the convolution and again before the mixer), so its running statistics average two
    different distributions and eval-mode outputs drift from training ones; here the
    mixer has its own norm (``mixer_norm``, 2 * C more parameters). And the
    convolution before the norm has no bias (``ConvModule``'s 'auto': the norm
    subtracts it anyway; C parameters fewer), where upstream keeps one.

    Args:
        in_channels (int): channels of the input image.
        channels (int): output channels C. Default: 48 (D-Net's first width).
        mlp_ratio (float): hidden channels of the mixer are ``int(C * mlp_ratio)``.
            Default: 4.
        conv_cfg (dict): convolution config. Default: ``dict(type='Conv3d')``.
        norm_cfg (dict, optional): norm after the convolution and before the mixer;
            None for none. Default: ``dict(type='BN3d')``.
        act_cfg (dict, optional): activation after the first norm.
            Default: ``dict(type='LeakyReLU', negative_slope=0.2)`` (upstream's).
        mixer_act_cfg (dict): activation inside the mixer. Default:
            ``dict(type='GELU')``.
        check_inputs (bool): check the input tensors' shapes in forward (default).
            A component that owns this block and has checked its own inputs builds
            it with False, so each tensor is checked once, at the boundary the
            user called. Default: True.

    Shape:
        - Input: (N, in_channels, D, H, W), any sizes.
        - Output: (N, C, D, H, W).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int = 48,
                 mlp_ratio: float = 4,
                 conv_cfg: dict = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = dict(type='BN3d'),
                 act_cfg: Optional[dict] = dict(type='LeakyReLU', negative_slope=0.2),
                 mixer_act_cfg: dict = dict(type='GELU'),
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.channels = check_positive_int('channels', channels)
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio,
                                                         (int, float)) or int(
                                                             channels * mlp_ratio) < 1:
            raise ValueError('mlp_ratio must be a positive number with int(channels * '
                             f'mlp_ratio) >= 1, got {mlp_ratio!r}')
        check_cfg('conv_cfg', conv_cfg, optional=False)
        check_cfg('norm_cfg', norm_cfg, optional=True)
        check_cfg('act_cfg', act_cfg, optional=True)
        check_cfg('mixer_act_cfg', mixer_act_cfg, optional=False)
        hidden = int(channels * mlp_ratio)

        self.conv = ConvModule(
            in_channels,
            channels,
            3,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.mixer_norm = (
            build_norm_layer(norm_cfg, channels)[1]
            if norm_cfg is not None else nn.Identity())
        self.mixer = nn.Sequential(
            build_conv_layer(conv_cfg, channels, hidden, 1),
            build_conv_layer(conv_cfg, hidden, hidden, 3, padding=1, groups=hidden),
            build_activation_layer(mixer_act_cfg),
            build_conv_layer(conv_cfg, hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_feature_map('x', x, self.in_channels, ndim=5)
        y = self.conv(x)
        return y + self.mixer(self.mixer_norm(y))
