"""The MCANet decode head: multi-scale cross-axis attention over four encoder stages."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from ...utils import (check_choice, check_int_or_tuple, check_positive_ints,
                      check_stage_inputs)
from ..layers.multi_scale_cross_axis_attention import MultiScaleCrossAxisAttention

NUM_STAGES = 4


@MODELS.register_module()
class MCAHead(BaseDecodeHead):
    """MCANet decoder: multi-scale cross-axis attention on the fused deep stages.

    From "MCANet: Medical Image Segmentation with Multi-Scale Cross-Axis Attention"
    (Shao et al., arXiv 2312.08866, 2023). The four selected stages (an MSCAN encoder's,
    strides 4, 8, 16, 32) are resized bilinearly to one size. Stages 2-4 are
    concatenated and squeezed to the stage-2 width by a 1x1 ``ConvModule``, go through
    :class:`MultiScaleCrossAxisAttention` and are concatenated with stage 1. Two 3x3
    depthwise-separable convolutions (``DepthwiseSeparableConvModule``) map that to
    the stage-4 width, a 1x1 ``ConvModule`` aligns it to the stage-1 width, and
    ``cls_seg`` predicts. The head checks its inputs once; its MCA is built with
    ``check_inputs=False``.
    ``loss``/``predict`` of ``BaseDecodeHead`` resize the logits to the label size.

    ``channels``, the width ``cls_seg`` takes, is therefore the stage-1 width
    ``in_channels[0]``: it is derived when omitted and any other value is an error.

    Defects of the reference code fixed: it resizes every level to a fixed
    ``image_size`` whatever the input; here ``image_size=None`` (the default) resizes
    to the stage-1 resolution of the actual input, so any crop size works, while an int
    keeps the reference behaviour (MCANet uses 128). Its unused ``c1_channels``
    argument and the attention's unused ``temperature`` parameter are left out, so every
    parameter takes part in the forward pass, and it forces ``input_transform``, which
    made passing it an error.

    Args:
        in_channels (Sequence[int]): channels of the four selected stages, shallowest
            (highest resolution) first. The depthwise-separable convolutions are
            ``in_channels[3]`` wide.
        channels (int, optional): input width of ``cls_seg``; must be
            ``in_channels[0]``. None derives it.
        num_heads (int): attention heads of the cross-axis attention; must divide
            ``in_channels[1]``. MCANet uses 8. Default: 8.
        kernel_sizes (Sequence[int]): lengths of the strip convolutions of the
            cross-axis attention, each odd. Default: (7, 11, 21).
        image_size (int | tuple[int, int], optional): size every stage is resized
            to; None uses the size of the selected stage 1. Default: None.
        in_index (Sequence[int]): indices of the four stages in the backbone output.
            Default: (0, 1, 2, 3).
        input_transform (str): only 'multiple_select'. Default: 'multiple_select'.
        **kwargs: the other ``BaseDecodeHead`` arguments: ``num_classes`` (required),
            ``out_channels`` (1 with ``threshold`` for a binary sigmoid output),
            ``threshold``, ``dropout_ratio``, ``norm_cfg``, ``act_cfg``,
            ``align_corners``, ``loss_decode``, ...

    Shape:
        - Input: sequence of backbone outputs; the selected stage ``i`` is
          (N, in_channels[i], H_i, W_i).
        - Output: (N, out_channels, H_0, W_0) with ``image_size=None``, else
          (N, out_channels, *image_size).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: Optional[int] = None,
                 *,
                 num_heads: int = 8,
                 kernel_sizes: Sequence[int] = (7, 11, 21),
                 image_size: Optional[Union[int, Tuple[int, int]]] = None,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 input_transform: str = 'multiple_select',
                 **kwargs) -> None:
        check_positive_ints(
            'in_channels', in_channels, NUM_STAGES, what='channels per stage')
        if channels is None:
            channels = in_channels[0]
        if channels != in_channels[0]:
            raise ValueError('channels must equal in_channels[0]='
                             f'{in_channels[0]} (the width of the align convolution '
                             f'that feeds cls_seg) or be None, got {channels!r}')
        if not isinstance(in_index, (list, tuple)) or len(in_index) != NUM_STAGES:
            raise ValueError(f'in_index must be a list or tuple of {NUM_STAGES} stage '
                             f'indices (one per in_channels), got {in_index!r}')
        check_choice('input_transform', input_transform, ('multiple_select', ))
        self.image_size = check_int_or_tuple(
            'image_size', image_size, 2, what='(H, W)', optional=True)
        super().__init__(
            in_channels,
            channels,
            in_index=list(in_index),
            input_transform=input_transform,
            **kwargs)
        c1, c2, c3, c4 = in_channels
        self.squeeze = self._conv_module(c2 + c3 + c4, c2)
        self.mca = MultiScaleCrossAxisAttention(
            c2, num_heads=num_heads, kernel_sizes=kernel_sizes, check_inputs=False)
        self.bottleneck = nn.Sequential(
            self._separable_conv(c2 + c1, c4), self._separable_conv(c4, c4))
        self.align = self._conv_module(c4, c1)

    def _conv_module(self, in_channels: int, out_channels: int) -> ConvModule:
        return ConvModule(
            in_channels,
            out_channels,
            1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def _separable_conv(self, in_channels: int,
                        out_channels: int) -> DepthwiseSeparableConvModule:
        return DepthwiseSeparableConvModule(
            in_channels,
            out_channels,
            3,
            padding=1,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def _resize(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        check_stage_inputs(inputs, self.in_index, self.in_channels)
        feats = self._transform_inputs(inputs)
        size = self.image_size or tuple(feats[0].shape[2:])
        feats = [self._resize(feat, size) for feat in feats]
        x = self.mca(self.squeeze(torch.cat(feats[1:], dim=1)))
        x = self.bottleneck(torch.cat([x, feats[0]], dim=1))
        return self.cls_seg(self.align(x))
