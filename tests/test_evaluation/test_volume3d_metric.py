import csv
import math
import uuid

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub, MMLogger
from mmseg.registry import METRICS

from mmseg_fusion.evaluation import Volume3DMetric
from mmseg_fusion.evaluation.functional import dice_score
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from tests.shared_data import CT_SAMPLE, TOTALSEG_TO_BTCV

META = dict(classes=('background', 'spleen', 'liver', 'aorta'))
SPACING_A = (3.0, 0.8, 1.5)


def _sample(case_id, pred, gt=None, spacing=(1.0, 1.0, 1.0), affine=None, as_dict=True):
    """One case as the segmentor returns it; as a dict like mmengine's evaluator
    passes it (``to_dict()``) unless ``as_dict`` is False."""
    sample = VolumeSegDataSample(
        metainfo=dict(
            case_id=case_id,
            img_path=f'/data/imagesTs/{case_id}.nii.gz',
            original_spacing=spacing,
            original_shape=pred.shape,
            original_affine=np.diag(list(spacing) +
                                    [1.0]) if affine is None else affine))
    sample.pred_sem_seg = VolumeData(data=torch.as_tensor(pred)[None])
    if gt is not None:
        sample.gt_sem_seg = VolumeData(data=torch.as_tensor(gt)[None])
    return sample.to_dict() if as_dict else sample


def _cube(shape, start, side=4):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + side) for s in start)] = True
    return mask


def _two_cases():
    """Case A (spacing 3 x 0.8 x 1.5 mm): spleen = two 4^3 cubes one voxel apart
    along axis 0 (Dice 3/4, HD95 3 mm both ways, NSD at 1 mm 80/112: see
    test_functional.test_offset_cubes_by_hand_anisotropic); liver predicted only;
    aorta in neither. Case B (1 mm): spleen exact; liver in the label only; aorta
    predicted only."""
    shape = (12, 12, 12)
    pred_a = np.zeros(shape, np.int64)
    gt_a = np.zeros(shape, np.int64)
    gt_a[_cube(shape, (1, 1, 1))] = 1
    pred_a[_cube(shape, (2, 1, 1))] = 1
    pred_a[_cube(shape, (7, 7, 7), side=2)] = 2
    pred_b = np.zeros(shape, np.int64)
    gt_b = np.zeros(shape, np.int64)
    pred_b[_cube(shape, (1, 1, 1))] = 1
    gt_b[_cube(shape, (1, 1, 1))] = 1
    gt_b[_cube(shape, (7, 7, 1), side=3)] = 2
    pred_b[_cube(shape, (7, 7, 7), side=2)] = 3
    return [
        _sample('case_b', pred_b, gt_b),
        _sample('case_a', pred_a, gt_a, spacing=SPACING_A)
    ]


def _metric(**kwargs):
    metric = METRICS.build(dict(type='Volume3DMetric', **kwargs))
    metric.dataset_meta = META
    return metric


def _fresh_message_hub(**info):
    hub = MessageHub.get_instance(f'volume3d-test-{uuid.uuid4()}')
    for key, value in info.items():
        hub.update_info(key, value)
    return hub


def _read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


SPLEEN_NSD = 100 * (80 / 112 + 1) / 2


@pytest.mark.parametrize('convention, expected', [
    ('nnunet',
     dict(
         Dice=(87.5, 0.0, 0.0),
         HD95=(1.5, math.nan, math.nan),
         NSD=(SPLEEN_NSD, 0.0, 0.0),
         HD95_skipped=3.0)),
    ('monai',
     dict(
         Dice=(87.5, 0.0, math.nan),
         HD95=(1.5, math.nan, math.nan),
         NSD=(SPLEEN_NSD, 0.0, math.nan),
         HD95_skipped=1.0)),
    ('transunet',
     dict(
         Dice=(87.5, 50.0, 50.0),
         HD95=(1.5, 0.0, 0.0),
         NSD=(SPLEEN_NSD, 50.0, 50.0),
         HD95_skipped=None)),
])
def test_empty_conventions_by_hand(tmp_path, convention, expected):
    metric = _metric(empty_convention=convention, csv_dir=str(tmp_path))
    assert isinstance(metric, Volume3DMetric)
    samples = _two_cases()
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    assert all(set(r) == {'case_id', 'Dice', 'HD95', 'NSD'} for r in metric.results)
    result = metric.evaluate(2)
    for score in ('Dice', 'HD95', 'NSD'):
        values = [result[f'{score}.{organ}'] for organ in META['classes'][1:]]
        assert values == pytest.approx(list(expected[score]), nan_ok=True)
        assert result[f'm{score}'] == pytest.approx(np.nanmean(expected[score]))
    if expected['HD95_skipped'] is None:
        assert 'HD95_skipped' not in result
    else:
        assert result['HD95_skipped'] == expected['HD95_skipped']
    assert 'Dice.background' not in result


