from .dff3d_head import DFF3DHead
from .mca_head import MCAHead
from .unet3d_head import UNet3DHead
from .unet_head import UNetHead
from .volume_decode_head import VolumeDecodeHead, deep_supervision_weights
from .volume_linear_head import VolumeLinearHead

__all__ = [
    'DFF3DHead', 'MCAHead', 'UNet3DHead', 'UNetHead', 'VolumeDecodeHead',
    'VolumeLinearHead', 'deep_supervision_weights'
]
