from .binarize_seg_map import BinarizeSegMap
from .cached_pipeline import CachedPipeline
from .load_volume import LoadVolumeFromFile
from .monai_transform import MONAITransform
from .pack_volume_inputs import PackVolumeInputs

__all__ = [
    'BinarizeSegMap', 'LoadVolumeFromFile', 'MONAITransform', 'CachedPipeline',
    'PackVolumeInputs'
]
