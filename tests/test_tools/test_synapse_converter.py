"""Tests for tools/dataset_converters/synapse.py (Synapse / BTCV -> mmseg layout)."""
import json
import math
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.scripts import load_script
from tests.shared_data import (CT_SAMPLE, TOTALSEG_TO_BTCV, needs_ct_sample,
                               write_btcv_layout)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = CT_SAMPLE

# Synapse class -> the TotalSegmentator id it must come from.
SYNAPSE_FROM_TS = {1: 52, 2: 4, 3: 3, 4: 2, 5: 5, 6: 7, 7: 1, 8: 6}
SLICE_NAME = re.compile(r'(?P<case>.+)_slice(?P<index>\d+)')

converter = load_script('tools/dataset_converters/synapse.py')


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _stack(out: Path, kind: str, split: str, case: str) -> np.ndarray:
    """Stack a case's PNG slices along the last axis, in slice-index order."""
    names = sorted((out / kind / split).glob(f'{case}_slice*.png'))
    return np.stack([_png(name) for name in names], axis=-1)


def test_default_case_lists_are_transunet():
    assert converter.TRAIN_CASES == (5, 6, 7, 9, 10, 21, 23, 24, 26, 27, 28, 30, 31, 33,
                                     34, 37, 39, 40)
    assert converter.TEST_CASES == (1, 2, 3, 4, 8, 22, 25, 29, 32, 35, 36, 38)
    assert not set(converter.TRAIN_CASES) & set(converter.TEST_CASES)


def test_btcv_to_synapse_map():
    assert converter.BTCV_TO_SYNAPSE == {
        1: 7,
        2: 4,
        3: 3,
        4: 2,
        5: 0,
        6: 5,
        7: 8,
        8: 1,
        9: 0,
        10: 0,
        11: 6,
        12: 0,
        13: 0
    }


def test_parse_label_map():
    assert converter.parse_label_map(' 15:5, 52:8 ,0:0') == {15: 5, 52: 8, 0: 0}


@pytest.mark.parametrize('text, bad', [('1:1,x:2', 'x:2'), ('1:1,3', '3'),
                                       ('1:2:3', '1:2:3'), ('1:14', '1:14'),
                                       ('-1:1', '-1:1'), ('1:1,1:2', '1:2'),
                                       ('1:1,', "''")])
def test_parse_label_map_names_bad_entry(text, bad):
    with pytest.raises(ValueError, match=re.escape(bad)):
        converter.parse_label_map(text)


def test_cli_rejects_bad_label_map(tmp_path, capsys):
    with pytest.raises(SystemExit):
        converter.main([str(tmp_path), '--label-map', '1:1,7-11'])
    assert '7-11' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_cli_rejects_case_in_both_splits(tmp_path, capsys):
    with pytest.raises(SystemExit):
        converter.main([str(tmp_path), '--train-cases', '1', '2', '--test-cases', '2'])
    assert '[2]' in capsys.readouterr().err


def test_help_explains_layout_and_png_suffix(capsys):
    with pytest.raises(SystemExit):
        converter.main(['--help'])
    text = capsys.readouterr().out
    assert 'RawData/Training/img/img0001.nii.gz' in text
    assert "img_suffix='.png'" in text


def test_scale_hu_clips_and_rounds():
    hu = np.array([-1000, -125, -85, 75, 274, 275, 3000], dtype=np.float32)
    assert converter.scale_hu(hu).tolist() == [0, 0, 26, 128, 254, 255, 255]
    assert converter.scale_hu(hu).dtype == np.uint8


@pytest.mark.parametrize('codes, expected', [
    (('R', 'A', 'S'), (True, True, True)),
    (('L', 'P', 'S'), (True, False, False)),
    (('L', 'A', 'I'), (True, True, False)),
    (('A', 'R', 'S'), (False, True, True)),
    (('P', 'L', 'S'), (False, False, False)),
])
def test_radiological_orientation(codes, expected):
    assert tuple(converter.radiological_orientation(codes)) == expected


@pytest.mark.parametrize('codes', [('A', 'S', 'R'), ('R', 'L', 'S'), (None, 'A', 'S')])
def test_radiological_orientation_rejects_non_axial(codes):
    with pytest.raises(ValueError, match='axial'):
        converter.radiological_orientation(codes)


