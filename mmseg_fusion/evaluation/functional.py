"""Overlap and surface-distance scores on binary masks of any rank (2-D images, 3-D
volumes), as numpy functions.

Every function reads its masks as booleans (nonzero = foreground) and returns fractions
(0..1) or distances (voxel units, or the units of ``spacing``). None of them applies a
convention for empty masks: each docstring says what an empty mask gives, and the
metrics in :mod:`mmseg_fusion.evaluation.metrics` decide what to report instead.
"""
import math
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


HD95_METHODS = ('medpy', 'monai')


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (beyond the array counts)."""
    structure = generate_binary_structure(mask.ndim, 1)
    return mask ^ binary_erosion(mask, structure=structure, iterations=1)


def _check_spacing(spacing: Optional[Sequence[float]],
                   shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """``spacing`` as a float64 array of one positive entry per axis of ``shape``."""
    if spacing is None:
        return None
    values = np.asarray(spacing, dtype=np.float64)
    if values.shape != (len(shape), ) or not np.all(values > 0):
        raise ValueError(f'spacing must be {len(shape)} positive numbers (one per '
                         f'axis of masks of shape {shape}), got {spacing!r}')
    return values


def surface_distances(
        pred,
        gt,
        spacing: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Directed distances between the surfaces of two binary masks, both ways.

    The surface of a mask is ``mask ^ binary_erosion(mask)`` with the face (6- or 4-)
    connected structure, voxels beyond the array border counting as background: the
    surface of ``medpy.metric.binary`` (connectivity 1) and of MONAI's
    ``get_mask_edges`` without sub-voxel edges (the default of its Hausdorff and
    surface Dice metrics, whose erosion uses scipy's default, face-connected
    structure). Distances are Euclidean between voxel centres, scaled by ``spacing``
    (``distance_transform_edt`` of the complement of the other surface).

    The distance transforms run on the bounding box of ``pred | gt`` only: every
    surface voxel lies inside it, so the distances equal those of the full array.

    Args:
        pred (array-like): predicted mask, nonzero = foreground.
        gt (array-like): ground-truth mask of the same shape.
        spacing (Sequence[float], optional): voxel size along each axis (e.g. mm);
            None means 1 for every axis (distances in voxels). Default: None.

    Returns:
        tuple[ndarray, ndarray]: ``(pred_to_gt, gt_to_pred)``, float64: for every
        surface voxel of ``pred`` the distance to the nearest surface voxel of ``gt``,
        and the reverse. An empty mask has no surface: its own array is empty, and
        the other mask's distances to it are all ``inf``.

    Shape:
        - pred, gt: any shape, equal, rank ndim >= 1.
        - spacing: (ndim, ).
        - pred_to_gt: (number of surface voxels of pred, ); gt_to_pred likewise.
    """
    pred, gt = _as_masks(pred, gt)
    sampling = _check_spacing(spacing, pred.shape)
    union = pred | gt
    if not union.any():
        return np.zeros(0), np.zeros(0)
    box = tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union))
    pred_surface = _surface(pred[box])
    gt_surface = _surface(gt[box])
    if not gt_surface.any():
        return np.full(int(pred_surface.sum()), np.inf), np.zeros(0)
    if not pred_surface.any():
        return np.zeros(0), np.full(int(gt_surface.sum()), np.inf)
    to_gt = distance_transform_edt(~gt_surface, sampling=sampling)[pred_surface]
    to_pred = distance_transform_edt(~pred_surface, sampling=sampling)[gt_surface]
    return to_gt, to_pred


def hd95_from_distances(pred_to_gt: np.ndarray,
                        gt_to_pred: np.ndarray,
                        method: str = 'medpy') -> float:
    """HD95 from the two directed surface-distance sets of :func:`surface_distances`.

    Args:
        pred_to_gt (ndarray): distances from pred's surface to gt's, non-empty.
        gt_to_pred (ndarray): distances from gt's surface to pred's, non-empty.
        method (str): 'medpy': the 95th percentile of both sets pooled
            (``medpy.metric.binary.hd95``); 'monai': the larger of the two directed
            95th percentiles (``monai.metrics.compute_hausdorff_distance(
            percentile=95)``). Both use linear interpolation between ranks.
            Default: 'medpy'.

    Returns:
        float: HD95 in the units of the distances.
    """
    if method not in HD95_METHODS:
        raise ValueError(f'method must be one of {HD95_METHODS}, got {method!r}')
    if len(pred_to_gt) == 0 or len(gt_to_pred) == 0:
        raise ValueError('HD95 needs distances in both directions (two non-empty '
                         f'surfaces), got {len(pred_to_gt)} and {len(gt_to_pred)}')
    if method == 'medpy':
        return float(np.percentile(np.concatenate([pred_to_gt, gt_to_pred]), 95))
    return float(max(np.percentile(pred_to_gt, 95), np.percentile(gt_to_pred, 95)))


