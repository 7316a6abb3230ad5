"""The base of every 3-D decode head: mmseg's ``BaseDecodeHead`` contract for volumes,
with nnU-Net's deep supervision."""
from abc import ABCMeta, abstractmethod
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.losses import accuracy
from mmseg.registry import MODELS

from ...utils import (check_bool, check_feature_map, check_int, check_positive_int,
                      check_positive_ints)

# nnU-Net's loss: soft Dice without the background, over the whole batch, plus
# cross-entropy averaged over the voxels not ignored (PyTorch's mean), both weighted 1.
DEFAULT_LOSS_DECODE = (
    dict(
        type='MONAILoss',
        loss='DiceLoss',
        loss_name='loss_dice',
        to_onehot_y=True,
        softmax=True,
        include_background=False,
        batch=True),
    dict(
        type='CrossEntropyLoss',
        loss_name='loss_ce',
        loss_weight=1.0,
        avg_non_ignore=True),
)


def deep_supervision_weights(num_levels: int) -> List[float]:
    """nnU-Net's weights of the deep-supervision outputs, highest resolution first.

    Level ``i`` gets ``1 / 2**i``, the lowest resolution gets 0 (when there are at
    least two levels), and the weights are normalised to sum to 1. Five levels give
    ``[8, 4, 2, 1, 0] / 15``.

    Args:
        num_levels (int): number of outputs.

    Returns:
        list[float]: one weight per output.
    """
    check_positive_int('num_levels', num_levels)
    weights = [1.0 / 2**i for i in range(num_levels)]
    if num_levels > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


