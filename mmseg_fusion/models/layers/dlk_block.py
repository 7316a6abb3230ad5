"""D-Net's DLK block: a pre-norm DLK module and a pre-norm convolutional MLP, each with
layer scale, stochastic depth and a residual."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmcv.cnn.bricks import DropPath
from mmseg.registry import MODELS

from ...utils.checks import (check_bool, check_cfg, check_feature_map,
                             check_positive_int, check_rate)
from .channels_first_layer_norm import ChannelsFirstLayerNorm
from .dlk_layer import DLKLayer
from .nd_utils import check_spatial_dims


@MODELS.register_module()
class DLKBlock(nn.Module):
    """DLK block: the hierarchical-ViT block of D-Net with a DLK module as token mixer.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (Yang et al., arXiv 2403.10674)::

        y = norm1(x)
        y = proj2(dlk(act(proj1(y)))) + y            # DLK module (1x1, act, DLK, 1x1)
        x = x + drop_path(layer_scale1 * y)
        y = fc2(act(dw_conv(fc1(norm2(x)))))          # MLP: 1x1 to r*C, dw 3^3,
                                                      #      act, 1x1 back
        x = x + drop_path(layer_scale2 * y)

    The norms are channels-first LayerNorms (eps 1e-6); layer scales are per channel,
    initialised at ``layer_scale_init``. The DLK module keeps upstream's inner shortcut
    from its (normalised) input, as VAN's attention module does. The two halves have
    SEPARATE norms and layer scales, as in the paper's figure; the upstream code
    (``networks/DNet_blocks.py``) applies one shared ``LayerNorm`` and one shared
    ``layer_scale`` to both halves, a quirk that costs 3 * C parameters less per block.
    Its ``DLKLayer`` is built with ``check_inputs=False`` (the block checks ``x``).

    Args:
        channels (int): channels C of the input and output; even (see ``DLKLayer``).
        mlp_ratio (float): hidden channels of the MLP are ``int(C * mlp_ratio)``.
            Default: 4.
        drop_path (float): stochastic depth rate of both residual branches (per sample,
            training only), in [0, 1). Default: 0.
        layer_scale_init (float): initial value of the layer scales; 0 disables layer
            scale. Default: 1e-6.
        act_cfg (dict): activation of the DLK module and the MLP (mmcv config).
            Default: ``dict(type='GELU')``.
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
                 mlp_ratio: float = 4,
                 drop_path: float = 0.,
                 layer_scale_init: float = 1e-6,
                 act_cfg: dict = dict(type='GELU'),
                 spatial_dims: int = 3,
                 check_inputs: bool = True) -> None:
        super().__init__()
        self.check_inputs = check_bool('check_inputs', check_inputs)
        self.channels = check_positive_int('channels', channels)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio,
                                                         (int, float)) or int(
                                                             channels * mlp_ratio) < 1:
            raise ValueError('mlp_ratio must be a positive number with int(channels * '
                             f'mlp_ratio) >= 1, got {mlp_ratio!r}')
        drop_path = check_rate('drop_path', drop_path)
        if isinstance(layer_scale_init,
                      bool) or not isinstance(layer_scale_init,
                                              (int, float)) or layer_scale_init < 0:
            raise ValueError('layer_scale_init must be a float >= 0 (0 disables layer '
                             f'scale), got {layer_scale_init!r}')
        check_cfg('act_cfg', act_cfg, optional=False)
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        hidden = int(channels * mlp_ratio)

        self.norm1 = ChannelsFirstLayerNorm(channels)
        self.proj1 = conv(channels, channels, 1)
        self.act = build_activation_layer(act_cfg)
        self.dlk = DLKLayer(channels, spatial_dims=spatial_dims, check_inputs=False)
        self.proj2 = conv(channels, channels, 1)

        self.norm2 = ChannelsFirstLayerNorm(channels)
        self.mlp = nn.Sequential(
            conv(channels, hidden, 1),
            conv(hidden, hidden, 3, padding=1, groups=hidden),
            build_activation_layer(act_cfg),
            conv(hidden, channels, 1),
        )

        if layer_scale_init > 0:
            self.layer_scale1 = nn.Parameter(torch.full((channels, ), layer_scale_init))
            self.layer_scale2 = nn.Parameter(torch.full((channels, ), layer_scale_init))
        else:
            self.layer_scale1 = self.layer_scale2 = None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _scale(self, y: torch.Tensor, scale: Optional[torch.Tensor]) -> torch.Tensor:
        if scale is None:
            return y
        return y * scale.reshape(-1, *(1, ) * self.spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_feature_map('x', x, self.channels, ndim=self.spatial_dims + 2)
        y = self.norm1(x)
        y = self.proj2(self.dlk(self.act(self.proj1(y)))) + y
        x = x + self.drop_path(self._scale(y, self.layer_scale1))
        y = self.mlp(self.norm2(x))
        return x + self.drop_path(self._scale(y, self.layer_scale2))
