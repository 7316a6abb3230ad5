from .mca_head import MCAHead
from .unet_head import UNetHead

__all__ = ['MCAHead', 'UNetHead']
