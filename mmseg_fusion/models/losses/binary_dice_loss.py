"""Dice loss for one-channel sigmoid heads (binary segmentation)."""
import torch
from mmseg.models.losses import DiceLoss
from mmseg.registry import MODELS


@MODELS.register_module()
class BinaryDiceLoss(DiceLoss):
    """mmseg's ``DiceLoss`` for a decode head with ``out_channels=1``.

    From "V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
    Segmentation" (Milletari et al., 2016), as mmseg implements it. mmseg 1.2.2
    one-hot encodes the label for the prediction's channels, and for one channel that
    encoding is ``label == 0``: the loss rewards predicting the background, so a binary
    model trained with it learns the inverted mask. This loss scores the foreground,
    ``label == 1`` (ignored pixels, ``ignore_index``, count as background, as in mmseg's
    multi-class encoding); everything else is mmseg's ``DiceLoss``. For multi-class
    heads use mmseg's ``DiceLoss`` (or ``TverskyLoss``) directly.

    Args:
        use_sigmoid (bool): apply a sigmoid to the logits. Default: True.
        **kwargs: the other arguments of mmseg's ``DiceLoss`` (activate, reduction,
            naive_dice, loss_weight, ignore_index, eps, loss_name).

    Shape:
        - pred: (N, 1, H, W) logits.
        - target: (N, H, W) labels in {0, 1} (or ``ignore_index``).
        - Output: scalar (reduction 'mean' or 'sum') or (N, ) ('none').
    """

    def __init__(self, use_sigmoid: bool = True, **kwargs) -> None:
        super().__init__(use_sigmoid=use_sigmoid, **kwargs)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, *args, **kwargs):
        if pred.dim() < 2 or pred.shape[1] != 1:
            raise ValueError(
                'BinaryDiceLoss needs a one-channel prediction (N, 1, ...), got '
                f"{tuple(pred.shape)}; use mmseg's DiceLoss for more channels")
        if target.shape != pred.shape:
            target = (target == 1).unsqueeze(1).to(pred.dtype)
        return super().forward(pred, target, *args, **kwargs)
