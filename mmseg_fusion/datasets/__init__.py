from .amos import AMOSDataset
from .btcv import BTCVDataset
from .medical_volume import MedicalVolumeDataset
from .polyp import PolypDataset
from .synapse import SynapseSliceDataset
from .transforms import (BinarizeSegMap, CachedPipeline, LoadVolumeFromFile,
                         MONAITransform, PackVolumeInputs)

__all__ = [
    'PolypDataset', 'SynapseSliceDataset', 'BinarizeSegMap', 'MedicalVolumeDataset',
    'BTCVDataset', 'AMOSDataset', 'LoadVolumeFromFile', 'MONAITransform',
    'CachedPipeline', 'PackVolumeInputs'
]
