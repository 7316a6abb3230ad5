"""The encoder half of a U-Net, returning every encoder stage."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import (check_choice, check_feature_map, check_positive_int,
                      check_positive_ints)


@MODELS.register_module()
class UNetEncoder(BaseModule):
    """U-Net encoder: stages of 3x3 convolutions, each next stage at half resolution.

    From "U-Net: Convolutional Networks for Biomedical Image Segmentation" (Ronneberger
    et al., 2015). mmseg's ``UNet`` backbone contains its own decoder; this one stops
    after the encoder and returns all stages, so a decode head (``UNetHead``) or a neck
    can do the decoding. Stage 0 is at input resolution and each stage ``i > 0`` first
    downsamples by 2, then applies ``num_convs`` 3x3 ``ConvModule``s.

    Args:
        in_channels (int): channels of the input image.
        base_channels (int): channels of stage 0.
        num_stages (int): number of stages (resolutions).
        channel_multipliers (Sequence[int], optional): stage ``i`` has
            ``base_channels * channel_multipliers[i]`` channels; one entry per stage.
            None doubles per stage: ``(1, 2, 4, ...)``.
        num_convs (int): 3x3 convolutions per stage.
        downsample (str): 'maxpool' (2x2 max pooling, floors odd sizes: 33 -> 16) or
            'stride' (the stage's first convolution has stride 2, rounds odd sizes
            up: 33 -> 17).
        conv_cfg (dict, optional): convolution config of the ``ConvModule``s.
        norm_cfg (dict, optional): normalization config of the ``ConvModule``s.
        act_cfg (dict, optional): activation config of the ``ConvModule``s.
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Attributes:
        out_channels (tuple[int]): channels of each returned stage.

    Shape:
        - Input: (N, in_channels, H, W); with 'maxpool', H and W must be at least
          ``2 ** (num_stages - 1)``.
        - Output: tuple of ``num_stages`` tensors; stage ``i`` is
          (N, out_channels[i], H_i, W_i) with H_0 = H and H_i = H_{i-1} // 2
          ('maxpool') or ceil(H_{i-1} / 2) ('stride'), likewise W.
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 32,
                 num_stages: int = 5,
                 channel_multipliers: Optional[Sequence[int]] = None,
                 num_convs: int = 2,
                 downsample: str = 'maxpool',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        check_positive_int('in_channels', in_channels)
        check_positive_int('base_channels', base_channels)
        check_positive_int('num_stages', num_stages)
        check_positive_int('num_convs', num_convs)
        check_choice('downsample', downsample, ('maxpool', 'stride'))
        if channel_multipliers is None:
            channel_multipliers = tuple(2**i for i in range(num_stages))
        channel_multipliers = check_positive_ints(
            'channel_multipliers', channel_multipliers, num_stages, what='num_stages')
        self.in_channels = in_channels
        self.downsample = downsample
        self.out_channels = tuple(base_channels * m for m in channel_multipliers)

        self.stages = nn.ModuleList()
        stage_in = in_channels
        for index, stage_out in enumerate(self.out_channels):
            layers = []
            if index > 0 and downsample == 'maxpool':
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for conv_index in range(num_convs):
                stride = 2 if (index > 0 and downsample == 'stride'
                               and conv_index == 0) else 1
                layers.append(
                    ConvModule(
                        stage_in if conv_index == 0 else stage_out,
                        stage_out,
                        kernel_size=3,
                        stride=stride,
                        padding=1,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg))
            self.stages.append(nn.Sequential(*layers))
            stage_in = stage_out

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_feature_map('x', x, self.in_channels)
        min_size = 2**(len(self.stages) - 1)
        if self.downsample == 'maxpool' and min(x.shape[2:]) < min_size:
            raise ValueError(
                f'x must be at least {min_size}x{min_size} for {len(self.stages)} '
                f"stages with downsample='maxpool', got shape {tuple(x.shape)}")
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)
