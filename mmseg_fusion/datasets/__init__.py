from .polyp import PolypDataset
from .transforms import BinarizeSegMap

__all__ = ['PolypDataset', 'BinarizeSegMap']