def test_missing_nibabel_is_explained(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'nibabel', None)
    with pytest.raises(ImportError, match='pip install nibabel'):
        converter.main([str(tmp_path), '-o', str(tmp_path / 'out')])


def test_missing_case_fails_before_writing(tmp_path):
    sample = (SAMPLE / 'example_ct_sm.nii.gz', SAMPLE / 'example_seg.nii.gz')
    raw = write_btcv_layout(tmp_path / 'raw', {1: sample})
    out = tmp_path / 'out'
    with pytest.raises(FileNotFoundError, match='img0002.nii.gz'):
        converter.main(
            [str(raw), '-o',
             str(out), '--train-cases', '1', '--test-cases', '2'])
    assert not out.exists()


def test_anisotropic_lps_volume(tmp_path):
    """LPS axes: rows must follow the A->P array axis, so spacing swaps row/col."""
    shape = (6, 5, 3)
    image = np.full(shape, -1000, dtype=np.int16)
    label = np.zeros(shape, dtype=np.uint8)
    image[1, 3, 2] = 75
    label[1, 3, 2] = 6  # liver -> Synapse 5
    label[4, 0, 0] = 8  # aorta -> Synapse 1
    affine = np.diag([-0.7, -0.8, 2.5, 1.0])  # array axes point to L, P, S
    (tmp_path / 'nii').mkdir()
    paths = (tmp_path / 'nii' / 'ct.nii.gz', tmp_path / 'nii' / 'seg.nii.gz')
    nib.save(nib.Nifti1Image(image, affine), paths[0])
    nib.save(nib.Nifti1Image(label, affine), paths[1])
    raw = write_btcv_layout(tmp_path / 'raw', {3: paths, 4: paths})
    out = tmp_path / 'out'
    converter.main([
        str(raw / 'RawData' / 'Training'), '-o',
        str(out), '--train-cases', '3', '--test-cases', '4'
    ])

    for split, case in (('train', 'case0003'), ('val', 'case0004')):
        pixels = _stack(out, 'img_dir', split, case)
        labels = _stack(out, 'ann_dir', split, case)
        assert pixels.shape == labels.shape == (5, 6, 3)  # rows: the A/P array axis
        assert pixels[3, 1, 2] == 128 and (pixels == 0).sum() == pixels.size - 1
        assert labels[3, 1, 2] == 5 and labels[0, 4, 0] == 1
        assert (labels > 0).sum() == 2
    spacing = json.loads((out / 'spacing.json').read_text())
    assert spacing == {'case0003': [0.8, 0.7, 2.5], 'case0004': [0.8, 0.7, 2.5]}


@pytest.fixture(scope='module')
def sample_raw(tmp_path_factory) -> Path:
    """The TotalSegmentator slab as case 1 (train) and, again, case 2 (test)."""
    sample = (SAMPLE / 'example_ct_sm.nii.gz', SAMPLE / 'example_seg.nii.gz')
    return write_btcv_layout(tmp_path_factory.mktemp('raw'), {1: sample, 2: sample})


