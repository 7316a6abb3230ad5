from .dca_neck import DCANeck
from .hff_neck import HFFNeck
from .stage_refine_neck import StageRefineNeck

__all__ = ['DCANeck', 'HFFNeck', 'StageRefineNeck']
