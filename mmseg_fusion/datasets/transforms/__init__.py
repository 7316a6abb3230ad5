from .binarize_seg_map import BinarizeSegMap

__all__ = ['BinarizeSegMap']
