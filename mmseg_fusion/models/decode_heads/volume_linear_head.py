"""A 1x1x1 convolution on one full-resolution feature map: the head of wrapped
networks that decode on their own."""
from typing import List, Sequence, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .volume_decode_head import VolumeDecodeHead


@MODELS.register_module()
class VolumeLinearHead(VolumeDecodeHead):
    """Voxel-wise linear classifier (1x1x1 convolution) on a single feature map.

    The head for backbones that contain their own decoder, such as
    :class:`MONAIBackbone` around SwinUNETR or UNETR with their output layer dropped:
    this convolution is that output layer again (MONAI's ``UnetOutBlock`` is a 1x1x1
    convolution with bias), and :class:`VolumeDecodeHead` adds the losses and
    prediction every 3-D head shares. One output, so no deep supervision.

    Args:
        in_channels (int | Sequence[int]): channels of the one feature map (an int or
            a one-element sequence, e.g. ``MONAIBackbone.out_channels``).
        num_classes (int): number of classes, background included.
        **kwargs: :class:`VolumeDecodeHead` arguments (``loss_decode``,
            ``ignore_index``, ``init_cfg``); ``deep_supervision`` must stay False.

    Shape:
        - inputs: a one-element sequence ``[(N, in_channels, D, H, W)]``.
        - output: (N, num_classes, D, H, W).
    """

    def __init__(self, in_channels: Union[int, Sequence[int]], num_classes: int,
                 **kwargs) -> None:
        super().__init__(in_channels, num_classes, **kwargs)
        if len(self.in_channels) != 1:
            raise ValueError('in_channels must be one channel count (one feature map), '
                             f'got {in_channels!r}')
        if self.deep_supervision:
            raise ValueError('deep_supervision must be False for VolumeLinearHead (it '
                             'has one output), got True')
        self.conv_seg = nn.Conv3d(self.in_channels[0], num_classes, kernel_size=1)

    def _decode(self, inputs: Sequence[torch.Tensor],
                with_aux: bool) -> List[torch.Tensor]:
        return [self.conv_seg(inputs[0])]
