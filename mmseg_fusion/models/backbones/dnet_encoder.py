"""The encoder of D-Net (3-D): a salience layer at full resolution and stages of DLK
blocks at 1/2 ... 1/2**S."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import check_positive_int, check_positive_ints, check_rate
from ..layers.channels_first_layer_norm import ChannelsFirstLayerNorm
from ..layers.dlk_block import DLKBlock
from ..layers.salience_layer import SalienceLayer


@MODELS.register_module()
class DNetEncoder(BaseModule):
    """D-Net encoder: salience layer, then stages of DLK blocks, each at half the
    previous resolution.

    From "D-Net: Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical
    Image Segmentation" (Yang et al., arXiv 2403.10674; Biomedical Signal Processing and
    Control 113, 2026; upstream ``Encoder`` in sotiraslab/DLK
    ``networks/DNet_blocks.py``).
    The stem is a ``stem_kernel``^3 stride-2 convolution to ``widths[0]``; each later
    stage starts with a 3^3 stride-2 convolution from the previous width. Every stage
    then applies a channels-first LayerNorm and ``depths[i]`` ``DLKBlock``s. The
    ``SalienceLayer`` runs on the full-resolution input and feeds the decoder's last
    skip. Stochastic depth rises linearly from 0 to ``drop_path_rate`` over all blocks.
    The encoder checks its input once; its blocks are built with
    ``check_inputs=False``.

    Differences from upstream, all in the blocks (see their docstrings): each
    ``DLKBlock`` has separate norms and layer scales for its two halves (upstream shares
    one of each), ``DLKLayer`` weights each branch by its own spatial map (upstream
    multiplies both maps onto the concatenation), and ``SalienceLayer`` has its own
    mixer norm and no bias before its BatchNorm. At the default (full) size this
    encoder has 29,777,196 parameters: upstream's count (hand count from its code,
    29,768,220) + 8,928 (3 * C per block: one more LayerNorm and layer scale, over
    2 * (48 + 96 + 192 + 384 + 768) channels) + 96 (the mixer's BatchNorm) - 48
    (the salience convolution's bias).

    Args:
        in_channels (int): channels (modalities) of the input volume. Default: 1.
        widths (Sequence[int]): channels of each stage, even ints. Default:
            (48, 96, 192, 384, 768).
        depths (Sequence[int]): DLK blocks per stage, one entry per width. Default:
            (2, 2, 2, 2, 2).
        salience_channels (int): channels of the salience features. Default: 48.
        stem_kernel (int): odd kernel size of the stem convolution. Default: 7.
        drop_path_rate (float): stochastic depth of the last block, in [0, 1).
            Default: 0.
        layer_scale_init (float): initial layer scale of every block; 0 disables it.
            Default: 1e-6.
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Attributes:
        out_channels (tuple[int]): channels of each returned map:
            ``(salience_channels, *widths)``.
        size_divisor (int): ``2 ** len(widths)``; every spatial side of the input must
            be a multiple of it.

    Shape:
        - Input: (N, in_channels, D, H, W), D, H and W multiples of ``size_divisor``.
        - Output: tuple of ``1 + len(widths)`` tensors: the salience features
          (N, salience_channels, D, H, W), then stage ``i`` (from 1)
          (N, widths[i - 1], D / 2**i, H / 2**i, W / 2**i).
    """

    def __init__(self,
                 in_channels: int = 1,
                 widths: Sequence[int] = (48, 96, 192, 384, 768),
                 depths: Sequence[int] = (2, 2, 2, 2, 2),
                 salience_channels: int = 48,
                 stem_kernel: int = 7,
                 drop_path_rate: float = 0.,
                 layer_scale_init: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = check_positive_int('in_channels', in_channels)
        widths = check_positive_ints('widths', widths)
        for i, width in enumerate(widths):
            if width % 2:
                raise ValueError(f'widths[{i}] must be even (DLK splits the channels '
                                 f'in two), got {widths!r}')
        depths = check_positive_ints(
            'depths', depths, len(widths), what='one per width')
        check_positive_int('salience_channels', salience_channels)
        if check_positive_int('stem_kernel', stem_kernel) % 2 == 0:
            raise ValueError(f'stem_kernel must be odd, got {stem_kernel!r}')
        check_rate('drop_path_rate', drop_path_rate)
        self.widths, self.depths = widths, depths
        self.out_channels = (salience_channels, *widths)
        self.size_divisor = 2**len(widths)

        self.salience = SalienceLayer(
            in_channels, salience_channels, check_inputs=False)
        self.downsamples = nn.ModuleList(
            [nn.Conv3d(in_channels, widths[0], stem_kernel, 2, stem_kernel // 2)])
        self.downsamples.extend(
            nn.Conv3d(c_in, c_out, 3, 2, 1) for c_in, c_out in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(ChannelsFirstLayerNorm(w) for w in widths)
        rates = iter(torch.linspace(0, drop_path_rate, sum(depths)).tolist())
        self.stages = nn.ModuleList()
        for width, depth in zip(widths, depths):
            blocks = [
                DLKBlock(
                    width,
                    drop_path=next(rates),
                    layer_scale_init=layer_scale_init,
                    check_inputs=False) for _ in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))

    def _check_input(self, x) -> None:
        shape = tuple(int(d) for d in x.shape) if isinstance(x, torch.Tensor) else None
        if shape is None or len(shape) != 5:
            got = shape if shape is not None else type(x).__name__
            raise ValueError('DNetEncoder is a 3-D model: x must be an '
                             f'(N, {self.in_channels}, D, H, W) tensor, got {got}')
        if shape[1] != self.in_channels:
            raise ValueError(f'x must have in_channels={self.in_channels} channels '
                             f'(N, C, D, H, W), got shape {shape}')
        sides = shape[2:]
        if any(s % self.size_divisor for s in sides):
            step = self.size_divisor
            fitted = tuple(-(-s // step) * step for s in sides)
            raise ValueError(
                f'x spatial sides (D, H, W) must be multiples of size_divisor='
                f'{self.size_divisor}, got shape {shape}; pad to (D, H, W) = {fitted}')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self._check_input(x)
        outs = [self.salience(x)]
        for downsample, norm, stage in zip(self.downsamples, self.norms, self.stages):
            x = stage(norm(downsample(x)))
            outs.append(x)
        return tuple(outs)
