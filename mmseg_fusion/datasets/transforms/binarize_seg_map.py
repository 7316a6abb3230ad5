"""Threshold a 0/255 mask (e.g. a lossy JPEG polyp mask) to the labels {0, 1}."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BinarizeSegMap(BaseTransform):
    """Turn a 0/255 greyscale mask into labels {0, 1}: 1 where ``value >= threshold``.

    For pipelines that read the raw JPEG masks of Kvasir-SEG or CVC-ClinicDB
    ("Kvasir-SEG: A Segmented Polyp Dataset", 2020), whose values spread around 0 and
    255 because JPEG is lossy. Put it right after ``LoadAnnotations``. Masks already
    in {0, 1} (the converters' output) must not go through it: every value would fall
    below the threshold.

    Required Keys: gt_seg_map. Modified Keys: gt_seg_map.

    Args:
        threshold (int): smallest value counted as foreground, 1 to 255. Default: 128.

    Shape:
        gt_seg_map: (H, W) or (H, W, C) of any integer dtype (channels are averaged)
        -> (H, W) uint8 with values in {0, 1}.
    """

    def __init__(self, threshold: int = 128) -> None:
        if isinstance(
                threshold,
                bool) or not isinstance(threshold, int) or not (1 <= threshold <= 255):
            raise ValueError(
                f'threshold must be an int from 1 to 255, got {threshold!r}')
        self.threshold = threshold

    def transform(self, results: dict) -> dict:
        seg_map = np.asarray(results['gt_seg_map'])
        if seg_map.ndim == 3:
            seg_map = seg_map.mean(axis=2)
        elif seg_map.ndim != 2:
            raise ValueError(f'gt_seg_map must be (H, W) or (H, W, C), got shape '
                             f'{seg_map.shape}')
        results['gt_seg_map'] = (seg_map >= self.threshold).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(threshold={self.threshold})'
