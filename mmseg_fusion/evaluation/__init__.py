"""Medical segmentation evaluation: mask scores (:mod:`.functional`) and the metrics
built on them, registered in ``mmseg.registry.METRICS``."""
from .functional import (dice_score, hd95, hd95_from_distances, iou_score,
                         mean_skip_nan, normalized_surface_dice, nsd_from_distances,
                         precision_recall, surface_distances)
from .metrics import MedicalMetric, Volume3DMetric, VolumeMetric

__all__ = [
    'dice_score', 'iou_score', 'precision_recall', 'hd95', 'mean_skip_nan',
    'surface_distances', 'hd95_from_distances', 'normalized_surface_dice',
    'nsd_from_distances', 'MedicalMetric', 'VolumeMetric', 'Volume3DMetric'
]
