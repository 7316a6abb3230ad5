from .dnet_encoder import DNetEncoder
from .dual_branch_backbone import DualBranchBackbone
from .unet_encoder import UNetEncoder

__all__ = ['DNetEncoder', 'DualBranchBackbone', 'UNetEncoder']
