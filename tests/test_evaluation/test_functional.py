import math

import numpy as np
import pytest

from mmseg_fusion.evaluation.functional import (dice_score, hd95, hd95_from_distances,
                                                iou_score, mean_skip_nan,
                                                normalized_surface_dice,
                                                precision_recall, surface_distances)


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


def _offset_cubes(side=4, offset=1, axis=0):
    """Two side^3 cubes, the second shifted by ``offset`` voxels along ``axis``."""
    pred = np.zeros((side + offset + 2, ) * 3, dtype=bool)
    pred[1:side + 1, 1:side + 1, 1:side + 1] = True
    return pred, np.roll(pred, offset, axis=axis)


def test_offset_cubes_by_hand_anisotropic():
    # Two 4^3 cubes, G = P shifted by one voxel along axis 0, spacing (3, 0.8, 1.5).
    # Each surface: 64 - 8 interior = 56 voxels. P -> G: P's face at the low end
    # of axis 0 (16 voxels) lies one voxel (3 mm) from G's face; the 4 voxels in the
    # middle of P's high face lie inside G, 1 voxel from G's side faces along axis 1
    # (0.8 mm), 1.5 mm along axis 2, 3 mm along axis 0 -> 0.8 mm; the other 36 are on
    # G's surface (0). G -> P is the mirror image. Pooled: 72 x 0, 8 x 0.8, 32 x 3.
    pred, gt = _offset_cubes()
    spacing = (3.0, 0.8, 1.5)
    to_gt, to_pred = surface_distances(pred, gt, spacing)
    for distances in (to_gt, to_pred):
        assert len(distances) == 56
        assert sorted(distances) == pytest.approx([0.0] * 36 + [0.8] * 4 + [3.0] * 16)
    assert dice_score(pred, gt) == pytest.approx(3 / 4)
    # medpy: position 0.95 * 111 = 105.45 in the 3 mm block (indices 80..111);
    # monai: position 0.95 * 55 = 52.25 in the 3 mm block (indices 40..55) each way
    assert hd95(pred, gt, spacing) == pytest.approx(3.0)
    assert hd95(pred, gt, spacing, method='monai') == pytest.approx(3.0)
    assert hd95(pred, gt) == pytest.approx(1.0)  # voxels
    # NSD: tolerance below 0.8 mm keeps the 72 zeros, from 0.8 mm the 80, from 3 mm all
    assert normalized_surface_dice(pred, gt, 0.5, spacing) == pytest.approx(72 / 112)
    assert normalized_surface_dice(pred, gt, 0.8, spacing) == pytest.approx(80 / 112)
    assert normalized_surface_dice(pred, gt, 2.9, spacing) == pytest.approx(80 / 112)
    assert normalized_surface_dice(pred, gt, 3.0, spacing) == pytest.approx(1.0)
    # shifted along axis 1 instead, the 1-voxel step is 0.8 mm everywhere
    pred, gt = _offset_cubes(axis=1)
    assert hd95(pred, gt, spacing) == pytest.approx(0.8)
    assert normalized_surface_dice(pred, gt, 0.8, spacing) == pytest.approx(1.0)


def test_offset_cubes_by_two_voxels():
    # 4^3 cubes, G = P shifted by 2 voxels along axis 2 (1.5 mm), in-plane 0.7 mm:
    # overlap 2 layers -> Dice 2 * 32 / 128. P -> G over P's 56 surface voxels: the
    # side rings of the two overlapping layers are G's side rings (24 x 0); the ring
    # of the layer next to G is one step from G's lowest ring (12 x 1.5 mm); the ring
    # and the 4 inner voxels of P's low face are two steps away (16 x 3 mm); the 4
    # inner voxels of P's high face lie inside G, one in-plane voxel from G's sides
    # (4 x 0.7 mm). G -> P mirrors it.
    pred, gt = _offset_cubes(offset=2, axis=2)
    spacing = (0.7, 0.7, 1.5)
    assert dice_score(pred, gt) == pytest.approx(0.5)
    for distances in surface_distances(pred, gt, spacing):
        assert sorted(distances) == pytest.approx([0.0] * 24 + [0.7] * 4 + [1.5] * 12 +
                                                  [3.0] * 16)
    assert hd95(pred, gt, spacing) == pytest.approx(3.0)
    assert hd95(pred, gt, spacing, method='monai') == pytest.approx(3.0)
    assert normalized_surface_dice(pred, gt, 1.0, spacing) == pytest.approx(56 / 112)
    assert normalized_surface_dice(pred, gt, 1.5, spacing) == pytest.approx(80 / 112)


