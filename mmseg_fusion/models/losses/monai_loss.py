"""Any MONAI loss as an mmseg loss, taking mmseg's (logits, label map) arguments."""
import inspect

import monai.losses
import torch
import torch.nn as nn
from mmseg.registry import MODELS


def monai_loss_names() -> tuple:
    """The loss classes ``monai.losses`` offers, sorted by name (its lower-case
    aliases such as ``dice_ce`` left out)."""
    return tuple(
        sorted(name for name, value in vars(monai.losses).items() if name[:1].isupper()
               and inspect.isclass(value) and issubclass(value, nn.Module)))


@MODELS.register_module()
class MONAILoss(nn.Module):
    """A loss of ``monai.losses`` built by class name, called as mmseg calls its losses.

    mmseg's losses take logits (N, K, ...) and a label map (N, ...) without a channel
    axis; MONAI's take a target with a channel axis (N, 1, ...) for class ids, or
    (N, K, ...) one-hot. This wrapper adds the channel axis to a label map, ignores the
    keyword arguments mmseg heads pass (``weight``, ``ignore_index``,
    ``avg_factor``) and scales the result by ``loss_weight``. For example nnU-Net's soft
    Dice term (no background, statistics over the whole batch) is::

        dict(type='MONAILoss', loss='DiceLoss', loss_name='loss_dice',
             to_onehot_y=True, softmax=True, include_background=False, batch=True)

    MONAI losses cannot leave voxels out, so a label map must hold class ids in
    [0, K) (in {0, 1} for a one-channel prediction): a voxel at mmseg's
    ``ignore_index`` (255) raises a ValueError instead of silently breaking the one-hot
    encoding.

    Args:
        loss (str): class name in ``monai.losses``, e.g. 'DiceLoss', 'DiceCELoss',
            'TverskyLoss', 'GeneralizedDiceLoss'. Default: 'DiceLoss'.
        loss_name (str): the key of this loss in the loss dict; mmseg backpropagates
            only keys starting with 'loss_'. Default: 'loss_dice'.
        loss_weight (float): factor applied to the loss. Default: 1.0.
        **kwargs: arguments of the MONAI class (``to_onehot_y``, ``softmax``,
            ``include_background``, ``batch``, ``smooth_nr``, ...).

    Shape:
        - pred: (N, K, *spatial) logits, e.g. (N, K, D, H, W).
        - target: (N, *spatial) integer class ids, or (N, 1, *spatial) / (N, K,
          *spatial) as MONAI takes them.
        - Output: what the MONAI loss returns for its ``reduction`` (a scalar for
          'mean'), times ``loss_weight``.
    """

    def __init__(self,
                 loss: str = 'DiceLoss',
                 loss_name: str = 'loss_dice',
                 loss_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__()
        names = monai_loss_names()
        if loss not in names:
            raise ValueError(f'loss must name a class of monai.losses, one of {names}, '
                             f'got {loss!r}')
        if not isinstance(loss_name, str) or not loss_name:
            raise ValueError(f'loss_name must be a non-empty str, got {loss_name!r}')
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
            raise ValueError(f'loss_weight must be a number, got {loss_weight!r}')
        self.loss = getattr(monai.losses, loss)(**kwargs)
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                **kwargs) -> torch.Tensor:
        """Loss of ``pred`` against ``target``; ``kwargs`` (mmseg's ``weight``,
        ``ignore_index``, ``avg_factor``) are accepted and not used."""
        if not isinstance(pred, torch.Tensor) or pred.dim() < 3:
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred)
            raise ValueError(f'pred must be (N, K, *spatial) logits, got {got}')
        target_shape = tuple(target.shape)
        if target.dim() == pred.dim() - 1:
            num_labels = max(pred.shape[1], 2)
            if target.numel() and (target.min() < 0 or target.max() >= num_labels):
                found = sorted(set(target.unique().tolist()) - set(range(num_labels)))
                raise ValueError(
                    f'target must hold class ids in [0, {num_labels}) for a prediction '
                    f'of {pred.shape[1]} channels (MONAI losses cannot ignore voxels, '
                    f'ignore_index={kwargs.get("ignore_index")}), got ids {found}')
            target = target.unsqueeze(1)
        if target.dim() != pred.dim() or target.shape[0] != pred.shape[0] or \
                target.shape[2:] != pred.shape[2:]:
            raise ValueError('target must be (N, *spatial) or (N, C, *spatial) for '
                             f'pred {tuple(pred.shape)}, got {target_shape}')
        return self.loss_weight * self.loss(pred, target)

    @property
    def loss_name(self) -> str:
        """The key of this loss in the loss dict (mmseg convention)."""
        return self._loss_name
