"""A neck that passes selected encoder stages through dual cross-attention (DCA)."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import (check_feature_map, check_positive_ints, check_same_batch_size,
                      check_stage_indices)
from ..layers.dual_cross_attention import DualCrossAttention


@MODELS.register_module()
class DCANeck(BaseModule):
    """Dual cross-attention over the selected encoder stages; the others pass through.

    From "Dual Cross-Attention for Medical Image Segmentation" (Ates et al., 2023).
    The paper's U-Net passes its four skip connections (every encoder stage but the
    bottleneck) through one :class:`DualCrossAttention` before the decoder uses them;
    this neck does that between any backbone that returns a tuple of stages and any
    decode head, so a U-Net and a U-Net + DCA differ by one ``neck=`` entry. The
    selected stages are refined jointly (each attends to all selected stages), the
    others are returned unchanged. The neck checks its inputs once; its DCA is built
    with ``check_inputs=False``.

    Args:
        in_channels (Sequence[int]): channels of every backbone stage.
        in_index (Sequence[int], optional): indices of the stages DCA refines, at least
            one, distinct, each in ``[0, len(in_channels))``, in increasing order. None
            selects every stage but the last (deepest): the paper's setting.
        patch_size (int): side of the token grid each selected stage is pooled to (the
            paper: 28 at 224 px, i.e. ``input_size // 8``).
        channel_heads (Sequence[int], optional): channel-attention heads per selected
            stage. None: all 1 (the paper).
        spatial_heads (Sequence[int], optional): spatial-attention heads per selected
            stage. None: all 4 (the paper).
        num_blocks (int): number of channel-spatial attention blocks (the paper: 1).
        channel_attention (bool): whether to apply channel cross-attention.
        spatial_attention (bool): whether to apply spatial cross-attention.
        norm_cfg (dict, optional): norm after each refined stage's output convolution
            (mmcv config, e.g. ``dict(type='SyncBN')`` for multi-GPU training); None
            for none. Default: ``dict(type='BN')`` (the paper).
        act_cfg (dict, optional): activation after that norm; None for none.
            Default: ``dict(type='ReLU')`` (the paper).
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Shape:
        - Input: sequence of ``len(in_channels)`` tensors, stage i being
          (N, in_channels[i], H_i, W_i), any sizes (odd and non-square included).
        - Output: tuple of tensors of the inputs' shapes.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 in_index: Optional[Sequence[int]] = None,
                 patch_size: int = 28,
                 channel_heads: Optional[Sequence[int]] = None,
                 spatial_heads: Optional[Sequence[int]] = None,
                 num_blocks: int = 1,
                 channel_attention: bool = True,
                 spatial_attention: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        check_positive_ints('in_channels', in_channels, what='channels per stage')
        num_stages = len(in_channels)
        if in_index is None:
            in_index = tuple(range(max(num_stages - 1, 1)))
        check_stage_indices('in_index', in_index, num_stages, increasing=True)
        self.in_channels = tuple(in_channels)
        self.in_index = tuple(in_index)
        self.dca = DualCrossAttention(
            in_channels=[in_channels[i] for i in self.in_index],
            patch_size=patch_size,
            channel_heads=channel_heads,
            spatial_heads=spatial_heads,
            num_blocks=num_blocks,
            channel_attention=channel_attention,
            spatial_attention=spatial_attention,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            check_inputs=False)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if isinstance(inputs, torch.Tensor) or len(inputs) != len(self.in_channels):
            got = (
                tuple(inputs.shape)
                if isinstance(inputs, torch.Tensor) else f'{len(inputs)} stages')
            raise ValueError(f'inputs must be a sequence of {len(self.in_channels)} '
                             f'stages with channels {self.in_channels}, got {got}')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            check_feature_map(f'inputs[{i}]', x, c)
        check_same_batch_size([f'inputs[{i}]' for i in self.in_index],
                              [inputs[i] for i in self.in_index])
        refined = self.dca([inputs[i] for i in self.in_index])
        outs = list(inputs)
        for i, x in zip(self.in_index, refined):
            outs[i] = x
        return tuple(outs)
