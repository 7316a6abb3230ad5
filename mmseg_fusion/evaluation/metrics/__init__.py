"""Medical segmentation metrics, registered in ``mmseg.registry.METRICS``."""
from .medical_metric import MedicalMetric
from .volume_metric import VolumeMetric

__all__ = ['MedicalMetric', 'VolumeMetric']
