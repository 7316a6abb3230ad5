"""The decoder of an nnU-Net-like 3-D U-Net: plain concatenated skips."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS

from ...utils import check_positive_int
from .volume_decode_head import VolumeDecodeHead


@MODELS.register_module()
class UNet3DHead(VolumeDecodeHead):
    """3-D U-Net decoder with plain skips, as nnU-Net builds it.

    From "3D U-Net" (Cicek et al., 2016) in nnU-Net's form (Isensee et al., 2021).
    Each step, from the deepest stage up: a 2x2x2 stride-2 transposed convolution to
    the skip's channels, concatenation with the skip, ``num_convs`` (3x3x3 conv, norm,
    LeakyReLU) blocks, and a 1x1x1 segmentation output. The output of the last step
    (full resolution) is the main logits; the others are the deep-supervision outputs
    (built only with ``deep_supervision``). This is the plain-skip baseline against
    which :class:`DFF3DHead` measures its fusion. The deepest stage is not decoded on
    its own, so with five stages the outputs are at [1, 1/2, 1/4, 1/8].

    Args:
        in_channels (Sequence[int]): channels of the encoder stages, highest resolution
            first (``UNet3DEncoder.out_channels``); at least two.
        num_classes (int): number of classes, background included.
        num_convs (int): convolution blocks per step. Default: 2.
        conv_cfg (dict, optional): convolution config. Default: ``dict(type='Conv3d')``.
        norm_cfg (dict, optional): normalization config. Default:
            ``dict(type='IN3d', affine=True)``.
        act_cfg (dict, optional): activation config. Default:
            ``dict(type='LeakyReLU', negative_slope=0.01, inplace=True)``.
        **kwargs: :class:`VolumeDecodeHead` arguments (``loss_decode``,
            ``deep_supervision``, ``ignore_index``, ``init_cfg``).

    Shape:
        - inputs: ``len(in_channels)`` tensors; stage ``i`` (N, in_channels[i], D/2^i,
          H/2^i, W/2^i).
        - output: (N, num_classes, D, H, W); in training with deep supervision a list of
          ``len(in_channels) - 1`` logits at 1, 1/2, ... of (D, H, W).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 *,
                 num_convs: int = 2,
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = dict(type='IN3d', affine=True),
                 act_cfg: Optional[dict] = dict(
                     type='LeakyReLU', negative_slope=0.01, inplace=True),
                 **kwargs) -> None:
        super().__init__(in_channels, num_classes, **kwargs)
        if len(self.in_channels) < 2:
            raise ValueError('in_channels must list at least 2 encoder stages, got '
                             f'{in_channels!r}')
        check_positive_int('num_convs', num_convs)
        self.upsamples = nn.ModuleList()
        self.steps = nn.ModuleList()
        self.seg_layers = nn.ModuleList()
        deeper = self.in_channels[-1]
        for skip_index in range(len(self.in_channels) - 2, -1, -1):
            channels = self.in_channels[skip_index]
            self.upsamples.append(
                nn.ConvTranspose3d(deeper, channels, kernel_size=2, stride=2))
            self.steps.append(
                nn.Sequential(*[
                    ConvModule(
                        2 * channels if conv == 0 else channels,
                        channels,
                        kernel_size=3,
                        padding=1,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg) for conv in range(num_convs)
                ]))
            if skip_index == 0 or self.deep_supervision:
                self.seg_layers.append(nn.Conv3d(channels, num_classes, 1))
            deeper = channels

    def _decode(self, inputs: Sequence[torch.Tensor],
                with_aux: bool) -> List[torch.Tensor]:
        self._check_halving(inputs)
        x = inputs[-1]
        outputs = []
        num_steps = len(self.steps)
        for step in range(num_steps):
            skip = inputs[-step - 2]
            x = self.steps[step](torch.cat([self.upsamples[step](x), skip], dim=1))
            last = step == num_steps - 1
            if last or with_aux:
                outputs.append(self.seg_layers[-1 if last else step](x))
        return outputs[::-1]
