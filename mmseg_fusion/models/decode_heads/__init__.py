from .dff3d_head import DFF3DHead
from .mca_head import MCAHead
from .unet_head import UNetHead
from .volume_decode_head import VolumeDecodeHead, deep_supervision_weights

__all__ = [
    'DFF3DHead', 'MCAHead', 'UNetHead', 'VolumeDecodeHead', 'deep_supervision_weights'
]
