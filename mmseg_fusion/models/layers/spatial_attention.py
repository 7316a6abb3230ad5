"""CBAM spatial attention: a convolution over the channel-wise max and mean."""
from typing import Optional

import torch
import torch.nn as nn

from ...utils.checks import check_positive_int
from .nd_utils import build_norm, check_spatial_dims, conv_nd


class SpatialAttention(nn.Sequential):
    """Spatial attention of CBAM: ``x * sigmoid(norm(conv([max_C(x), mean_C(x)])))``.

    From "CBAM: Convolutional Block Attention Module" (Woo et al., ECCV 2018): a
    ``k x k`` (``k^3`` in 3-D) convolution, 2 -> 1 channels with ``k // 2`` zero
    padding, over the channel-wise max and mean maps, then (CBAM's default) a batch
    norm of the one-channel map. The module is the convolution and the norm (an
    ``nn.Sequential``: children ``0`` and, with a norm, ``1``). :meth:`logits` gives the
    pre-sigmoid map. A GroupNorm config gets one group (the map has one channel).

    Args:
        kernel_size (int): odd convolution size. Default: 7.
        bias (bool): whether the convolution has a bias. Default: False (CBAM's).
        norm_cfg (dict, optional): norm of the map (mmcv config; 'BN' follows
            ``spatial_dims``); None for none. Default: ``dict(type='BN')``.
        spatial_dims (int): 2 for (N, C, H, W) inputs, 3 for (N, C, D, H, W).
            Default: 2.

    Shape:
        - x: (N, C, *spatial).
        - output: (N, C, *spatial); :meth:`logits`: (N, 1, *spatial).
    """

    def __init__(self,
                 kernel_size: int = 7,
                 bias: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 spatial_dims: int = 2) -> None:
        check_positive_int('kernel_size', kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        conv = conv_nd(check_spatial_dims(spatial_dims))
        layers = [conv(2, 1, kernel_size, padding=kernel_size // 2, bias=bias)]
        if norm_cfg is not None:
            if norm_cfg.get('type') == 'GN':
                norm_cfg = dict(norm_cfg, num_groups=1)
            layers.append(build_norm(norm_cfg, 1, spatial_dims))
        super().__init__(*layers)
        self.spatial_dims = spatial_dims

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-sigmoid map, (N, 1, *spatial)."""
        # max with indices, as CBAM's code takes it: its backward scatters into the
        # arg-max positions, where amax's compares the whole input with the maximum
        # (an input-sized mask held for backward)
        maximum = x.max(dim=1, keepdim=True).values
        descriptors = torch.cat([maximum, x.mean(dim=1, keepdim=True)], dim=1)
        return super().forward(descriptors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.logits(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A checkpoint that held the convolution alone (``weight``, ``bias``, as
        # JointChannelSpatialAttention's ``spatial_conv`` did) loads into child 0.
        for key in ('weight', 'bias'):
            if prefix + key in state_dict and prefix + '0.' + key not in state_dict:
                state_dict[prefix + '0.' + key] = state_dict.pop(prefix + key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
