import math

import numpy as np
import pytest

from mmseg_fusion.evaluation.functional import (dice_score, hd95, iou_score,
                                                mean_skip_nan, precision_recall)


def _mask(shape, *points):
    mask = np.zeros(shape, dtype=bool)
    for point in points:
        mask[point] = True
    return mask


def test_overlap_scores_by_hand():
    # |P| = 3, |G| = 2, |P & G| = 2, |P | G| = 3
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    gt = np.array([[0, 1, 1, 0], [0, 0, 0, 0]])
    assert dice_score(pred, gt) == pytest.approx(4 / 5)
    assert iou_score(pred, gt) == pytest.approx(2 / 3)
    assert precision_recall(pred, gt) == pytest.approx((2 / 3, 1.0))


def test_overlap_scores_on_empty_masks():
    empty = np.zeros((3, 3), dtype=bool)
    full = np.ones((3, 3), dtype=bool)
    assert math.isnan(dice_score(empty, empty))
    assert math.isnan(iou_score(empty, empty))
    assert dice_score(full, empty) == 0.0
    assert iou_score(empty, full) == 0.0
    precision, recall = precision_recall(empty, full)
    assert math.isnan(precision) and recall == 0.0
    precision, recall = precision_recall(full, empty)
    assert precision == 0.0 and math.isnan(recall)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r'pred=\(2, 3\), gt=\(3, 2\)'):
        dice_score(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match='same shape'):
        hd95(np.ones((2, 3)), np.ones((2, 3, 1)))


def test_hd95_single_pixels():
    assert hd95(_mask((8, 8), (1, 1)), _mask((8, 8), (1, 4))) == pytest.approx(3.0)
    assert hd95(_mask((8, 8), (0, 0)), _mask((8, 8), (3, 4))) == pytest.approx(5.0)


def test_hd95_square_shifted_by_two():
    # 3x3 squares, the second shifted right by 2 px. Surfaces: the 8 border pixels.
    # Square -> shifted: right column 0 (x3), middle column top/bottom 1 (x2),
    # left column 2 (x3); the reverse is symmetric. Pooled 16 distances: six 0, four 1,
    # six 2; the 95th percentile (linear, position 14.25) lies between two 2s -> 2.
    pred = np.zeros((7, 9), dtype=bool)
    pred[2:5, 1:4] = True
    gt = np.roll(pred, 2, axis=1)
    assert hd95(pred, gt) == pytest.approx(2.0)


def test_hd95_pools_both_directions_like_medpy():
    # A 5-px line (its own surface) against its first pixel: line -> pixel gives
    # 0, 1, 2, 3, 4; pixel -> line gives 0. Pooled sorted (0, 0, 1, 2, 3, 4): position
    # 0.95 * 5 = 4.75 -> 3 + 0.75 * (4 - 3) = 3.75. (The max of the two directed 95th
    # percentiles would be 3.8.)
    line = np.zeros((1, 5), dtype=bool)
    line[0, :] = True
    pixel = _mask((1, 5), (0, 0))
    assert hd95(line, pixel) == pytest.approx(3.75)
    assert hd95(pixel, line) == pytest.approx(3.75)
    assert hd95(line, pixel, spacing=(1.0, 2.0)) == pytest.approx(7.5)


def test_hd95_surface_includes_array_border():
    # A mask filling the array has its border pixels as surface (outside = background):
    # edge midpoints at 1, corners at sqrt(2) from the centre pixel; centre -> border 1.
    # Pooled (1 x5, sqrt2 x4), position 7.6 -> sqrt(2).
    full = np.ones((3, 3), dtype=bool)
    centre = _mask((3, 3), (1, 1))
    assert hd95(full, centre) == pytest.approx(math.sqrt(2))


def test_hd95_anisotropic_spacing_3d():
    pred = np.zeros((5, 5, 4), dtype=bool)
    pred[1:4, 1:4, 1] = True
    gt = np.zeros_like(pred)
    gt[1:4, 1:4, 2] = True
    assert hd95(pred, gt) == pytest.approx(1.0)
    assert hd95(pred, gt, spacing=(1, 1, 5)) == pytest.approx(5.0)
    assert hd95(pred, gt, spacing=(0.5, 0.5, 2.5)) == pytest.approx(2.5)


def test_hd95_does_not_depend_on_padding():
    rng = np.random.default_rng(0)
    pred = rng.random((6, 7, 5)) < 0.3
    gt = rng.random((6, 7, 5)) < 0.3
    padded_pred = np.pad(pred, 4)
    padded_gt = np.pad(gt, 4)
    spacing = (0.7, 1.3, 3.0)
    # the padded masks no longer touch the array border, so compare to the masks
    # padded by one voxel (same surfaces)
    assert hd95(padded_pred, padded_gt, spacing) == pytest.approx(
        hd95(np.pad(pred, 1), np.pad(gt, 1), spacing))


def test_hd95_rejects_empty_masks_and_bad_spacing():
    pixel = _mask((4, 4), (1, 1))
    empty = np.zeros((4, 4), dtype=bool)
    with pytest.raises(ValueError, match='pred is an empty mask'):
        hd95(empty, pixel)
    with pytest.raises(ValueError, match='gt is an empty mask'):
        hd95(pixel, empty)
    with pytest.raises(ValueError, match=r'must be 2 positive numbers.*\(1, 1, 5\)'):
        hd95(pixel, pixel, spacing=(1, 1, 5))
    with pytest.raises(ValueError, match='spacing must be 2 positive'):
        hd95(pixel, pixel, spacing=(1, 0))


def test_mean_skip_nan():
    assert mean_skip_nan([1.0, float('nan'), 3.0]) == pytest.approx(2.0)
    assert math.isnan(mean_skip_nan([float('nan')]))
    assert math.isnan(mean_skip_nan([]))
