"""A neck that fuses the paired stages of a CNN and a transformer branch with HFF."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import check_feature_map, check_positive_int, check_positive_ints
from ..layers.hff_block import HFFBlock


@MODELS.register_module()
class HFFNeck(BaseModule):
    """Hierarchical feature fusion of a CNN and a transformer branch, stage by stage,
    each fused stage feeding the next; outputs the fused pyramid for a decode head.

    From "HiFuse: Hierarchical multi-scale feature fusion network for medical image
    classification" (2024). HiFuse classifies from its last fused stage; here every
    fused stage is returned, so any mmseg decode head (``UPerHead``, ``FPNHead``,
    ``MCAHead``, ...) can segment from the pyramid. Stage i's :class:`HFFBlock` fuses
    the CNN stage (local) with the transformer stage (global); for i > 0 it also takes
    the fused output of stage i - 1 (higher resolution, average-pooled to stage i's
    size) as ``previous``, as HiFuse chains its blocks. Stage 0 has no previous input.
    As HiFuse (``ch_int = ch_out``), each block's fused projection has the stage's
    ``out_channels``; a block with a previous input adds it, which needs that too.
    The neck checks its inputs once; its blocks are built with ``check_inputs=False``.

    Input format: the output of ``DualBranchBackbone``, a flat tuple of 2N tensors,
    the N CNN stages then the N transformer stages.

    Args:
        local_channels (Sequence[int]): channels of the N CNN stages.
        global_channels (Sequence[int]): channels of the N transformer stages.
        out_channels (Sequence[int]): channels of the N fused stages.
        reduction (int): channel-attention MLP reduction of every block; must be <=
            every ``global_channels`` entry. Default: 16 (HiFuse).
        drop_path_rate (float | Sequence[float]): stochastic depth rate of every
            block, or one per stage, each in [0, 1). Default: 0.
        norm_cfg (dict, optional): norm of every block (mmcv config, e.g.
            ``dict(type='SyncBN')`` for multi-GPU training); see :class:`HFFBlock`.
            Default: ``dict(type='BN')`` (HiFuse).
        act_cfg (dict, optional): activation of every block's fused projection and
            IRMLP. Default: ``dict(type='GELU')`` (HiFuse).
        conv_act_cfg (dict, optional): activation of every block's channel-attention
            MLP and previous-stage projection. Default: ``dict(type='ReLU')`` (HiFuse).
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Shape:
        - Input: sequence of 2N tensors; ``inputs[i]`` is (B, local_channels[i], H_i,
          W_i) and ``inputs[N + i]`` is (B, global_channels[i], H_i, W_i), any H_i,
          W_i with H_i <= H_{i-1} and W_i <= W_{i-1}.
        - Output: tuple of N tensors, stage i (B, out_channels[i], H_i, W_i).
    """

    def __init__(self,
                 local_channels: Sequence[int],
                 global_channels: Sequence[int],
                 out_channels: Sequence[int],
                 reduction: int = 16,
                 drop_path_rate: Union[float, Sequence[float]] = 0.0,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='GELU'),
                 conv_act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        local_channels = check_positive_ints('local_channels', local_channels)
        num_stages = len(local_channels)
        global_channels = check_positive_ints(
            'global_channels', global_channels, num_stages, what='one per stage')
        out_channels = check_positive_ints(
            'out_channels', out_channels, num_stages, what='one per stage')
        check_positive_int('reduction', reduction)
        if reduction > min(global_channels):
            raise ValueError(f'reduction must be <= min(global_channels)='
                             f'{min(global_channels)}, got {reduction}')
        if isinstance(drop_path_rate, (list, tuple)):
            if len(drop_path_rate) != num_stages:
                raise ValueError('drop_path_rate must be a float or have one entry '
                                 f'per stage ({num_stages}), got {drop_path_rate!r}')
            drop_path_rates = tuple(drop_path_rate)
        else:
            drop_path_rates = (drop_path_rate, ) * num_stages
        self.local_channels = local_channels
        self.global_channels = global_channels
        self.out_channels = out_channels
        self.blocks = nn.ModuleList(
            HFFBlock(
                local_channels=local_channels[i],
                global_channels=global_channels[i],
                inter_channels=out_channels[i],
                out_channels=out_channels[i],
                reduction=reduction,
                drop_path_rate=drop_path_rates[i],
                previous_channels=out_channels[i - 1] if i > 0 else None,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                conv_act_cfg=conv_act_cfg,
                check_inputs=False) for i in range(num_stages))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        num_stages = len(self.blocks)
        if isinstance(inputs, torch.Tensor) or len(inputs) != 2 * num_stages:
            got = (
                tuple(inputs.shape)
                if isinstance(inputs, torch.Tensor) else f'{len(inputs)} tensors')
            raise ValueError(
                f'inputs must be the {num_stages} CNN stages then the {num_stages} '
                f'transformer stages ({2 * num_stages} tensors), got {got}')
        for i in range(num_stages):
            local_name = f'inputs[{i}] (cnn stage {i})'
            global_name = f'inputs[{num_stages + i}] (transformer stage {i})'
            local, global_ = inputs[i], inputs[num_stages + i]
            check_feature_map(local_name, local, self.local_channels[i])
            check_feature_map(global_name, global_, self.global_channels[i])
            local_shape = tuple(int(d) for d in local.shape)
            global_shape = tuple(int(d) for d in global_.shape)
            if global_shape[:1] + global_shape[2:] != local_shape[:1] + local_shape[2:]:
                raise ValueError(f'{global_name} must have the batch size and spatial '
                                 f'size of {local_name} {local_shape}, got '
                                 f'{global_shape}')
            if i > 0:
                upper = tuple(int(d) for d in inputs[i - 1].shape)
                if local_shape[0] != upper[0] or any(
                        s > u for s, u in zip(local_shape[2:], upper[2:])):
                    raise ValueError(
                        f'{local_name} must have the batch size of inputs[{i - 1}] '
                        f'{upper} and no larger spatial size (stage {i - 1} is '
                        f'pooled to it), got {local_shape}')
        outs = []
        previous = None
        for i, block in enumerate(self.blocks):
            previous = block(inputs[i], inputs[num_stages + i], previous)
            outs.append(previous)
        return tuple(outs)
