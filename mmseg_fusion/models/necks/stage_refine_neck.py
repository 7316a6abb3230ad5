"""A neck that refines selected backbone stages with a pluggable single-input block."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import (check_block_cfg, check_bool, check_feature_map,
                      check_positive_ints, check_same_shape, check_stage_indices)
from ..layers.nd_utils import check_block_spatial_dims, owned_block_cfg


@MODELS.register_module()
class StageRefineNeck(BaseModule):
    """Applies one single-input block per selected stage; other stages pass through.

    A plug-in point for the attention and feature-extraction blocks of this package
    (``SAFM``, ``MultiFeatureExtraction``, ``OSRAttention``,
    ``JointChannelSpatialAttention``, ...) between any backbone that returns a tuple of
    stages and any decode head. Each selected stage ``i`` gets its own block, built from
    ``block_cfg`` with ``channels=in_channels[i]``. A block that returns a tuple (or
    list) of same-shaped tensors, such as ``JointChannelSpatialAttention``'s
    ``(channel_out, spatial_out)``, contributes their sum. Every block output must have
    its input's shape. The neck is 2-D: a block config with ``spatial_dims`` other
    than 2 is refused when the neck is built. The neck checks its inputs once and
    builds a block that takes ``check_inputs`` with ``check_inputs=False`` (overriding
    any value in ``block_cfg``).

    Args:
        in_channels (Sequence[int]): channels of each backbone stage.
        block_cfg (dict): config of the 2-D refinement block, without ``channels``,
            e.g. ``dict(type='SAFM')`` or ``dict(type='OSRAttention', num_heads=4)``.
        stages (Sequence[int], optional): indices of the stages to refine, each in
            ``[0, len(in_channels))``, no repeats. None refines every stage.
        residual (bool): add each refined stage's input back to the block output.
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Shape:
        - Input: sequence of ``len(in_channels)`` tensors, stage ``i`` being
          (N, in_channels[i], H_i, W_i).
        - Output: tuple of tensors of the same shapes.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 block_cfg: dict,
                 stages: Optional[Sequence[int]] = None,
                 residual: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        check_positive_ints('in_channels', in_channels, what='channels per stage')
        check_block_cfg('block_cfg', block_cfg, owner='StageRefineNeck')
        check_block_spatial_dims('block_cfg', block_cfg, owner='StageRefineNeck')
        num_stages = len(in_channels)
        if stages is None:
            stages = tuple(range(num_stages))
        check_stage_indices('stages', stages, num_stages)
        check_bool('residual', residual)
        self.in_channels = tuple(in_channels)
        self.stages = tuple(stages)
        self.residual = residual
        self.blocks = nn.ModuleDict({
            str(i):
            MODELS.build(owned_block_cfg(block_cfg, channels=in_channels[i]))
            for i in self.stages
        })
        for block in self.blocks.values():
            check_block_spatial_dims(
                'block_cfg', block_cfg, owner='StageRefineNeck', block=block)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'inputs must hold {len(self.in_channels)} stages, got '
                             f'{len(inputs)}')
        outs = list(inputs)
        for i in self.stages:
            x = inputs[i]
            check_feature_map(f'inputs[{i}]', x, self.in_channels[i])
            refined = self.blocks[str(i)](x)
            if isinstance(refined, (tuple, list)):
                check_same_shape([f'inputs[{i}]'] +
                                 [f'block output {k}' for k in range(len(refined))],
                                 [x, *refined])
                refined = sum(refined)
            else:
                check_same_shape([f'inputs[{i}]', 'block output'], [x, refined])
            outs[i] = refined + x if self.residual else refined
        return tuple(outs)
