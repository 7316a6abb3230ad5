"""Medical segmentation metrics, registered in ``mmseg.registry.METRICS``."""
from .medical_metric import MedicalMetric
from .volume3d_metric import Volume3DMetric
from .volume_metric import VolumeMetric

__all__ = ['MedicalMetric', 'VolumeMetric', 'Volume3DMetric']
