from .stage_refine_neck import StageRefineNeck

__all__ = ['StageRefineNeck']