def test_hd95_methods_differ_by_hand_anisotropic():
    # A 5-voxel line along axis 2 (2.5 mm steps) against its first voxel: line ->
    # voxel 0, 1, 2, 3, 4 steps, voxel -> line 0. medpy pools (0, 0, 1, 2, 3, 4):
    # position 4.75 -> 3.75 steps; monai: max(3.8, 0) steps.
    line = np.zeros((3, 3, 5), dtype=bool)
    line[1, 1, :] = True
    voxel = _mask((3, 3, 5), (1, 1, 0))
    spacing = (0.8, 0.8, 2.5)
    assert hd95(line, voxel, spacing) == pytest.approx(3.75 * 2.5)
    assert hd95(line, voxel, spacing, method='monai') == pytest.approx(3.8 * 2.5)
    assert hd95(voxel, line, spacing, method='monai') == pytest.approx(3.8 * 2.5)
    # NSD: the line's 5 surface voxels and the single voxel; within 2.5 mm: 0 and 1
    # step of the line plus the voxel itself -> 3 / 6
    assert normalized_surface_dice(line, voxel, 2.5, spacing) == pytest.approx(0.5)


def _blobs(seed, shape=(13, 16, 11)):
    """Two random smooth blobs, touching the array border."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    return tuple(gaussian_filter(rng.random(shape), 1.5) > 0.5 for _ in range(2))


def _one_hot(mask):
    import torch
    return torch.as_tensor(mask)[None, None].float()


def test_hd95_medpy_method_agrees_with_medpy():
    medpy_binary = pytest.importorskip(
        'medpy.metric.binary', reason='medpy (requirements/tests.txt) is not installed')
    spacing = (0.7, 1.3, 2.5)
    for seed in range(3):
        pred, gt = _blobs(seed)
        assert hd95(pred, gt, spacing) == pytest.approx(
            medpy_binary.hd95(pred, gt, voxelspacing=spacing))


@pytest.mark.filterwarnings('ignore::UserWarning', 'ignore::FutureWarning')
def test_hd95_and_nsd_agree_with_monai():
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice
    spacing = (0.7, 1.3, 2.5)
    for seed in range(3):
        pred, gt = _blobs(seed)
        assert pred[0].any() or gt[0].any()  # the border counts as background
        monai_hd = compute_hausdorff_distance(
            _one_hot(pred),
            _one_hot(gt),
            include_background=True,
            percentile=95,
            spacing=spacing).item()
        assert hd95(
            pred, gt, spacing, method='monai') == pytest.approx(
                monai_hd, rel=1e-6)
        for tolerance in (0.5, 1.0, 2.0, 4.0):
            monai_nsd = compute_surface_dice(
                _one_hot(pred),
                _one_hot(gt), [tolerance],
                include_background=True,
                spacing=spacing).item()
            assert normalized_surface_dice(pred, gt, tolerance,
                                           spacing) == pytest.approx(
                                               monai_nsd, rel=1e-6)
    # empty masks: MONAI's NSD is NaN when both are empty, 0 when one is
    empty = np.zeros_like(pred)
    assert math.isnan(normalized_surface_dice(empty, empty, 1.0, spacing))
    assert math.isnan(
        compute_surface_dice(
            _one_hot(empty), _one_hot(empty), [1.0], include_background=True).item())
    for a, b in ((pred, empty), (empty, gt)):
        assert normalized_surface_dice(a, b, 1.0, spacing) == 0.0
        assert compute_surface_dice(
            _one_hot(a), _one_hot(b), [1.0], include_background=True).item() == 0.0


def test_surface_distances_of_empty_masks():
    voxel = _mask((3, 3, 3), (1, 1, 1))
    empty = np.zeros((3, 3, 3), dtype=bool)
    to_gt, to_pred = surface_distances(voxel, empty)
    assert to_gt.tolist() == [math.inf] and to_pred.size == 0
    to_gt, to_pred = surface_distances(empty, voxel)
    assert to_gt.size == 0 and to_pred.tolist() == [math.inf]
    assert [d.size for d in surface_distances(empty, empty)] == [0, 0]
    with pytest.raises(ValueError, match='distances in both directions'):
        hd95_from_distances(*surface_distances(voxel, empty))


def test_nsd_and_hd95_method_argument_checks():
    pixel = _mask((4, 4), (1, 1))
    for bad in (-1.0, math.nan, math.inf, '1', True):
        with pytest.raises(ValueError, match='tolerance must be a finite number'):
            normalized_surface_dice(pixel, pixel, bad)
    with pytest.raises(ValueError, match=r"method must be one of \('medpy', 'monai'\)"):
        hd95(pixel, pixel, method='max')
    with pytest.raises(ValueError, match='spacing must be 2 positive'):
        normalized_surface_dice(pixel, pixel, 1.0, spacing=(1.0, -1.0))
