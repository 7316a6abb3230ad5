"""The encoder of an nnU-Net-like 3-D U-Net, returning every stage."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import check_feature_map, check_positive_int, check_positive_ints


@MODELS.register_module()
class UNet3DEncoder(BaseModule):
    """3-D U-Net encoder as nnU-Net builds it: per stage ``num_convs`` (3x3x3 conv,
    norm, LeakyReLU) blocks, each stage after the first starting with a stride-2
    convolution.

    From "3D U-Net: Learning Dense Volumetric Segmentation from Sparse Annotation"
    (Cicek et al., 2016), in the form of "nnU-Net: a self-configuring method for deep
    learning-based biomedical image segmentation" (Isensee et al., 2021): strided
    convolutions instead of pooling, instance normalisation, LeakyReLU 0.01, widths
    doubling from 32 and capped at 320. The plain-skip baseline of the 3-D path: with
    :class:`UNet3DHead` it measures what D-Net's DFF skips add. Returns every stage for
    a decode head.

    Args:
        in_channels (int): channels of the input volume. Default: 1.
        widths (Sequence[int]): channels of each stage, highest resolution first; one
            stage per entry. Default: (32, 64, 128, 256, 320).
        num_convs (int): convolution blocks per stage. Default: 2.
        conv_cfg (dict, optional): convolution config. Default: ``dict(type='Conv3d')``.
        norm_cfg (dict, optional): normalization config, e.g. ``dict(type='BN3d')``.
            Default: ``dict(type='IN3d', affine=True)`` (nnU-Net's).
        act_cfg (dict, optional): activation config. Default:
            ``dict(type='LeakyReLU', negative_slope=0.01, inplace=True)``.
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Attributes:
        out_channels (tuple[int]): channels of each returned stage (``widths``).
        size_divisor (int): ``2 ** (len(widths) - 1)``; every side of the input must be
            divisible by it, so the decoder's upsampling meets each skip exactly.

    Shape:
        - Input: (N, in_channels, D, H, W), each side divisible by ``size_divisor``.
        - Output: tuple of ``len(widths)`` tensors, stage ``i`` (N, widths[i], D / 2^i,
          H / 2^i, W / 2^i).
    """

    def __init__(self,
                 in_channels: int = 1,
                 widths: Sequence[int] = (32, 64, 128, 256, 320),
                 num_convs: int = 2,
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = dict(type='IN3d', affine=True),
                 act_cfg: Optional[dict] = dict(
                     type='LeakyReLU', negative_slope=0.01, inplace=True),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        check_positive_int('in_channels', in_channels)
        widths = check_positive_ints('widths', widths, what='channels per stage')
        check_positive_int('num_convs', num_convs)
        self.in_channels = in_channels
        self.out_channels = tuple(widths)
        self.size_divisor = 2**(len(widths) - 1)

        self.stages = nn.ModuleList()
        stage_in = in_channels
        for index, width in enumerate(widths):
            self.stages.append(
                nn.Sequential(*[
                    ConvModule(
                        stage_in if conv == 0 else width,
                        width,
                        kernel_size=3,
                        stride=2 if index > 0 and conv == 0 else 1,
                        padding=1,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg) for conv in range(num_convs)
                ]))
            stage_in = width

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_feature_map('x', x, self.in_channels, ndim=5)
        sizes = tuple(int(s) for s in x.shape[2:])
        if any(s % self.size_divisor for s in sizes):
            raise ValueError(f'x must have every side divisible by size_divisor='
                             f'{self.size_divisor} ({len(self.stages)} stages), got '
                             f'shape {tuple(x.shape)}')
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)
