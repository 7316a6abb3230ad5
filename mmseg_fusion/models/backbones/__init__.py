from .dnet_encoder import DNetEncoder
from .dual_branch_backbone import DualBranchBackbone
from .monai_backbone import MONAIBackbone
from .unet3d_encoder import UNet3DEncoder
from .unet_encoder import UNetEncoder

__all__ = [
    'DNetEncoder', 'DualBranchBackbone', 'MONAIBackbone', 'UNet3DEncoder', 'UNetEncoder'
]
