"""The U-Net decoder as an mmseg decode head, with a pluggable skip fusion."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ...utils import (check_block_cfg, check_choice, check_positive_int,
                      check_positive_ints, check_same_batch_size, check_stage_inputs)
from ..layers.nd_utils import check_block_spatial_dims, owned_block_cfg


@MODELS.register_module()
class UNetHead(BaseDecodeHead):
    """U-Net decoder head whose skip fusion is a config entry.

    From "U-Net: Convolutional Networks for Biomedical Image Segmentation" (Ronneberger
    et al., 2015). Starting from the deepest selected stage, each decoder step projects
    the current feature to the next shallower stage's (the skip's) channels with a 1x1
    ``ConvModule``, resizes it bilinearly to the skip's actual size (so odd and
    non-square inputs work), fuses it with the skip and applies two 3x3
    ``ConvModule``s. The last step outputs ``channels`` maps, which feed ``cls_seg``.

    Skip fusion: None concatenates ``[decoder_feature, skip]`` (the U-Net default; the
    step's first 3x3 convolution then takes twice the skip channels). A block config
    such as ``dict(type='GatedFusion')``, ``dict(type='DynamicFeatureFusion')`` or
    ``dict(type='MultiScaleSelectiveFusion', num_inputs=2)`` builds one pairwise block
    per step with ``channels`` set to the skip's channels, called as
    ``block(decoder_feature, skip)`` on two maps of equal shape; it must return one map
    of that shape. The head is 2-D: a block config with ``spatial_dims`` other than 2
    is refused when the head is built. The head checks its inputs once and builds a
    block that takes ``check_inputs`` with ``check_inputs=False`` (overriding any
    value in ``skip_fusion``).

    Args:
        in_channels (Sequence[int]): channels of the selected encoder stages, shallowest
            (highest resolution) first; at least two.
        channels (int, optional): channels of the last decoder step, fed to
            ``cls_seg``. None uses ``in_channels[0]``.
        skip_fusion (dict, optional): config of the pairwise fusion block, without
            ``channels`` and 2-D (``spatial_dims`` unset or 2); None means
            concatenation.
        in_index (Sequence[int], optional): indices of the selected stages in the
            backbone output, one per ``in_channels`` entry. None selects
            ``0 .. len(in_channels) - 1``.
        input_transform (str): only 'multiple_select' is supported.
        **kwargs: the other ``BaseDecodeHead`` arguments (``num_classes``,
            ``out_channels``, ``threshold``, ``norm_cfg``, ``act_cfg``,
            ``align_corners``, ``loss_decode``, ...).

    Shape:
        - Input: sequence of backbone outputs; the selected stage ``i`` is
          (N, in_channels[i], H_i, W_i), each deeper stage at lower resolution.
        - Output: (N, out_channels, H_0, W_0).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: Optional[int] = None,
                 *,
                 skip_fusion: Optional[dict] = None,
                 in_index: Optional[Sequence[int]] = None,
                 input_transform: str = 'multiple_select',
                 **kwargs) -> None:
        check_positive_ints(
            'in_channels', in_channels, min_length=2, what='channels per stage')
        channels = in_channels[0] if channels is None else channels
        check_positive_int('channels', channels)
        check_choice('input_transform', input_transform, ('multiple_select', ))
        if in_index is None:
            in_index = tuple(range(len(in_channels)))
        if not isinstance(in_index, (list, tuple)) or len(in_index) != len(in_channels):
            raise ValueError(f'in_index must be a list or tuple of {len(in_channels)} '
                             f'stage indices (one per in_channels), got {in_index!r}')
        if skip_fusion is not None:
            check_block_cfg('skip_fusion', skip_fusion, owner='UNetHead')
            check_block_spatial_dims('skip_fusion', skip_fusion, owner='UNetHead')
        super().__init__(
            in_channels,
            channels,
            in_index=in_index,
            input_transform=input_transform,
            **kwargs)

        self.projections = nn.ModuleList()
        self.fusions = nn.ModuleList() if skip_fusion is not None else None
        self.decoder_convs = nn.ModuleList()
        deeper_channels = in_channels[-1]
        for skip_index in range(len(in_channels) - 2, -1, -1):
            skip_channels = in_channels[skip_index]
            out_channels = channels if skip_index == 0 else skip_channels
            self.projections.append(self._conv(deeper_channels, skip_channels, 1))
            if skip_fusion is None:
                fused_channels = 2 * skip_channels
            else:
                fusion = MODELS.build(
                    owned_block_cfg(skip_fusion, channels=skip_channels))
                check_block_spatial_dims(
                    'skip_fusion', skip_fusion, owner='UNetHead', block=fusion)
                self.fusions.append(fusion)
                fused_channels = skip_channels
            self.decoder_convs.append(
                nn.Sequential(
                    self._conv(fused_channels, out_channels, 3),
                    self._conv(out_channels, out_channels, 3)))
            deeper_channels = out_channels

    def _conv(self, in_channels: int, out_channels: int,
              kernel_size: int) -> ConvModule:
        return ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        check_stage_inputs(inputs, self.in_index, self.in_channels)
        check_same_batch_size([f'inputs[{i}]' for i in self.in_index],
                              [inputs[i] for i in self.in_index])
        feats = self._transform_inputs(inputs)
        x = feats[-1]
        for step, skip in enumerate(reversed(feats[:-1])):
            x = F.interpolate(
                self.projections[step](x),
                size=skip.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
            if self.fusions is None:
                x = torch.cat([x, skip], dim=1)
            else:
                x = self.fusions[step](x, skip)
            x = self.decoder_convs[step](x)
        return self.cls_seg(x)