def hd95(pred,
         gt,
         spacing: Optional[Sequence[float]] = None,
         method: str = 'medpy') -> float:
    """95th percentile Hausdorff distance between the surfaces of two binary masks,
    as ``medpy.metric.binary.hd95`` (connectivity 1) or MONAI computes it.

    The metric of the Synapse multi-organ benchmark in "TransUNet: Transformers Make
    Strong Encoders for Medical Image Segmentation" (Chen et al., 2021), which calls
    medpy. Surfaces and directed distances as :func:`surface_distances`: ``d(P->G)``
    from every surface voxel of ``pred`` to the nearest surface voxel of ``gt``,
    ``d(G->P)`` the reverse. Then, with numpy's default linear interpolation:

    - ``method='medpy'`` (default): ``percentile(concatenate(d(P->G), d(G->P)), 95)``,
      the two sets pooled, as medpy (and so TransUNet, nnFormer) computes it;
    - ``method='monai'``: ``max(percentile(d(P->G), 95), percentile(d(G->P), 95))``,
      as ``monai.metrics.compute_hausdorff_distance(percentile=95)`` computes it.

    The two differ when the two directions' distances differ (a 5-voxel line against
    its end voxel: 3.75 'medpy', 3.8 'monai'), so state which one a number uses.
    Both methods share the surface of medpy and of MONAI's default edges
    (face-connected erosion), so each agrees with its library exactly, up to MONAI's
    float32 rounding.

    Args:
        pred (array-like): predicted mask, nonzero = foreground; must not be empty.
        gt (array-like): ground-truth mask of the same shape; must not be empty.
        spacing (Sequence[float], optional): voxel size along each axis (e.g. mm),
            one positive number per axis of the masks. None means 1 for every axis,
            i.e. distances in voxels. Default: None.
        method (str): 'medpy' or 'monai', see above. Default: 'medpy'.

    Returns:
        float: HD95 in the units of ``spacing`` (voxels when None).

    Raises:
        ValueError: if the shapes differ, ``spacing`` has the wrong length or a
            non-positive entry, ``method`` is unknown, or either mask is empty (HD95
            is undefined then; callers choose a convention, as the metrics of this
            package do).

    Shape:
        - pred, gt: any shape, equal, rank ndim >= 1.
        - spacing: (ndim, ).
    """
    if method not in HD95_METHODS:
        raise ValueError(f'method must be one of {HD95_METHODS}, got {method!r}')
    pred, gt = _as_masks(pred, gt)
    for name, mask in (('pred', pred), ('gt', gt)):
        if not mask.any():
            raise ValueError(f'{name} is an empty mask (shape {mask.shape}); hd95 '
                             'needs a non-empty pred and gt')
    return hd95_from_distances(*surface_distances(pred, gt, spacing), method=method)


def nsd_from_distances(pred_to_gt: np.ndarray, gt_to_pred: np.ndarray,
                       tolerance: float) -> float:
    """Normalised surface Dice from the directed distances of
    :func:`surface_distances`: the share of both surfaces' voxels within
    ``tolerance`` (``<=``) of the other surface; NaN when both sets are empty."""
    tolerance = _check_tolerance(tolerance)
    total = len(pred_to_gt) + len(gt_to_pred)
    if total == 0:
        return float('nan')
    within = int((pred_to_gt <= tolerance).sum()) + int((gt_to_pred <= tolerance).sum())
    return within / total


def _check_tolerance(tolerance, name: str = 'tolerance') -> float:
    """``tolerance`` as a float if it is a finite number >= 0, else raise naming
    ``name``."""
    number = (int, float, np.integer, np.floating)
    if (isinstance(tolerance, bool) or not isinstance(tolerance, number)
            or not (math.isfinite(tolerance) and tolerance >= 0)):
        raise ValueError(f'{name} must be a finite number >= 0, got {tolerance!r}')
    return float(tolerance)


def normalized_surface_dice(pred,
                            gt,
                            tolerance: float,
                            spacing: Optional[Sequence[float]] = None) -> float:
    """Normalised surface Dice (NSD, surface Dice) of two binary masks at a
    tolerance: the fraction of both surfaces lying within ``tolerance`` of the other.

    From "Clinically applicable segmentation of head and neck anatomy for
    radiotherapy: deep learning algorithm development and validation study"
    (Nikolov et al., JMIR 2021; arXiv 1809.04430), and as ``monai.metrics.
    compute_surface_dice`` computes it with its default ``use_subvoxels=False``:

    ``NSD = (|{d in d(P->G): d <= tol}| + |{d in d(G->P): d <= tol}|) /
    (|d(P->G)| + |d(G->P)|)``

    with surfaces and directed distances as :func:`surface_distances` (the surface of
    :func:`hd95`), each surface voxel counting once. This equals MONAI's value
    exactly. It differs from DeepMind's ``surface-distance`` package
    (``compute_surface_dice_at_tolerance``, used by the FLARE challenges and MONAI
    with ``use_subvoxels=True``), which places the surface between voxels and
    weights each surface element by its area. The two can differ a lot when the
    tolerance is below the voxel size: on the 3 mm test CT, the spleen shifted by one
    voxel gives 0.33 here and 0.64 area-weighted at 1 mm (both 1.0 at 3 mm).

    Args:
        pred (array-like): predicted mask, nonzero = foreground.
        gt (array-like): ground-truth mask of the same shape.
        tolerance (float): the accepted distance, >= 0, in the units of ``spacing``
            (mm for a spacing in mm; voxels when ``spacing`` is None).
        spacing (Sequence[float], optional): voxel size along each axis. None means
            1 for every axis. Default: None.

    Returns:
        float: NSD in [0, 1]; NaN when both masks are empty (0 / 0); 0 when exactly
        one is empty (none of the other's surface lies near an empty one), as MONAI
        returns.

    Raises:
        ValueError: if the shapes differ, ``spacing`` is invalid or ``tolerance`` is
            not a finite number >= 0.

    Shape:
        - pred, gt: any shape, equal, rank ndim >= 1.
        - spacing: (ndim, ).
    """
    tolerance = _check_tolerance(tolerance)
    return nsd_from_distances(*surface_distances(pred, gt, spacing), tolerance)


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
