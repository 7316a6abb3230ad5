from .binary_dice_loss import BinaryDiceLoss
from .monai_loss import MONAILoss

__all__ = ['BinaryDiceLoss', 'MONAILoss']