def test_hd95_method_and_nsd_tolerance():
    # a 5-voxel line of liver against its end voxel, 2.5 mm along the line:
    # medpy 3.75 steps, monai 3.8 steps (test_functional)
    pred = np.zeros((3, 3, 6), np.int64)
    gt = np.zeros_like(pred)
    pred[1, 1, :5] = 2
    gt[1, 1, 0] = 2
    sample = _sample('line', pred, gt, spacing=(0.8, 0.8, 2.5))
    for method, steps in (('medpy', 3.75), ('monai', 3.8)):
        metric = _metric(hd95_method=method, nsd_tolerance=2.5)
        metric.process({}, [sample])
        assert metric.results[0]['HD95'][1] == pytest.approx(steps * 2.5)
        # within 2.5 mm: 2 of the line's 5 surface voxels and the end voxel
        assert metric.results[0]['NSD'][1] == pytest.approx(3 / 6)
    per_organ = _metric(nsd_tolerance=dict(spleen=1.0, liver=5.0, aorta=2.0))
    per_organ.process({}, [sample])
    assert per_organ.results[0]['NSD'][1] == pytest.approx(4 / 6)


@pytest.mark.filterwarnings('ignore::UserWarning', 'ignore::FutureWarning')
def test_monai_convention_agrees_with_monai_functions(tmp_path):
    from monai.metrics import (compute_dice, compute_hausdorff_distance,
                               compute_surface_dice)
    samples = _two_cases()
    _fresh_message_hub()  # no loop stage left by an earlier test's runner
    metric = _metric(
        empty_convention='monai', hd95_method='monai', csv_dir=str(tmp_path))
    metric.process({}, samples)
    metric.evaluate(2)
    rows = {row['case_id']: row for row in _read_csv(tmp_path / 'per_case.csv')}
    organs = META['classes'][1:]
    for sample in samples:
        pred = sample['pred_sem_seg']['data']
        gt = sample['gt_sem_seg']['data']
        one_hot = [
            torch.nn.functional.one_hot(x.long(), 4).permute(0, 4, 1, 2, 3)
            for x in (pred, gt)
        ]
        spacing = sample['original_spacing']
        monai = dict(
            Dice=100 * compute_dice(*one_hot, include_background=False)[0],
            HD95=compute_hausdorff_distance(*one_hot, percentile=95,
                                            spacing=spacing)[0],
            NSD=100 * compute_surface_dice(*one_hot, [1.0] * 3, spacing=spacing)[0])
        gt_empty = [not (gt == index).any() for index in range(1, 4)]
        row = rows[sample['case_id']]
        for score, values in monai.items():
            for organ, value, empty in zip(organs, values.tolist(), gt_empty):
                ours = float(row[f'{score}.{organ}'])
                if empty:  # MONAI's Dice: NaN; its NSD 0 or NaN, its HD inf or NaN
                    assert math.isnan(ours)
                elif not math.isfinite(value):  # MONAI's HD95 of a missed organ
                    assert score == 'HD95' and math.isnan(ours)
                else:
                    assert ours == pytest.approx(value, abs=1e-4)