def _convert_sample(raw: Path, out: Path, *extra: str) -> None:
    converter.main([
        str(raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--train-cases', '1', '--test-cases',
        '2', *extra
    ])


@pytest.fixture(scope='module')
def sample_out(sample_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('synapse')
    _convert_sample(sample_raw, out)
    return out


@pytest.mark.slow
@needs_ct_sample
def test_sample_layout(sample_out):
    for split, case in (('train', 'case0001'), ('val', 'case0002')):
        for kind in ('img_dir', 'ann_dir'):
            names = sorted(p.name for p in (sample_out / kind / split).iterdir())
            assert names == [f'{case}_slice{k:03d}.png' for k in range(30)]
            match = SLICE_NAME.fullmatch(names[7][:-4])
            assert (match['case'], int(match['index'])) == (case, 7)
    assert (sample_out / 'splits' / 'train.txt').read_text() == 'case0001\n'
    assert (sample_out / 'splits' / 'val.txt').read_text() == 'case0002\n'
    spacing = json.loads((sample_out / 'spacing.json').read_text())
    assert spacing == {'case0001': [3.0, 3.0, 3.0], 'case0002': [3.0, 3.0, 3.0]}


@pytest.mark.slow
@needs_ct_sample
def test_sample_image_values(sample_out):
    hu = np.asanyarray(nib.load(SAMPLE / 'example_ct_sm.nii.gz').dataobj)
    width, height, depth = hu.shape  # RAS: x -> patient right, y -> anterior
    pixels = _stack(sample_out, 'img_dir', 'train', 'case0001')
    assert pixels.dtype == np.uint8 and pixels.shape == (height, width, depth)
    assert np.array_equal(pixels, _stack(sample_out, 'img_dir', 'val', 'case0002'))
    in_window = np.argwhere((hu > -125) & (hu < 275))
    clipped = np.argwhere((hu < -125) | (hu > 275))
    voxels = [tuple(v) for v in in_window[::4001]] + [tuple(v) for v in clipped[::9001]]
    assert len(voxels) > 8
    for x, y, k in voxels:
        value = min(max(float(hu[x, y, k]), -125.0), 275.0)
        expected = math.floor((value + 125.0) * 255.0 / 400.0 + 0.5)
        # anterior up, patient right on the image's left: row = Y-1-y, col = X-1-x
        assert pixels[height - 1 - y, width - 1 - x, k] == expected
    assert pixels.min() == 0 and pixels.max() == 255  # air and bone are clipped


@pytest.mark.slow
@needs_ct_sample
def test_sample_labels_match_totalsegmentator(sample_out):
    raw = np.asanyarray(nib.load(SAMPLE / 'example_seg.nii.gz').dataobj)
    labels = _stack(sample_out, 'ann_dir', 'train', 'case0001')
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= set(range(9))
    for synapse_id, ts_id in SYNAPSE_FROM_TS.items():
        assert (labels == synapse_id).sum() == (raw == ts_id).sum() > 0, synapse_id
    # esophagus (15), IVC (63), portal/splenic vein (64), adrenals (8, 9), rest -> 0
    assert (labels == 0).sum() == raw.size - sum(
        (raw == ts_id).sum() for ts_id in SYNAPSE_FROM_TS.values())
    assert (raw == 63).sum() > 0 and (raw == 64).sum() > 0
    flipped = raw[::-1, ::-1].transpose(1, 0, 2)
    assert np.array_equal(labels == 5, flipped == 5)

    def centre(synapse_id):
        return np.argwhere(labels == synapse_id)[:, :2].mean(axis=0)

    # radiological view: liver and right kidney left of spleen and left kidney;
    # stomach (anterior) above the kidneys (posterior)
    assert centre(5)[1] < centre(7)[1] and centre(4)[1] < centre(3)[1]
    assert centre(8)[0] < min(centre(3)[0], centre(4)[0])


@pytest.mark.slow
@needs_ct_sample
def test_sample_loads_in_synapse_dataset(sample_out):
    from mmengine.registry import init_default_scope
    from mmseg.datasets import SynapseDataset
    from mmseg.registry import TRANSFORMS

    init_default_scope('mmseg')
    pipeline = [
        TRANSFORMS.build(dict(type=name))
        for name in ('LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs')
    ]
    dataset = SynapseDataset(
        data_root=str(sample_out),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        img_suffix='.png',
        pipeline=pipeline)
    assert len(dataset) == 30
    seen = set()
    for index in range(len(dataset)):
        sample = dataset[index]
        assert tuple(sample['inputs'].shape) == (3, 101, 122)
        seen |= set(sample['data_samples'].gt_sem_seg.data.unique().tolist())
    assert seen == set(range(9))


@pytest.mark.slow
@needs_ct_sample
def test_sample_refuses_non_empty_out_without_force(sample_raw, tmp_path):
    out = tmp_path / 'synapse'
    _convert_sample(sample_raw, out)
    stale = out / 'img_dir' / 'train' / 'case0099_slice000.png'
    stale.write_bytes(b'')
    (out / 'notes.txt').write_text('kept')
    with pytest.raises(FileExistsError, match=f'{re.escape(str(out))}.*--force'):
        _convert_sample(sample_raw, out)
    _convert_sample(sample_raw, out, '--force')
    assert not stale.exists() and (out / 'notes.txt').read_text() == 'kept'
    assert len(list((out / 'ann_dir' / 'val').iterdir())) == 30
