"""Data structures of the volumetric (3-D) path: mmengine's ``PixelData`` holds 2-D maps
only, so volumes travel in :class:`VolumeData` inside a :class:`VolumeSegDataSample`."""
from .volume_data import VolumeData
from .volume_seg_data_sample import VolumeSegDataSample

__all__ = ['VolumeData', 'VolumeSegDataSample']
