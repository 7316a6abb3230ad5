import math

import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image

from mmseg_fusion.evaluation import MedicalMetric

POLYP_META = dict(classes=('background', 'polyp'))


def _sample(pred, gt, name='img.png', **metainfo):
    """A data sample as mmseg's SegDataSample.to_dict() gives it."""
    return dict(
        pred_sem_seg=dict(data=torch.as_tensor(np.asarray(pred))[None]),
        gt_sem_seg=dict(data=torch.as_tensor(np.asarray(gt))[None]),
        img_path=f'/data/images/{name}',
        **metainfo)


def _square(shape, top, left, size):
    mask = np.zeros(shape, dtype=np.int64)
    mask[top:top + size, left:left + size] = 1
    return mask


def _pixel(shape, row, col):
    mask = np.zeros(shape, dtype=np.int64)
    mask[row, col] = 1
    return mask


def _metric(meta=POLYP_META, **kwargs):
    metric = METRICS.build(dict(type='MedicalMetric', **kwargs))
    metric.dataset_meta = meta
    return metric


def _large_and_tiny_samples():
    # image 1: a 4x4 polyp found exactly; image 2: a 1-px polyp missed by a 1-px
    # prediction at the opposite corner (distance sqrt(7^2 + 7^2))
    shape = (8, 8)
    large = _square(shape, 2, 2, 4)
    return [
        _sample(large, large, 'a.png'),
        _sample(_pixel(shape, 7, 7), _pixel(shape, 0, 0), 'b.png'),
    ]


def test_per_image_average_differs_from_mmseg_global_iou():
    samples = _large_and_tiny_samples()
    metric = _metric()
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert isinstance(metric, MedicalMetric)
    assert result['Dice.polyp'] == pytest.approx(50.0)  # (1 + 0) / 2
    assert result['IoU.polyp'] == pytest.approx(50.0)
    assert result['mDice'] == pytest.approx(50.0)
    assert result['HD95.polyp'] == pytest.approx((0 + 7 * math.sqrt(2)) / 2)
    assert result['mHD95'] == result['HD95.polyp']
    assert 'Dice.background' not in result and 'HD95_skipped' not in result
    # mmseg sums areas over the set: Dice = 2 * 16 / (17 + 17)
    areas = [
        IoUMetric.intersect_and_union(s['pred_sem_seg']['data'][0],
                                      s['gt_sem_seg']['data'][0], 2, 255)
        for s in samples
    ]
    totals = [sum(a[i] for a in areas) for i in range(4)]
    global_dice = IoUMetric.total_area_to_metrics(*totals, ['mDice'])['Dice'][1]
    assert global_dice == pytest.approx(32 / 34)
    assert abs(100 * global_dice - result['Dice.polyp']) > 40


def test_empty_conventions_diagonal():
    shape = (6, 8)  # diagonal 10
    empty = np.zeros(shape, dtype=np.int64)
    samples = [
        _sample(empty, empty),  # both empty: Dice 1, IoU 1, HD95 0
        _sample(_pixel(shape, 1, 1), empty),  # false positive: 0, 0, diagonal
    ]
    metric = _metric(with_precision_recall=True)
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    assert result['Dice.polyp'] == pytest.approx(50.0)
    assert result['IoU.polyp'] == pytest.approx(50.0)
    assert result['HD95.polyp'] == pytest.approx(5.0)
    assert result['Precision.polyp'] == pytest.approx(50.0)
    assert result['Recall.polyp'] == pytest.approx(50.0)
    assert result['mPrecision'] == pytest.approx(50.0)


def test_empty_conventions_nan_skips_and_counts():
    shape = (6, 8)
    empty = np.zeros(shape, dtype=np.int64)
    samples = [
        _sample(_pixel(shape, 1, 1), _pixel(shape, 1, 4)),  # HD95 3
        _sample(empty, _pixel(shape, 2, 2)),  # missed: Dice 0, HD95 skipped
        _sample(empty, empty),  # HD95 0
    ]
    metric = _metric(empty_hd95='nan')
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    assert result['Dice.polyp'] == pytest.approx(100 * (0 + 0 + 1) / 3)
    assert result['HD95.polyp'] == pytest.approx((3 + 0) / 2)
    assert result['HD95_skipped'] == 1.0


def test_spacing_metainfo_gives_mm():
    shape = (6, 8)
    samples = [
        _sample(_pixel(shape, 0, 1), _pixel(shape, 3, 1), spacing=(2.0, 0.5)),
        _sample(_pixel(shape, 0, 1), np.zeros(shape, np.int64), spacing=(2.0, 0.5)),
    ]
    metric = _metric()
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    # 3 rows of 2 mm; the diagonal of a 12 mm x 4 mm image
    assert result['HD95.polyp'] == pytest.approx((6.0 + math.hypot(12, 4)) / 2)


def test_subsets_reported_separately_and_overall():
    shape = (8, 8)
    large = _square(shape, 2, 2, 4)
    half = _square(shape, 2, 2, 4)
    half[2:4, 2:6] = 0  # 8 of 16 pixels: Dice 2 * 8 / 24
    samples = [
        _sample(large, large, 'k1.png', subset='Kvasir'),
        _sample(half, large, 'k2.png', subset='Kvasir'),
        _sample(
            _pixel(shape, 7, 7),
            _pixel(shape, 0, 0),
            'e1.png',
            subset='ETIS-LaribPolypDB'),
    ]
    metric = _metric()
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    kvasir = (1 + 2 / 3) / 2
    assert result['Kvasir/mDice'] == pytest.approx(100 * kvasir)
    assert result['Kvasir/Dice.polyp'] == pytest.approx(100 * kvasir)
    assert result['Kvasir/mIoU'] == pytest.approx(100 * (1 + 0.5) / 2)
    assert result['ETIS-LaribPolypDB/mDice'] == pytest.approx(0.0)
    assert result['ETIS-LaribPolypDB/mHD95'] == pytest.approx(7 * math.sqrt(2))
    assert result['mDice'] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    assert all(isinstance(v, float) for v in result.values())


