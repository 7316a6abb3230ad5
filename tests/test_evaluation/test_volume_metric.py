import json
import math
import random

import numpy as np
import pytest
import torch
from mmseg.registry import METRICS

from mmseg_fusion.evaluation import VolumeMetric

META = dict(classes=('background', 'aorta', 'liver'))
SHAPE = (5, 5)


def _slice(case, index, pred, gt):
    """One slice's data sample as mmseg's SegDataSample.to_dict() gives it."""
    return dict(
        pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
        gt_sem_seg=dict(data=torch.as_tensor(gt)[None]),
        img_path=f'/data/synapse/img_dir/test/{case}_slice{index:03d}.png')


def _case_slices():
    """Two cases of 4 and 2 slices with hand-checked 3-D scores (label maps below).

    case0001 (4 slices): aorta gt = pixel (2, 2) of slice 0, pred = same pixel of
    slice 3 -> Dice 0, HD95 3 slices (1 if the slices were stacked in arrival order
    below: slice 3 arrives first); liver absent from pred and gt.
    case0002 (2 slices): aorta gt = 2x2 block in slices 0 and 1 (8 voxels), pred = the
    block in slice 0 only -> Dice 2 * 4 / 12; surfaces: all voxels of both;
    pred -> gt 0 (x4), gt -> pred 0 (x4) and 1 slice (x4): pooled 95th percentile 1;
    liver predicted at pixel (0, 0) of slice 1 but absent from gt.
    """
    volumes = {}
    pred = np.zeros(SHAPE + (4, ), np.int64)
    gt = np.zeros_like(pred)
    gt[2, 2, 0] = 1
    pred[2, 2, 3] = 1
    volumes['case0001'] = (pred, gt)
    pred = np.zeros(SHAPE + (2, ), np.int64)
    gt = np.zeros_like(pred)
    gt[1:3, 1:3, :] = 1
    pred[1:3, 1:3, 0] = 1
    pred[0, 0, 1] = 2
    volumes['case0002'] = (pred, gt)
    order = [('case0001', 3), ('case0002', 1), ('case0001', 0), ('case0001', 2),
             ('case0002', 0), ('case0001', 1)]
    return [
        _slice(case, k, volumes[case][0][..., k], volumes[case][1][..., k])
        for case, k in order
    ]


def _metric(**kwargs):
    metric = METRICS.build(dict(type='VolumeMetric', **kwargs))
    metric.dataset_meta = META
    return metric


def test_transunet_convention_stacks_shuffled_slices():
    samples = _case_slices()
    metric = _metric()
    metric.process({}, samples[:3])
    metric.process({}, samples[3:])
    result = metric.evaluate(len(samples))
    assert isinstance(metric, VolumeMetric)
    # aorta: case0001 (0, 3), case0002 (2/3, 1)
    assert result['Dice.aorta'] == pytest.approx(100 * (0 + 2 / 3) / 2)
    assert result['HD95.aorta'] == pytest.approx((3 + 1) / 2)
    # liver: case0001 both empty -> (0, 0); case0002 pred only -> (1, 0)
    assert result['Dice.liver'] == pytest.approx(50.0)
    assert result['HD95.liver'] == pytest.approx(0.0)
    assert result['mDice'] == pytest.approx((100 / 3 + 50) / 2)
    assert result['mHD95'] == pytest.approx(1.0)
    assert 'HD95_skipped' not in result and 'Dice.background' not in result


def test_strict_convention():
    pred = np.zeros(SHAPE, np.int64)
    gt = np.zeros(SHAPE, np.int64)
    gt[1, 1] = 2  # liver missed; aorta absent from both
    samples = [_slice('case0003', 0, pred, gt)]
    strict = _metric(empty_convention='strict')
    strict.process({}, samples)
    result = strict.compute_metrics(strict.results)
    assert result['Dice.aorta'] == pytest.approx(100.0)
    assert result['HD95.aorta'] == pytest.approx(0.0)
    assert result['Dice.liver'] == pytest.approx(0.0)
    assert math.isnan(result['HD95.liver'])
    assert result['mHD95'] == pytest.approx(0.0)
    assert result['HD95_skipped'] == 1.0
    transunet = _metric()
    transunet.process({}, samples)
    result = transunet.compute_metrics(transunet.results)
    assert result['Dice.aorta'] == 0.0 and result['HD95.liver'] == 0.0


def test_spacing_file(tmp_path):
    spacing_file = tmp_path / 'spacing.json'
    spacing_file.write_text(
        json.dumps({
            'case0001': [1.0, 1.0, 5.0],
            'case0002': [2.0, 2.0, 3.0]
        }))
    samples = _case_slices()
    metric = _metric(spacing_file=str(spacing_file), use_spacing=True)
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    # case0001: 3 slices of 5 mm; case0002: 1 slice of 3 mm
    assert result['HD95.aorta'] == pytest.approx((15.0 + 3.0) / 2)
    unused = _metric(spacing_file=str(spacing_file))
    unused.process({}, samples)
    assert unused.compute_metrics(unused.results)['HD95.aorta'] == pytest.approx(2.0)
    spacing_file.write_text(json.dumps({'case0001': [1.0, 1.0, 5.0]}))
    missing = _metric(spacing_file=str(spacing_file), use_spacing=True)
    missing.process({}, samples)
    with pytest.raises(ValueError, match="case 'case0002' is missing"):
        missing.compute_metrics(missing.results)


