"""A backbone of two parallel branches, a CNN and a transformer, over the same image."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import check_block_cfg, check_feature_map, check_positive_int


@MODELS.register_module()
class DualBranchBackbone(BaseModule):
    """Runs a CNN (local) branch and a transformer (global) branch on the same image
    and returns both branches' stages, for a fusion neck such as ``HFFNeck``.

    From the dual-branch encoder of "HiFuse: Hierarchical multi-scale feature fusion
    network for medical image classification" (2024), which pairs a ConvNeXt and a
    Swin Transformer stage by stage; here each branch is any mmseg backbone config
    (e.g. ``ResNetV1c`` and ``MixVisionTransformer``, or ``SwinTransformer``), built
    through the registry, with its own ``init_cfg`` for pretrained weights. The
    branches must return the same number N of stages, with the same spatial size
    stage by stage (equal strides); channels may differ.

    Output format: one flat tuple of 2N tensors, the N CNN stages (shallowest first)
    followed by the N transformer stages, so stage i's pair is ``(outs[i],
    outs[N + i])``. ``HFFNeck`` reads this format.

    Args:
        cnn (dict): config of the CNN branch; its forward returns N stages.
        transformer (dict): config of the transformer branch; its forward returns N
            stages. When both configs give ``out_indices``, their lengths must be
            equal (checked at construction); the stage counts and sizes actually
            returned are checked at forward.
        in_channels (int): channels of the input image, checked at forward.
        init_cfg (dict | list[dict], optional): mmengine initialization config of this
            wrapper; the branches use their own ``init_cfg``.

    Shape:
        - Input: (N_b, in_channels, H, W).
        - Output: tuple of 2N tensors; ``outs[i]`` is the CNN's stage i (N_b, C_i^cnn,
          H_i, W_i) and ``outs[N + i]`` the transformer's stage i (N_b, C_i^tr, H_i,
          W_i).
    """

    def __init__(self,
                 cnn: dict,
                 transformer: dict,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        check_block_cfg('cnn', cnn)
        check_block_cfg('transformer', transformer)
        cnn_indices = cnn.get('out_indices')
        transformer_indices = transformer.get('out_indices')
        if (isinstance(cnn_indices,
                       (list, tuple)) and isinstance(transformer_indices, (list, tuple))
                and len(cnn_indices) != len(transformer_indices)):
            raise ValueError(
                'cnn and transformer must return the same number of stages, got '
                f'cnn out_indices={tuple(cnn_indices)} and transformer '
                f'out_indices={tuple(transformer_indices)}')
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.cnn = MODELS.build(cnn)
        self.transformer = MODELS.build(transformer)

    @staticmethod
    def _as_stages(name: str, outs) -> Tuple[torch.Tensor, ...]:
        if isinstance(outs, torch.Tensor):
            outs = (outs, )
        if not isinstance(outs, (list, tuple)) or not outs:
            raise ValueError(f'the {name} branch must return a non-empty tuple of '
                             f'stage tensors, got {type(outs).__name__}')
        for i, x in enumerate(outs):
            check_feature_map(f'{name} stage {i}', x)
        return tuple(outs)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_feature_map('x', x, self.in_channels)
        cnn_outs = self._as_stages('cnn', self.cnn(x))
        transformer_outs = self._as_stages('transformer', self.transformer(x))
        if len(cnn_outs) != len(transformer_outs):
            raise ValueError(
                'the branches must return the same number of stages, got '
                f'{len(cnn_outs)} from cnn and {len(transformer_outs)} from '
                'transformer')
        for i, (local, global_) in enumerate(zip(cnn_outs, transformer_outs)):
            if (local.shape[0] != global_.shape[0]
                    or local.shape[2:] != global_.shape[2:]):
                raise ValueError(
                    f'stage {i}: the branches must give one batch and spatial size, '
                    f'got cnn {tuple(local.shape)} and transformer '
                    f'{tuple(global_.shape)} for input {tuple(x.shape)} (do the '
                    'branch strides match?)')
        return cnn_outs + transformer_outs
