"""Medical segmentation evaluation: mask scores (:mod:`.functional`) and the metrics
built on them, registered in ``mmseg.registry.METRICS``."""
from .functional import (dice_score, hd95, iou_score, mean_skip_nan,
                         precision_recall)
from .metrics import MedicalMetric, VolumeMetric

__all__ = [
    'dice_score', 'iou_score', 'precision_recall', 'hd95', 'mean_skip_nan',
    'MedicalMetric', 'VolumeMetric'
]