def test_multi_class_background_and_ignore_index():
    meta = dict(classes=('background', 'a', 'b'))
    gt = np.array([[0, 1, 1], [2, 2, 255]])
    pred = np.array([[0, 1, 2], [2, 2, 1]])  # the pixel under 255 is not scored
    metric = _metric(meta, include_background=True)
    metric.process({}, [_sample(pred, gt)])
    result = metric.compute_metrics(metric.results)
    assert result['Dice.background'] == pytest.approx(100.0)
    assert result['Dice.a'] == pytest.approx(100 * 2 * 1 / 3)
    assert result['Dice.b'] == pytest.approx(100 * 2 * 2 / 5)
    assert result['mDice'] == pytest.approx(100 * (1 + 2 / 3 + 4 / 5) / 3)
    assert result['IoU.b'] == pytest.approx(100 * 2 / 3)


def test_results_stay_small():
    metric = _metric()
    metric.process({}, _large_and_tiny_samples())
    for result in metric.results:
        assert set(result) == {'Dice', 'IoU', 'HD95', 'subset', 'in_mm'}
        assert len(result['Dice']) == 1


def test_argument_and_input_checks():
    with pytest.raises(ValueError, match="empty_hd95 must be one of.*'zero'"):
        MedicalMetric(empty_hd95='zero')
    with pytest.raises(ValueError, match='include_background must be a bool'):
        MedicalMetric(include_background=1)
    with pytest.raises(ValueError, match="dataset_meta must hold 'classes'"):
        MedicalMetric().process({}, _large_and_tiny_samples())
    metric = _metric()
    bad = _sample(np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64))
    with pytest.raises(ValueError, match=r'same size.*\(4, 4\) and \(4, 5\)'):
        metric.process({}, [bad])
    bad = _sample(
        np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64), spacing=(1.0, 1.0, 2.0))
    with pytest.raises(ValueError, match='spacing of .* must be 2 positive'):
        metric.process({}, [bad])
    with pytest.raises(ValueError, match='no class left to score'):
        _metric(dict(classes=('background', ))).process({}, [])


def _log_lines(monkeypatch):
    """Collect what the metric logs (print_log) as a list of strings."""
    from mmseg_fusion.evaluation.metrics import medical_metric
    lines = []
    monkeypatch.setattr(
        medical_metric,
        'print_log',
        lambda message, logger=None, **kwargs: lines.append(message))
    return lines


@pytest.mark.parametrize('kwargs, header, columns', [
    (dict(), 'Dice, IoU, HD95', ['Dice', 'IoU', 'HD95']),
    (dict(with_precision_recall=True), 'Dice, IoU, HD95, Precision, Recall',
     ['Dice', 'IoU', 'HD95', 'Precision', 'Recall']),
])
def test_table_header_names_its_columns(monkeypatch, kwargs, header, columns):
    lines = _log_lines(monkeypatch)
    metric = _metric(**kwargs)
    metric.process({}, _large_and_tiny_samples())
    metric.evaluate(2)
    title, table = lines
    assert title.startswith(f'per image {header} averaged over images')
    assert 'HD95 in pixels' in title
    header_row = [c.strip() for c in table.strip().splitlines()[1].split('|')[1:-1]]
    assert header_row == ['Subset', 'Class', 'Images'] + columns


def test_output_dir_writes_png_masks_named_after_images(tmp_path):
    out = tmp_path / 'pred'
    # mmseg's tools/test.py passes keep_results=True with --out: it must be accepted.
    metric = _metric(output_dir=str(out), keep_results=True)
    samples = _large_and_tiny_samples()
    samples.append(
        _sample(_pixel((8, 8), 1, 1), _pixel((8, 8), 1, 1), 'a.png', subset='Kvasir'))
    metric.process({}, samples)
    assert sorted(p.relative_to(out).as_posix()
                  for p in out.rglob('*.png')) == ['Kvasir/a.png', 'a.png', 'b.png']
    written = np.asarray(Image.open(out / 'b.png'))
    assert written.dtype == np.uint8
    np.testing.assert_array_equal(written, _pixel((8, 8), 7, 7))
    assert metric.evaluate(3)['mDice'] == pytest.approx(100 * 2 / 3)

    # The same image name twice in one evaluation would overwrite a prediction.
    with pytest.raises(ValueError, match='would write the prediction .*a.png'):
        metric.process({}, [samples[0], samples[0]])


def test_format_only_writes_without_ground_truth(tmp_path, monkeypatch):
    lines = _log_lines(monkeypatch)
    metric = _metric(output_dir=str(tmp_path), format_only=True)
    sample = _sample(_pixel((4, 4), 0, 0), _pixel((4, 4), 0, 0), 'c.png')
    del sample['gt_sem_seg']
    metric.process({}, [sample])
    assert metric.evaluate(1) == {}
    assert (tmp_path / 'c.png').is_file()
    assert '1 predictions written to' in lines[-1]


def test_output_arguments_checked():
    with pytest.raises(ValueError, match='format_only=True .* needs an output_dir'):
        MedicalMetric(format_only=True)
    with pytest.raises(ValueError, match='keep_results must be a bool'):
        MedicalMetric(keep_results='yes')
    assert 'output_dir' in METRICS.get('MedicalMetric').__init__.__code__.co_varnames
