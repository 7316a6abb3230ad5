"""Overlap and surface-distance scores on binary masks of any rank (2-D images, 3-D
volumes), as numpy functions.

Every function reads its masks as booleans (nonzero = foreground) and returns fractions
(0..1) or distances (voxel units, or the units of ``spacing``). None of them applies a
convention for empty masks: each docstring says what an empty mask gives, and the
metrics in :mod:`mmseg_fusion.evaluation.metrics` decide what to report instead.
"""
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from scipy.ndimage import (binary_erosion, distance_transform_edt,
                           generate_binary_structure)


def _as_masks(pred, gt) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``pred`` and ``gt`` as boolean arrays of one shape and rank >= 1."""
    pred = np.asarray(pred).astype(bool)
    gt = np.asarray(gt).astype(bool)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt must have the same shape, got '
                         f'pred={pred.shape}, gt={gt.shape}')
    if pred.ndim == 0:
        raise ValueError('pred and gt must have at least one axis, got 0-d arrays')
    return pred, gt


def dice_score(pred, gt) -> float:
    """Dice similarity coefficient ``2 |P & G| / (|P| + |G|)`` of two binary masks.

    Args:
        pred (array-like): predicted mask, nonzero = foreground.
        gt (array-like): ground-truth mask of the same shape.

    Returns:
        float: Dice in [0, 1]; NaN when both masks are empty (0 / 0); 0 when exactly
        one is empty.

    Shape:
        - pred, gt: any shape, equal (e.g. (H, W) or (H, W, D)).
    """
    pred, gt = _as_masks(pred, gt)
    denominator = int(pred.sum()) + int(gt.sum())
    if denominator == 0:
        return float('nan')
    return 2.0 * int(np.logical_and(pred, gt).sum()) / denominator


def iou_score(pred, gt) -> float:
    """Intersection over union (Jaccard index) ``|P & G| / |P | G|`` of two masks.

    Args:
        pred (array-like): predicted mask, nonzero = foreground.
        gt (array-like): ground-truth mask of the same shape.

    Returns:
        float: IoU in [0, 1]; NaN when both masks are empty (0 / 0); 0 when exactly
        one is empty.

    Shape:
        - pred, gt: any shape, equal.
    """
    pred, gt = _as_masks(pred, gt)
    union = int(np.logical_or(pred, gt).sum())
    if union == 0:
        return float('nan')
    return int(np.logical_and(pred, gt).sum()) / union


def precision_recall(pred, gt) -> Tuple[float, float]:
    """Precision ``|P & G| / |P|`` and recall (sensitivity) ``|P & G| / |G|``.

    Args:
        pred (array-like): predicted mask, nonzero = foreground.
        gt (array-like): ground-truth mask of the same shape.

    Returns:
        tuple[float, float]: (precision, recall) in [0, 1]; precision is NaN when
        ``pred`` is empty and recall is NaN when ``gt`` is empty (0 / 0).

    Shape:
        - pred, gt: any shape, equal.
    """
    pred, gt = _as_masks(pred, gt)
    hits = int(np.logical_and(pred, gt).sum())
    n_pred, n_gt = int(pred.sum()), int(gt.sum())
    precision = hits / n_pred if n_pred else float('nan')
    recall = hits / n_gt if n_gt else float('nan')
    return precision, recall


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (beyond the array counts)."""
    structure = generate_binary_structure(mask.ndim, 1)
    return mask ^ binary_erosion(mask, structure=structure, iterations=1)


def hd95(pred, gt, spacing: Optional[Sequence[float]] = None) -> float:
    """95th percentile Hausdorff distance between the surfaces of two binary masks,
    exactly as ``medpy.metric.binary.hd95`` (connectivity 1) computes it.

    The metric of the Synapse multi-organ benchmark in "TransUNet: Transformers Make
    Strong Encoders for Medical Image Segmentation" (Chen et al., 2021), which calls
    medpy. The surface of a mask is ``mask ^ binary_erosion(mask)`` with the face
    (6- or 4-) connected structure, voxels beyond the array border counting as
    background. ``d(P->G)`` are the Euclidean distances from every surface voxel of
    ``pred`` to the nearest surface voxel of ``gt`` (``distance_transform_edt`` of the
    complement of gt's surface, scaled by ``spacing``), ``d(G->P)`` the reverse, and
    the result is ``np.percentile(concatenate(d(P->G), d(G->P)), 95)`` with numpy's
    default linear interpolation.

    Note: medpy takes the percentile of the two directed distance sets pooled
    together, not the maximum of the two directed 95th percentiles (the MONAI
    ``compute_hausdorff_distance(percentile=95)`` variant); the two differ slightly,
    and this function follows medpy, which the Synapse literature uses.

    The distance transform runs on the bounding box of ``pred | gt`` only, which gives
    the same distances as the full array (every surface voxel lies inside the box) at
    a fraction of the cost on large volumes.

    Args:
        pred (array-like): predicted mask, nonzero = foreground; must not be empty.
        gt (array-like): ground-truth mask of the same shape; must not be empty.
        spacing (Sequence[float], optional): voxel size along each axis (e.g. mm),
            one positive number per axis of the masks. None means 1 for every axis,
            i.e. distances in voxels. Default: None.

    Returns:
        float: HD95 in the units of ``spacing`` (voxels when None).

    Raises:
        ValueError: if the shapes differ, ``spacing`` has the wrong length or a
            non-positive entry, or either mask is empty (HD95 is undefined then;
            callers choose a convention, as the metrics of this package do).

    Shape:
        - pred, gt: any shape, equal, rank ndim >= 1.
        - spacing: (ndim, ).
    """
    pred, gt = _as_masks(pred, gt)
    if spacing is not None:
        values = np.asarray(spacing, dtype=np.float64)
        if values.shape != (pred.ndim, ) or not np.all(values > 0):
            raise ValueError(f'spacing must be {pred.ndim} positive numbers (one per '
                             f'axis of masks of shape {pred.shape}), got {spacing!r}')
        spacing = values
    for name, mask in (('pred', pred), ('gt', gt)):
        if not mask.any():
            raise ValueError(f'{name} is an empty mask (shape {mask.shape}); hd95 '
                             'needs a non-empty pred and gt')
    union = pred | gt
    box = tuple(
        slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union))
    pred_surface = _surface(pred[box])
    gt_surface = _surface(gt[box])
    to_gt = distance_transform_edt(~gt_surface, sampling=spacing)[pred_surface]
    to_pred = distance_transform_edt(~pred_surface, sampling=spacing)[gt_surface]
    return float(np.percentile(np.concatenate([to_gt, to_pred]), 95))


def mean_skip_nan(values: Iterable[float]) -> float:
    """Mean of ``values`` ignoring NaN; NaN (without a warning) when nothing is left.

    Args:
        values (Iterable[float]): the scores to average.

    Returns:
        float: the mean of the non-NaN values, or NaN if there are none.
    """
    values = np.asarray(list(values), dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float('nan')
