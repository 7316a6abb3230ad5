from .dual_branch_backbone import DualBranchBackbone
from .unet_encoder import UNetEncoder

__all__ = ['DualBranchBackbone', 'UNetEncoder']