def test_per_case_csv(tmp_path):
    _fresh_message_hub()
    metric = _metric(csv_dir=str(tmp_path / 'csv'))
    metric.process({}, _two_cases())
    metric.evaluate(2)
    rows = _read_csv(tmp_path / 'csv' / 'per_case.csv')
    assert list(rows[0]) == ['case_id'] + [
        f'{score}.{organ}' for score in ('Dice', 'HD95', 'NSD')
        for organ in ('spleen', 'liver', 'aorta')
    ]
    assert [row['case_id'] for row in rows] == ['case_a', 'case_b']
    case_a, case_b = rows
    assert case_a['Dice.spleen'] == '75.0000' and case_a['HD95.spleen'] == '3.0000'
    assert float(case_a['NSD.spleen']) == pytest.approx(100 * 80 / 112, abs=1e-4)
    assert case_a['Dice.liver'] == '0.0000' and case_a['HD95.liver'] == 'nan'
    assert case_a['Dice.aorta'] == 'nan'
    assert case_b['Dice.spleen'] == '100.0000' and case_b['HD95.spleen'] == '0.0000'
    # a second evaluation never replaces the first file
    metric.process({}, _two_cases())
    metric.evaluate(2)
    assert (tmp_path / 'csv' /
            'per_case_1.csv').read_text() == (tmp_path / 'csv' /
                                              'per_case.csv').read_text()


def test_csv_goes_to_the_runner_log_folder(tmp_path):
    log_dir = tmp_path / 'work_dir' / '20250101_000000'
    log_dir.mkdir(parents=True)
    logger = MMLogger.get_instance(
        f'volume3d-test-{uuid.uuid4()}', log_file=str(log_dir / '20250101_000000.log'))
    _fresh_message_hub(loop_stage='val', iter=1999)
    metric = _metric()
    metric.process({}, _two_cases())
    metric.evaluate(2)
    assert (log_dir / 'per_case_val_iter2000.csv').is_file()
    _fresh_message_hub(loop_stage='test')
    metric.process({}, _two_cases())
    metric.evaluate(2)
    assert len(_read_csv(log_dir / 'per_case_test.csv')) == 2
    assert 'per_case_test.csv' in (log_dir / '20250101_000000.log').read_text()
    for handler in logger.handlers:
        handler.close()
    MMLogger.get_instance(f'volume3d-test-{uuid.uuid4()}')  # no log file
    metric.process({}, _two_cases())
    assert metric.evaluate(2)['Dice.spleen'] == pytest.approx(87.5)
    assert sorted(p.name for p in log_dir.iterdir()) == [
        '20250101_000000.log', 'per_case_test.csv', 'per_case_val_iter2000.csv'
    ]


def test_prediction_written_as_nifti_with_the_original_affine(tmp_path):
    # an oblique, flipped affine: the file must carry it unchanged
    angle = 0.3
    affine = np.array([[0, 0.8 * math.cos(angle), -2.5 * math.sin(angle), -100.5],
                       [-0.9, 0, 0, 40.25],
                       [0, 0.8 * math.sin(angle), 2.5 * math.cos(angle), 7.0],
                       [0, 0, 0, 1]])
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, size=(6, 7, 5))
    out = tmp_path / 'pred'
    metric = _metric(output_dir=str(out), keep_results=True)
    metric.process({}, [
        _sample(
            'case_x', pred, pred, spacing=(0.9, 0.8, 2.5), affine=affine, as_dict=False)
    ])
    image = nib.load(str(out / 'case_x.nii.gz'))
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(image.dataobj), pred)
    np.testing.assert_allclose(image.affine, affine, atol=1e-6)
    np.testing.assert_allclose(image.get_qform(), affine, atol=1e-5)
    assert int(image.header['sform_code']) == int(image.header['qform_code']) == 1
    assert metric.evaluate(1)['mDice'] == pytest.approx(100.0)
    with pytest.raises(FileExistsError, match=r'case_x\.nii\.gz already exists'):
        metric.process({}, [_sample('case_x', pred, pred, affine=affine)])


def test_format_only_writes_without_labels(tmp_path):
    pred = np.zeros((4, 4, 4), np.int64)
    pred[1:3, 1:3, 1:3] = 2
    metric = _metric(output_dir=str(tmp_path / 'out'), format_only=True)
    metric.process({}, [_sample('unlabelled_01', pred), _sample('unlabelled_02', pred)])
    assert metric.evaluate(2) == {}
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
        'unlabelled_01.nii.gz', 'unlabelled_02.nii.gz'
    ]
    assert not list(tmp_path.glob('**/*.csv'))


