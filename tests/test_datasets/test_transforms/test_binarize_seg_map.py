"""Tests for mmseg_fusion/datasets/transforms/binarize_seg_map.py."""
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS


def test_thresholds_greyscale_mask():
    transform = TRANSFORMS.build(dict(type='BinarizeSegMap', threshold=128))
    seg = np.array([[0, 3, 127], [128, 200, 255]], np.uint8)
    out = transform(dict(gt_seg_map=seg))['gt_seg_map']
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 0, 0], [1, 1, 1]])


def test_averages_channels_of_rgb_mask():
    transform = TRANSFORMS.build(dict(type='BinarizeSegMap', threshold=100))
    seg = np.zeros((2, 2, 3), np.uint8)
    seg[0, 0] = (250, 252, 249)
    seg[1, 1] = (90, 100, 110)
    seg[0, 1] = (255, 0, 0)  # mean 85: below the threshold
    out = transform(dict(gt_seg_map=seg))['gt_seg_map']
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1, 0], [0, 1]])


@pytest.mark.parametrize('threshold', [0, 256, 1.5, True])
def test_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match='threshold'):
        TRANSFORMS.build(dict(type='BinarizeSegMap', threshold=threshold))


def test_rejects_bad_rank():
    transform = TRANSFORMS.build(dict(type='BinarizeSegMap'))
    with pytest.raises(ValueError, match=r'\(4,\)'):
        transform(dict(gt_seg_map=np.zeros(4, np.uint8)))