class VolumeDecodeHead(BaseModule, metaclass=ABCMeta):
    """Base class of every 3-D decode head: mmseg's ``BaseDecodeHead`` contract on
    (N, C, D, H, W) features, with the loss and deep supervision of nnU-Net.

    mmseg's ``BaseDecodeHead`` is 2-D (``nn.Conv2d`` classifier, bilinear resizing,
    ``PixelData`` labels). This base keeps its interface, so a segmentor calls a 3-D
    head as mmseg's ``EncoderDecoder`` calls a 2-D one:

    - ``forward(inputs)``: the main logits (N, K, D, H, W); in training with
      ``deep_supervision`` a list of logits, highest resolution first.
    - ``loss(inputs, batch_data_samples, train_cfg) -> dict``: reads each
      ``data_sample.gt_sem_seg.data`` (1, D, H, W) integer label. With deep
      supervision, each output's label is the label resized to that output's size by
      nearest neighbour ('nearest-exact', as nnU-Net v2 downsamples its targets), and
      the output's losses are weighted by :func:`deep_supervision_weights` (1/2^i, the
      lowest resolution 0, normalised). The zero-weighted output stays in the graph,
      so every parameter gets a gradient and distributed training needs no
      ``find_unused_parameters`` (nnU-Net uses 1e-6 instead of 0 under DDP for the same
      reason). Losses are summed per ``loss_name`` over levels (mmseg's rule for
      several losses sharing a name); ``acc_seg`` is the main output's voxel accuracy.
      If the main logits are not at the label's size they are resized to it
      trilinearly first, as mmseg resizes 2-D logits to the label.
    - ``predict(inputs, batch_img_metas, test_cfg) -> Tensor``: the main logits (N, K,
      D, H, W), resized trilinearly to ``batch_img_metas[0]['img_shape']`` where that
      differs (the segmentor passes the shape of the window it predicts).

    Subclasses build their layers and implement ``_decode(inputs, with_aux)``; the base
    checks the inputs (count, rank, channels) before calling it.

    Args:
        in_channels (int | Sequence[int]): channels of each backbone output the head
            takes, in the backbone's order (highest resolution first).
        num_classes (int): number of classes K, background included (at least 2;
            a binary task has 2).
        loss_decode (dict | Sequence[dict], optional): config(s) of losses registered in
            MODELS, each called as ``loss(logits (N, K, D, H, W), label (N, D, H, W)
            long, ignore_index=...)`` and exposing ``loss_name``. None: nnU-Net's Dice
            (:class:`MONAILoss` 'DiceLoss', no background, batch Dice) plus mmseg's
            ``CrossEntropyLoss`` (``avg_non_ignore=True``).
        deep_supervision (bool): return and supervise the auxiliary outputs in
            training. Default: False.
        ignore_index (int): label passed to the losses and the accuracy as ignored
            (mmseg's ``CrossEntropyLoss`` honours it; ``MONAILoss`` refuses labels
            outside [0, K)). Default: 255.
        init_cfg (dict | list[dict], optional): mmengine initialization config.

    Shape:
        - inputs: sequence of ``len(in_channels)`` tensors (N, in_channels[i], D_i, H_i,
          W_i).
        - forward output: (N, K, D_0, H_0, W_0), or a list of (N, K, D_l, H_l, W_l)
          highest resolution first in training with deep supervision.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 num_classes: int,
                 *,
                 loss_decode: Optional[Union[dict, Sequence[dict]]] = None,
                 deep_supervision: bool = False,
                 ignore_index: int = 255,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        if isinstance(in_channels, int) and not isinstance(in_channels, bool):
            in_channels = (in_channels, )
        in_channels = check_positive_ints('in_channels', in_channels)
        check_positive_int('num_classes', num_classes)
        if num_classes < 2:
            raise ValueError('num_classes must be at least 2 (background included; a '
                             f'binary task has 2), got {num_classes!r}')
        check_bool('deep_supervision', deep_supervision)
        check_int('ignore_index', ignore_index)
        if loss_decode is None:
            loss_decode = DEFAULT_LOSS_DECODE
        if isinstance(loss_decode, dict):
            loss_decode = (loss_decode, )
        if not isinstance(loss_decode, (list, tuple)) or not loss_decode or not all(
                isinstance(cfg, dict) for cfg in loss_decode):
            raise ValueError('loss_decode must be a loss config dict or a non-empty '
                             f'list of them, got {loss_decode!r}')
        self.in_channels = tuple(in_channels)
        self.num_classes = num_classes
        self.out_channels = num_classes
        self.deep_supervision = deep_supervision
        self.ignore_index = ignore_index
        self.loss_decode = nn.ModuleList(MODELS.build(cfg) for cfg in loss_decode)

    @abstractmethod
    def _decode(self, inputs: Sequence[torch.Tensor],
                with_aux: bool) -> List[torch.Tensor]:
        """Decode checked ``inputs`` into logits.

        Args:
            inputs (Sequence[Tensor]): the backbone outputs, checked.
            with_aux (bool): also return the auxiliary outputs.

        Returns:
            list[Tensor]: ``[main]``, or with ``with_aux`` ``[main, aux_1, ...]``,
            highest resolution first.
        """

    def _check_inputs(self, inputs: Sequence[torch.Tensor]) -> None:
        """Check the number of inputs, their rank (5-D) and their channels."""
        if not isinstance(inputs,
                          (list, tuple)) or len(inputs) != len(self.in_channels):
            got = len(inputs) if isinstance(inputs,
                                            (list, tuple)) else type(inputs).__name__
            raise ValueError(
                f'inputs must be a list or tuple of {len(self.in_channels)} feature '
                f'maps (one per in_channels={self.in_channels}), got {got}')
        for index, (x, channels) in enumerate(zip(inputs, self.in_channels)):
            check_feature_map(f'inputs[{index}]', x, channels, ndim=5)

    @staticmethod
    def _check_halving(inputs: Sequence[torch.Tensor]) -> None:
        """Check that each input is exactly half the size of the one before it, as
        stride-2 transposed convolutions need."""
        for index in range(1, len(inputs)):
            upper = tuple(int(s) for s in inputs[index - 1].shape[2:])
            lower = tuple(int(s) for s in inputs[index].shape[2:])
            if upper != tuple(2 * s for s in lower):
                raise ValueError(
                    f'inputs[{index}] must have half the spatial size of '
                    f'inputs[{index - 1}] {upper}, got {lower} (is the patch divisible '
                    "by the backbone's size_divisor?)")

    def forward(
            self,
            inputs: Sequence[torch.Tensor]) -> Union[torch.Tensor, List[torch.Tensor]]:
        """Main logits, or in training with deep supervision the list of all outputs
        (highest resolution first)."""
        self._check_inputs(inputs)
        with_aux = self.training and self.deep_supervision
        logits = self._decode(inputs, with_aux)
        return logits if with_aux else logits[0]

    def loss(self,
             inputs: Sequence[torch.Tensor],
             batch_data_samples: list,
             train_cfg: Optional[dict] = None) -> dict:
        """Losses of the head on a batch.

        Args:
            inputs (Sequence[Tensor]): the backbone outputs.
            batch_data_samples (list[VolumeSegDataSample]): samples with
                ``gt_sem_seg.data`` (1, D, H, W) integer labels.
            train_cfg (dict, optional): unused, kept for mmseg's signature.

        Returns:
            dict[str, Tensor]: one entry per ``loss_name`` and ``acc_seg``.
        """
        return self.loss_by_feat(self.forward(inputs), batch_data_samples)

    def loss_by_feat(self, seg_logits: Union[torch.Tensor, Sequence[torch.Tensor]],
                     batch_data_samples: list) -> dict:
        """Losses of logits (one tensor, or deep-supervision outputs highest
        resolution first) against the samples' labels."""
        levels = list(seg_logits) if isinstance(seg_logits,
                                                (list, tuple)) else [seg_logits]
        label = self._stack_batch_gt(batch_data_samples)
        if levels[0].shape[2:] != label.shape[2:]:
            levels[0] = F.interpolate(
                levels[0], size=label.shape[2:], mode='trilinear', align_corners=False)
        losses = {}
        for weight, logits in zip(deep_supervision_weights(len(levels)), levels):
            target = label
            if logits.shape[2:] != label.shape[2:]:
                target = F.interpolate(
                    label.float(), size=logits.shape[2:],
                    mode='nearest-exact').to(label.dtype)
            target = target.squeeze(1)
            for loss_decode in self.loss_decode:
                value = weight * loss_decode(
                    logits, target, ignore_index=self.ignore_index)
                name = loss_decode.loss_name
                losses[name] = losses[name] + value if name in losses else value
        losses['acc_seg'] = accuracy(
            levels[0], label.squeeze(1), ignore_index=self.ignore_index)
        return losses

    @staticmethod
    def _stack_batch_gt(batch_data_samples: list) -> torch.Tensor:
        """Stack the samples' (1, D, H, W) labels into (N, 1, D, H, W) int64."""
        labels = [sample.gt_sem_seg.data for sample in batch_data_samples]
        shapes = {tuple(label.shape) for label in labels}
        if not labels or len(shapes) != 1 or len(next(iter(shapes))) != 4:
            raise ValueError('batch_data_samples must hold gt_sem_seg.data labels of '
                             f'one (1, D, H, W) shape, got shapes {sorted(shapes)}')
        return torch.stack([torch.as_tensor(label) for label in labels]).long()

    def predict(self,
                inputs: Sequence[torch.Tensor],
                batch_img_metas: List[dict],
                test_cfg: Optional[dict] = None) -> torch.Tensor:
        """Main logits at the size of the predicted volume or window.

        Args:
            inputs (Sequence[Tensor]): the backbone outputs.
            batch_img_metas (list[dict]): metainfo of each sample; the first one's
                ``img_shape`` (D, H, W), when given, is the output size.
            test_cfg (dict, optional): unused, kept for mmseg's signature.

        Returns:
            Tensor: (N, K, D, H, W) logits.
        """
        self._check_inputs(inputs)
        return self.predict_by_feat(self._decode(inputs, False)[0], batch_img_metas)

    def predict_by_feat(self, seg_logits: torch.Tensor,
                        batch_img_metas: List[dict]) -> torch.Tensor:
        """Resize (N, K, D, H, W) logits trilinearly to the first meta's
        ``img_shape`` where that differs."""
        size = batch_img_metas[0].get('img_shape') if batch_img_metas else None
        if size is None:
            return seg_logits
        size = tuple(int(s) for s in size)
        if len(size) != 3:
            raise ValueError("batch_img_metas[0]['img_shape'] must be (D, H, W), got "
                             f'{size}')
        if size != tuple(seg_logits.shape[2:]):
            seg_logits = F.interpolate(
                seg_logits, size=size, mode='trilinear', align_corners=False)
        return seg_logits