def test_bad_input_names_the_case(tmp_path):
    pred = np.zeros((4, 4, 4), np.int64)
    metric = _metric()
    with pytest.raises(
            ValueError, match=r"case 'c1'.*same shape, got \(4, 4, 4\) "
            r'and \(4, 4, 5\)'):
        metric.process({}, [_sample('c1', pred, np.zeros((4, 4, 5), np.int64))])
    sample = _sample('c2', pred, pred)
    del sample['original_spacing']
    with pytest.raises(ValueError, match="case 'c2' has no original_spacing"):
        metric.process({}, [sample])
    with pytest.raises(ValueError, match="original_spacing of case 'c3' must be 3"):
        metric.process({}, [_sample('c3', pred, pred, spacing=(1.0, 0.0, 1.0))])
    with pytest.raises(ValueError, match=r"case 'c4'.*pred_sem_seg\['data'\] must be"):
        metric.process({}, [
            dict(_sample('c4', pred, pred), pred_sem_seg=dict(data=torch.zeros(4, 4)))
        ])
    with pytest.raises(ValueError, match=r"case 'c5'.*integer class ids"):
        metric.process({}, [
            dict(
                _sample('c5', pred, pred),
                pred_sem_seg=dict(data=torch.zeros(1, 4, 4, 4)))
        ])
    writer = _metric(output_dir=str(tmp_path))
    sample = _sample('c6', pred, pred)
    del sample['original_affine']
    with pytest.raises(ValueError, match="case 'c6' has no original_affine"):
        writer.process({}, [sample])
    sample = dict(_sample('c7', pred, pred), original_shape=(4, 4, 8))
    with pytest.raises(ValueError, match=r"case 'c7'.*original_shape \(4, 4, 8\)"):
        writer.process({}, [sample])
    assert not list(tmp_path.iterdir())
    metric = _metric()
    metric.process({}, [_sample('same', pred, pred)] * 2)
    with pytest.raises(ValueError, match=r"case ids must be unique, got \['same'\]"):
        metric.compute_metrics(metric.results)
    with pytest.raises(ValueError, match='must carry case_id or img_path'):
        metric.process({}, [dict(gt_sem_seg=None)])
    fallback = _metric()
    fallback.process({}, [dict(_sample('x', pred, pred), case_id=None)])
    assert fallback.results[0]['case_id'] == 'x'


def test_argument_checks():
    with pytest.raises(ValueError, match='empty_convention must be one of'):
        Volume3DMetric(empty_convention='strict')
    with pytest.raises(ValueError, match='hd95_method must be one of'):
        Volume3DMetric(hd95_method='max')
    with pytest.raises(ValueError, match='nsd_tolerance must be a finite number'):
        Volume3DMetric(nsd_tolerance=-1)
    with pytest.raises(ValueError, match=r"nsd_tolerance\['liver'\] must be"):
        Volume3DMetric(nsd_tolerance=dict(liver=math.nan))
    with pytest.raises(ValueError, match='format_only=True .* needs an output_dir'):
        Volume3DMetric(format_only=True)
    with pytest.raises(ValueError, match='ignore_index must be an int'):
        Volume3DMetric(ignore_index='255')
    metric = _metric(nsd_tolerance=dict(spleen=1.0, livr=2.0))
    with pytest.raises(
            ValueError, match=r"missing \['liver', 'aorta'\], unknown "
            r"\['livr'\]"):
        metric.organs()


def test_ignore_index_voxels_are_not_scored():
    pred = np.zeros((5, 5, 5), np.int64)
    gt = np.zeros_like(pred)
    gt[1:4, 1:4, 1:4] = 1
    gt[1:4, 1:4, 3] = 255  # unlabelled slab, predicted as spleen
    pred[1:4, 1:4, 1:4] = 1
    metric = _metric()
    metric.process({}, [_sample('ignored', pred, gt)])
    assert metric.results[0]['Dice'][0] == pytest.approx(1.0)
    assert metric.results[0]['HD95'][0] == pytest.approx(0.0)


BTCV_CLASSES = ('background', 'spleen', 'right kidney', 'left kidney', 'gallbladder',
                'esophagus', 'liver', 'stomach', 'aorta', 'inferior vena cava',
                'portal and splenic veins', 'pancreas', 'right adrenal gland',
                'left adrenal gland')


