"""D-Net's decoder (the "DFF head"): transposed-conv upsampling, dynamic feature fusion
with each skip, DLK blocks and deep supervision, for volumes."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS

from ...utils import (check_choice, check_positive_ints, check_rate,
                      check_same_batch_size)
from ..layers import ChannelsFirstLayerNorm, DLKBlock, DynamicFeatureFusion
from .volume_decode_head import VolumeDecodeHead


class _ConcatReduction(nn.Module):
    """Concatenation of ``x`` and ``skip`` followed by a 1x1x1 convolution back to C
    channels: the plain-skip replacement of DFF in the ablation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduction = nn.Conv3d(2 * channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.reduction(torch.cat([x, skip], dim=1))


@MODELS.register_module()
class DFF3DHead(VolumeDecodeHead):
    """D-Net's decoder: at each resolution a transposed convolution up, a dynamic
    feature fusion (DFF) with the encoder's skip and DLK blocks.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (Yang et al., arXiv 2403.10674). With ``in_channels`` =
    (salience S, stage 1 C1 at 1/2, ..., stage L C_L at 1/2^L) as ``DNetEncoder``
    returns them, each of the L - 1 decoder steps from the deepest stage up does::

        x = LayerNorm(ConvTranspose3d(x, k=2, s=2))       # C_{s+1} -> C_s, size x2
        x = DFF(x, stage_s)                               # DynamicFeatureFusion
        x = DLKBlock(...)(x)  x depths[i]
        aux_s = Conv3d(x, 1x1x1)                          # deep supervision output

    and the final step returns to full resolution with the salience features::

        x = ConvTranspose3d(x, k=2, s=2)                  # C1 -> S
        x = DFF(x, salience)
        x = 2 x (Conv3d 3x3x3, BatchNorm, LeakyReLU 0.2)
        logits = Conv3d(x, 1x1x1)

    With D-Net's five stages the outputs are at [1, 1/2, 1/4, 1/8, 1/16] (highest
    resolution first; nnU-Net weights [8, 4, 2, 1, 0] / 15). ``skip_fusion='concat'``
    replaces every DFF by concatenation and a 1x1x1 convolution (2C -> C), the
    ablation that measures what DFF adds. The head checks its inputs once; its DFF and
    DLK blocks are built with ``check_inputs=False``.

    Differences from the upstream code (sotiraslab/DLK ``networks/DNet_blocks.py``),
    following the paper's figure and plain arguments: the DLK blocks come from
    :class:`DLKBlock` (separate norms and layer scales per half, see there); decoder
    depths are an argument instead of the encoder's first four depths; stochastic depth
    rises linearly from 0 to ``drop_path_rate`` over the decoder blocks, deepest first
    (upstream spreads the rate over the ten encoder blocks and uses the first eight, so
    the decoder never reaches it); the final convolutions carry no bias before their
    BatchNorm (upstream's bias is cancelled by the norm's mean subtraction). As upstream
    and the figure, the final transposed convolution has no LayerNorm.

    Args:
        in_channels (Sequence[int]): channels of the encoder outputs, salience first,
            then each stage at 1/2, 1/4, ... (``DNetEncoder.out_channels``, e.g.
            (48, 48, 96, 192, 384, 768)); at least three; the stages' channels must be
            even (a DLK block halves them).
        num_classes (int): number of classes, background included.
        depths (Sequence[int], optional): DLK blocks of each decoder step, deepest step
            first; ``len(in_channels) - 2`` entries. None: 2 per step (D-Net's).
        skip_fusion (str): 'dff' (D-Net) or 'concat' (ablation). Default: 'dff'.
        mlp_ratio (float): MLP ratio of the DLK blocks. Default: 4.
        layer_scale_init (float): layer scale initial value of the DLK blocks.
            Default: 1e-6.
        drop_path_rate (float): stochastic depth rate of the last decoder block, in
            [0, 1). Default: 0.
        norm_cfg (dict): norm of the final convolutions. Default: ``dict(type='BN3d')``.
        act_cfg (dict): activation of the final convolutions. Default:
            ``dict(type='LeakyReLU', negative_slope=0.2, inplace=True)``.
        **kwargs: :class:`VolumeDecodeHead` arguments (``loss_decode``,
            ``deep_supervision``, ``ignore_index``, ``init_cfg``).

    Shape:
        - inputs: ``len(in_channels)`` tensors: salience (N, S, D, H, W) and stage ``i``
          (N, C_i, D/2^i, H/2^i, W/2^i).
        - output: (N, num_classes, D, H, W); in training with deep supervision a list of
          ``len(in_channels) - 1`` logits at 1, 1/2, ..., 1/2^(L-1) of (D, H, W).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 *,
                 depths: Optional[Sequence[int]] = None,
                 skip_fusion: str = 'dff',
                 mlp_ratio: float = 4,
                 layer_scale_init: float = 1e-6,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN3d'),
                 act_cfg: dict = dict(
                     type='LeakyReLU', negative_slope=0.2, inplace=True),
                 **kwargs) -> None:
        super().__init__(in_channels, num_classes, **kwargs)
        channels = self.in_channels
        if len(channels) < 3:
            raise ValueError('in_channels must list the salience features and at least '
                             f'2 encoder stages, got {in_channels!r}')
        num_steps = len(channels) - 2
        if depths is None:
            depths = (2, ) * num_steps
        depths = check_positive_ints(
            'depths',
            depths,
            num_steps,
            what='block counts, one per decoder step, len(in_channels) - 2')
        self.skip_fusion = check_choice('skip_fusion', skip_fusion, ('dff', 'concat'))
        check_rate('drop_path_rate', drop_path_rate)
        self.depths = tuple(depths)

        total_blocks = sum(depths)
        rates = [
            drop_path_rate * index / max(total_blocks - 1, 1)
            for index in range(total_blocks)
        ]
        self.upsamples = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.fusions = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.aux_seg_layers = nn.ModuleList()
        block_index = 0
        for step, depth in enumerate(self.depths):
            skip_index = len(channels) - 2 - step
            width = channels[skip_index]
            self.upsamples.append(
                nn.ConvTranspose3d(channels[skip_index + 1], width, 2, stride=2))
            self.norms.append(ChannelsFirstLayerNorm(width))
            self.fusions.append(self._fusion(width))
            self.blocks.append(
                nn.Sequential(*[
                    DLKBlock(
                        width,
                        mlp_ratio=mlp_ratio,
                        drop_path=rates[block_index + j],
                        layer_scale_init=layer_scale_init,
                        check_inputs=False) for j in range(depth)
                ]))
            block_index += depth
            if self.deep_supervision:
                self.aux_seg_layers.append(nn.Conv3d(width, num_classes, 1))

        salience = channels[0]
        self.final_upsample = nn.ConvTranspose3d(channels[1], salience, 2, stride=2)
        self.final_fusion = self._fusion(salience)
        self.final_convs = nn.Sequential(*[
            ConvModule(
                salience,
                salience,
                3,
                padding=1,
                conv_cfg=dict(type='Conv3d'),
                norm_cfg=norm_cfg,
                act_cfg=act_cfg) for _ in range(2)
        ])
        self.conv_seg = nn.Conv3d(salience, num_classes, 1)

    def _fusion(self, channels: int) -> nn.Module:
        if self.skip_fusion == 'dff':
            return DynamicFeatureFusion(channels, spatial_dims=3, check_inputs=False)
        return _ConcatReduction(channels)

    def _decode(self, inputs: Sequence[torch.Tensor],
                with_aux: bool) -> List[torch.Tensor]:
        self._check_halving(inputs)
        check_same_batch_size([f'inputs[{i}]' for i in range(len(inputs))], inputs)
        x = inputs[-1]
        aux = []
        for step in range(len(self.depths)):
            x = self.norms[step](self.upsamples[step](x))
            x = self.blocks[step](self.fusions[step](x, inputs[-step - 2]))
            if with_aux:
                aux.append(self.aux_seg_layers[step](x))
        x = self.final_fusion(self.final_upsample(x), inputs[0])
        logits = self.conv_seg(self.final_convs(x))
        return [logits] + aux[::-1]