def _with_metainfo(sample, spacings):
    """``sample`` as SynapseSliceDataset and PackSegInputs give it: case, slice index
    and spacing in the metainfo, under a file name no case_pattern would parse."""
    case, rest = sample['img_path'].rsplit('/', 1)[1].split('_slice')
    row, col, between = spacings[case]
    return dict(
        sample,
        img_path=f'/elsewhere/{rest}',
        case=case,
        slice_index=int(rest[:3]),
        spacing=(row, col),
        slice_spacing=between)


def test_case_index_and_spacing_come_from_the_sample_metainfo():
    spacings = {'case0001': (1.0, 1.0, 5.0), 'case0002': (2.0, 2.0, 3.0)}
    samples = [_with_metainfo(s, spacings) for s in _case_slices()]
    metric = _metric(use_spacing=True)  # no spacing_file
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    # as test_spacing_file: case0001 3 slices of 5 mm, case0002 1 slice of 3 mm
    assert result['HD95.aorta'] == pytest.approx((15.0 + 3.0) / 2)
    assert result['Dice.aorta'] == pytest.approx(100 * (0 + 2 / 3) / 2)
    voxels = _metric()
    voxels.process({}, samples)
    assert voxels.compute_metrics(voxels.results)['HD95.aorta'] == pytest.approx(2.0)

    # the slices of one case must agree on the spacing
    clash = [dict(samples[0], spacing=(9.0, 9.0))] + samples[1:]
    metric = _metric(use_spacing=True)
    metric.process({}, clash)
    with pytest.raises(ValueError, match="case 'case0001' must carry one spacing"):
        metric.compute_metrics(metric.results)
    with pytest.raises(ValueError, match='must be 2 and 1 positive numbers'):
        _metric(use_spacing=True).process({}, [dict(samples[0], slice_spacing=0)])
    with pytest.raises(ValueError, match='case must be a str and slice_index an int'):
        _metric().process({}, [dict(samples[0], slice_index='3')])


def test_use_spacing_without_any_spacing_names_the_ways_to_give_it():
    metric = _metric(use_spacing=True)
    metric.process({}, _case_slices())
    with pytest.raises(
            ValueError,
            match="case 'case0001' carries no spacing; use "
            'SynapseSliceDataset'):
        metric.compute_metrics(metric.results)


def test_results_gathered_from_ranks_in_any_order():
    samples = _case_slices()
    ranks = [_metric(), _metric()]
    ranks[0].process({}, samples[::2])
    ranks[1].process({}, samples[1::2])
    gathered = ranks[1].results + ranks[0].results
    random.Random(0).shuffle(gathered)
    single = _metric()
    single.process({}, samples)
    assert ranks[0].compute_metrics(gathered) == pytest.approx(
        single.compute_metrics(single.results))
    stored = single.results[0]
    assert stored['pred'].dtype == np.uint8 and stored['pred'].shape == SHAPE
    assert (stored['case'], stored['index']) == ('case0001', 3)


def test_argument_and_input_checks(tmp_path):
    with pytest.raises(ValueError, match="named groups 'case' and 'index'"):
        VolumeMetric(case_pattern=r'(?P<case>.+)_(\d+)')
    with pytest.raises(ValueError, match='spacing_file must be an existing JSON'):
        VolumeMetric(spacing_file=str(tmp_path / 'none.json'), use_spacing=True)
    with pytest.raises(ValueError, match='empty_convention must be one of'):
        VolumeMetric(empty_convention='nnunet')
    metric = _metric()
    empty = np.zeros(SHAPE, np.int64)
    with pytest.raises(ValueError, match="does not match the file name 'case0001_045'"):
        metric.process(
            {}, [dict(_slice('c', 0, empty, empty), img_path='/x/case0001_045.png')])
    metric.process({}, [_slice('case0001', 0, empty, empty)] * 2)
    with pytest.raises(ValueError, match=r'slice indices \[0\] more than once'):
        metric.compute_metrics(metric.results)


def test_gaps_in_slice_indices_are_stacked_without_filling():
    empty = np.zeros(SHAPE, np.int64)
    organ = empty.copy()
    organ[2, 2] = 1
    metric = _metric()
    metric.process(
        {}, [_slice('case0004', 7, organ, empty),
             _slice('case0004', 2, empty, organ)])
    result = metric.compute_metrics(metric.results)
    assert result['HD95.aorta'] == pytest.approx(1.0)  # adjacent in the volume


def test_output_dir_writes_one_png_per_slice(tmp_path):
    out = tmp_path / 'pred'
    metric = _metric(output_dir=str(out), keep_results=True)
    slices = _case_slices()
    metric.process({}, slices)
    names = sorted(p.name for p in out.glob('*.png'))
    assert names == sorted(s['img_path'].rsplit('/', 1)[1] for s in slices)
    from PIL import Image
    written = np.asarray(Image.open(out / 'case0002_slice001.png'))
    assert written[0, 0] == 2 and written.sum() == 2  # the liver pixel
    assert 'mDice' in metric.evaluate(len(slices))


def test_format_only_needs_no_ground_truth(tmp_path):
    metric = _metric(output_dir=str(tmp_path), format_only=True)
    slices = _case_slices()
    for data_sample in slices:
        del data_sample['gt_sem_seg']
    metric.process({}, slices)
    assert metric.evaluate(len(slices)) == {}
    assert len(list(tmp_path.glob('*.png'))) == len(slices)
    with pytest.raises(ValueError, match='needs an output_dir'):
        VolumeMetric(format_only=True)