@pytest.mark.skipif(
    not (CT_SAMPLE / 'example_seg.nii.gz').is_file(),
    reason=f'real CT sample not found in {CT_SAMPLE}')
@pytest.mark.filterwarnings('ignore::UserWarning', 'ignore::FutureWarning')
def test_real_ct_label_with_the_liver_shifted_by_one_voxel(tmp_path):
    from monai.metrics import (compute_dice, compute_hausdorff_distance,
                               compute_surface_dice)
    image = nib.load(str(CT_SAMPLE / 'example_seg.nii.gz'))
    totalseg = np.asarray(image.dataobj)
    gt = np.zeros(totalseg.shape, np.int64)
    for pair in TOTALSEG_TO_BTCV.split(','):
        source, target = (int(v) for v in pair.split(':'))
        gt[totalseg == source] = target
    liver = gt == 6
    assert not liver[-1].any()
    shifted = np.zeros_like(liver)
    shifted[1:] = liver[:-1]  # one voxel along the first axis: 3 mm
    pred = gt.copy()
    pred[liver] = 0
    pred[shifted] = 6
    spacing = tuple(float(s) for s in image.header.get_zooms())
    assert spacing == (3.0, 3.0, 3.0)
    sample = _sample('s0011', pred, gt, spacing=spacing, affine=image.affine)
    metric = METRICS.build(
        dict(
            type='Volume3DMetric',
            nsd_tolerance=3.0,
            output_dir=str(tmp_path / 'out'),
            csv_dir=str(tmp_path)))
    metric.dataset_meta = dict(classes=BTCV_CLASSES)
    metric.process({}, [sample])
    result = metric.evaluate(1)
    # the liver: Dice by counting, every surface distance 0 or one slice (3 mm)
    overlap = int((liver & shifted).sum())
    assert result['Dice.liver'] == pytest.approx(100 * overlap / liver.sum())
    assert result['HD95.liver'] == pytest.approx(3.0)
    assert result['NSD.liver'] == pytest.approx(100.0)
    # the esophagus is absent from this slab: NaN (nnU-Net), left out of the means
    assert math.isnan(result['Dice.esophagus']) and result['HD95_skipped'] == 0
    for index, organ in enumerate(BTCV_CLASSES[1:], start=1):
        if organ in ('liver', 'esophagus'):
            continue
        expected = 100 * dice_score(pred == index, gt == index)
        assert result[f'Dice.{organ}'] == pytest.approx(expected)
        if not ((gt == index) & (shifted | liver)).any():  # untouched by the shift
            assert (result[f'Dice.{organ}'], result[f'HD95.{organ}'],
                    result[f'NSD.{organ}']) == pytest.approx((100.0, 0.0, 100.0))
    # the same numbers from MONAI's functions (HD95 as MONAI defines it), for the
    # liver, the aorta and the absent esophagus (MONAI is slow on all 13 organs)
    checked = (6, 8, 5)
    one_hot = [
        torch.stack([torch.as_tensor(x == i) for i in (0, ) + checked])[None]
        for x in (pred, gt)
    ]
    monai_metric = METRICS.build(
        dict(type='Volume3DMetric', nsd_tolerance=1.0, hd95_method='monai'))
    monai_metric.dataset_meta = dict(classes=BTCV_CLASSES)
    monai_metric.process({}, [sample])
    ours = monai_metric.results[0]
    monai = dict(
        Dice=compute_dice(*one_hot, include_background=False)[0],
        HD95=compute_hausdorff_distance(*one_hot, percentile=95, spacing=spacing)[0],
        NSD=compute_surface_dice(*one_hot, [1.0] * 3, spacing=spacing)[0])
    for score, values in monai.items():
        assert [ours[score][i - 1] for i in checked] == pytest.approx(
            values.tolist(), abs=1e-5, nan_ok=True)
    # the prediction file lies over the CT: same affine, same voxels
    written = nib.load(str(tmp_path / 'out' / 's0011.nii.gz'))
    np.testing.assert_array_equal(np.asarray(written.dataobj), pred)
    np.testing.assert_allclose(written.affine, image.affine, atol=1e-6)
    assert written.shape == nib.load(str(CT_SAMPLE / 'example_ct_sm.nii.gz')).shape
