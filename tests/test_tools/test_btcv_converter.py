"""Tests for tools/dataset_converters/btcv.py (BTCV RawData -> the volumetric layout),
on the real TotalSegmentator CT and on small volumes made here."""
import gzip
import json
import os
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mmseg_fusion.utils.abdominal_labels import (BTCV_CLASSES, BTCV_TO_SYNAPSE,
                                                 SYNAPSE_CLASSES, TRANSUNET_TEST_CASES,
                                                 TRANSUNET_TRAIN_CASES)
from tests.scripts import load_script
from tests.shared_data import CT_SAMPLE, REPO, TOTALSEG_TO_BTCV, write_btcv_layout

SCRIPT = REPO / 'tools' / 'dataset_converters' / 'btcv.py'
needs_ct = pytest.mark.skipif(
    not CT_SAMPLE.is_dir(),
    reason=f'real CT sample {CT_SAMPLE} absent (../shared/data beside the clone, or '
    'MMSEG_FUSION_SHARED_DATA)')

converter = load_script('tools/dataset_converters/btcv.py')

# BTCV id -> the TotalSegmentator id it must come from (the sample README's map).
BTCV_FROM_TS = {
    int(b): int(t)
    for t, b in (pair.split(':') for pair in TOTALSEG_TO_BTCV.split(','))
}
ALL_30 = [f'case{n:04d}' for n in (*range(1, 11), *range(21, 41))]


def _sample():
    return (CT_SAMPLE / 'example_ct_sm.nii.gz', CT_SAMPLE / 'example_seg.nii.gz')


def _labels(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def _small_case(folder: Path,
                name: str,
                shape=(6, 5, 4),
                affine=None,
                labels=None) -> tuple:
    """A tiny image/label pair (BTCV ids) written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0]) if affine is None else affine
    image = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    if labels is None:
        labels = np.zeros(shape, np.uint8)
        labels[1, 1, 1], labels[2, 2, 2] = 6, 13
    paths = (folder / f'{name}_ct.nii.gz', folder / f'{name}_seg.nii.gz')
    nib.save(nib.Nifti1Image(image, affine), paths[0])
    nib.save(nib.Nifti1Image(labels, affine), paths[1])
    return paths


# --- splits -------------------------------------------------------------------------


def test_swinunetr_split_on_the_official_cases():
    info = converter.make_splits('swinunetr', ALL_30, 0, 0.2)
    splits = info['splits']
    assert len(splits['train']) == 24 and splits['test'] == []
    assert splits['val'] == [f'case{n:04d}' for n in range(35, 41)]
    assert 'case0034' in splits['train'] and 'case0021' in splits['train']
    assert info['missing'] == info['unassigned'] == []


def test_transunet_split_on_the_official_cases():
    splits = converter.make_splits('transunet', ALL_30, 0, 0.2)['splits']
    assert splits['test'] == [f'case{n:04d}' for n in TRANSUNET_TEST_CASES]
    assert splits['train'] == [f'case{n:04d}' for n in TRANSUNET_TRAIN_CASES]
    assert splits['val'] == [] and len(splits['train']) == 18


def test_cv5_folds_partition_the_cases_with_a_seed():
    info = converter.make_splits('cv5', ALL_30, 3, 0.2)
    assert info['splits'] == dict(train=ALL_30, val=[], test=[])
    folds = info['folds']
    assert len(folds) == 5
    vals = [case for fold in folds for case in fold['val']]
    assert sorted(vals) == ALL_30  # every case validated exactly once
    for fold in folds:
        assert len(fold['val']) == 6
        assert sorted(fold['train'] + fold['val']) == ALL_30
    assert converter.make_splits('cv5', ALL_30, 3, 0.2)['folds'] == folds
    assert converter.make_splits('cv5', ALL_30, 4, 0.2)['folds'] != folds


def test_small_case_sets():
    few = ['case0001', 'case0002', 'case0099']
    info = converter.make_splits('swinunetr', few, 0, 0.2)
    assert info['splits'] == dict(train=['case0001', 'case0002'], val=[], test=[])
    assert info['unassigned'] == ['case0099'] and len(info['missing']) == 28
    info = converter.make_splits('transunet', few, 0, 0.2)
    assert info['splits'] == dict(train=[], val=[], test=['case0001', 'case0002'])
    assert converter.make_splits('all', ['case0001'], 0, 0.2)['splits'] == dict(
        train=['case0001'], val=['case0001'], test=['case0001'])
    holdout = converter.make_splits('holdout', few, 0, 0.2)['splits']
    assert len(holdout['val']) == 1 and sorted(holdout['train'] + holdout['val']) == few
    with pytest.raises(ValueError, match='cv5 needs at least 5'):
        converter.make_splits('cv5', few, 0, 0.2)
    with pytest.raises(ValueError, match='holdout needs at least 2'):
        converter.make_splits('holdout', ['case0001'], 0, 0.2)


def test_label_sets_match_mmseg_and_the_synapse_converter():
    from mmseg.datasets import SynapseDataset
    assert SYNAPSE_CLASSES == SynapseDataset.METAINFO['classes']
    assert len(BTCV_CLASSES) == 14
    table, strict = converter.label_table('transunet', None)
    assert strict and table.tolist() == [0] + [BTCV_TO_SYNAPSE[i] for i in range(1, 14)]
    table, strict = converter.label_table('swinunetr', {5: 6, 52: 8})
    assert not strict and table[5] == 6 and table[52] == 8 and table.sum() == 14


def test_help_describes_the_layouts(capsys):
    with pytest.raises(SystemExit):
        converter.main(['--help'])
    text = capsys.readouterr().out
    for expected in ('RawData/Training/img/img0001.nii.gz',
                     'RawData/Training/label/label0001.nii.gz', 'RawData/Testing/img',
                     'labelsTr/case0001.nii.gz', 'dataset.json', 'swinunetr',
                     'transunet', 'cv5', 'holdout', 'unassigned'):
        assert expected in text, expected


@pytest.mark.parametrize('args, message', [
    (['--label-map', '1:1,7-11'], '7-11'),
    (['--label-map', '1:14'], '1:14'),
    (['--val-ratio', '0.3'], 'holdout only'),
    (['--protocol', 'holdout', '--val-ratio', '1.5'], '(0, 1)'),
    (['--protocol', 'cv7'], 'cv7'),
])
def test_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit):
        converter.main([str(tmp_path), '-o', str(tmp_path / 'out'), *args])
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


# --- the real CT --------------------------------------------------------------------


@pytest.fixture(scope='module')
def sample_raw(tmp_path_factory) -> Path:
    """The TotalSegmentator slab as Training cases 1 and 2 and Testing case 61."""
    root = write_btcv_layout(
        tmp_path_factory.mktemp('raw'), {
            1: _sample(),
            2: _sample()
        })
    testing = root / 'RawData' / 'Testing' / 'img'
    testing.mkdir(parents=True)
    os.symlink(_sample()[0], testing / 'img0061.nii.gz')
    return root


@pytest.fixture(scope='module')
def sample_out(sample_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('btcv') / 'out'
    converter.main([
        str(sample_raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--protocol', 'holdout', '--seed',
        '1'
    ])
    return out


@needs_ct
def test_layout_and_dataset_json(sample_raw, sample_out):
    assert sorted(p.name for p in sample_out.iterdir()) == [
        'dataset.json', 'imagesTr', 'imagesTs', 'labelsTr'
    ]
    for folder in ('imagesTr', 'labelsTr'):
        assert sorted(p.name for p in (sample_out / folder).iterdir()) == [
            'case0001.nii.gz', 'case0002.nii.gz'
        ]
    assert [p.name for p in (sample_out / 'imagesTs').iterdir()] == ['case0061.nii.gz']
    content = json.loads((sample_out / 'dataset.json').read_text())
    assert content['name'] == 'BTCV' and content['protocol'] == 'holdout'
    assert content['labels'] == {str(i): name for i, name in enumerate(BTCV_CLASSES)}
    splits = content['splits']
    assert sorted(splits['train'] + splits['val']) == ['case0001', 'case0002']
    assert len(splits['val']) == 1 and splits['test'] == []
    assert content['seed'] == 1 and content['val_ratio'] == 0.2
    assert content['unlabelled'] == ['case0061']
    assert content['unassigned'] == content['missing'] == []
    assert content['label_map']['52'] == 8 and content['label_map']['15'] == 5
    assert content['source'] == str(sample_raw)
    assert 'folds' not in content
    # no staging folder left beside the output
    assert [p.name for p in sample_out.parent.iterdir()] == ['out']


@needs_ct
def test_images_are_copied_byte_for_byte(sample_out):
    ct, _ = _sample()
    for path in ('imagesTr/case0001.nii.gz', 'imagesTr/case0002.nii.gz',
                 'imagesTs/case0061.nii.gz'):
        assert (sample_out / path).read_bytes() == ct.read_bytes(), path


@needs_ct
def test_labels_share_the_image_geometry(sample_out):
    image = nib.load(sample_out / 'imagesTr' / 'case0001.nii.gz')
    label = nib.load(sample_out / 'labelsTr' / 'case0001.nii.gz')
    assert label.shape == image.shape
    assert np.array_equal(label.affine, image.affine)
    for key in ('qform_code', 'sform_code', 'pixdim', 'srow_x', 'srow_y', 'srow_z',
                'xyzt_units'):
        assert np.array_equal(label.header[key], image.header[key]), key
    assert label.get_data_dtype() == np.uint8
    assert _labels(sample_out / 'labelsTr' / 'case0001.nii.gz').dtype == np.uint8


@needs_ct
def test_labels_are_mapped_as_the_readme_says(sample_out):
    raw = _labels(_sample()[1])
    labels = _labels(sample_out / 'labelsTr' / 'case0001.nii.gz')
    assert set(np.unique(labels).tolist()) <= set(range(14))
    for btcv_id, ts_id in BTCV_FROM_TS.items():
        assert np.array_equal(labels == btcv_id, raw == ts_id), BTCV_CLASSES[btcv_id]
    for btcv_id in (1, 2, 3, 6, 7, 8, 11):  # present in the slab
        assert (labels == btcv_id).sum() == (raw == BTCV_FROM_TS[btcv_id]).sum() > 0
    assert (labels == 5).sum() == 0  # the esophagus is not in the slab
    assert (labels == 0).sum() == np.isin(
        raw, list(BTCV_FROM_TS.values()), invert=True).sum()


@needs_ct
def test_transunet_protocol_relabels_to_the_8_synapse_organs(sample_raw, tmp_path):
    out = tmp_path / 'transunet'
    converter.main([
        str(sample_raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--protocol', 'transunet',
        '--no-unlabelled'
    ])
    content = json.loads((out / 'dataset.json').read_text())
    assert content['labels'] == {str(i): n for i, n in enumerate(SYNAPSE_CLASSES)}
    assert content['splits'] == dict(train=[], val=[], test=['case0001', 'case0002'])
    assert content['unlabelled'] == [] and not (out / 'imagesTs').exists()
    raw = _labels(_sample()[1])
    expected = np.zeros(raw.shape, np.uint8)
    for btcv_id, ts_id in BTCV_FROM_TS.items():
        expected[raw == ts_id] = BTCV_TO_SYNAPSE[btcv_id]
    labels = _labels(out / 'labelsTr' / 'case0002.nii.gz')
    np.testing.assert_array_equal(labels, expected)  # voxel for voxel
    assert set(np.unique(labels).tolist()) == set(range(9))
    liver, spleen = SYNAPSE_CLASSES.index('liver'), SYNAPSE_CLASSES.index('spleen')
    assert (labels == liver).sum() == (raw == 5).sum()
    assert (labels == spleen).sum() == (raw == 1).sum()


@needs_ct
def test_cv5_records_folds_and_seed(tmp_path):
    raw = write_btcv_layout(tmp_path / 'raw', {n: _sample() for n in range(1, 7)})
    out = tmp_path / 'out'
    converter.main([
        str(raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--protocol', 'cv5', '--seed', '7'
    ])
    content = json.loads((out / 'dataset.json').read_text())
    cases = [f'case{n:04d}' for n in range(1, 7)]
    assert content['seed'] == 7 and content['splits']['train'] == cases
    assert content['folds'] == converter.draw_folds(cases, 7)
    assert sorted(c for fold in content['folds'] for c in fold['val']) == cases


@needs_ct
def test_refuses_non_empty_output_unless_force(sample_raw, sample_out, tmp_path):
    out = tmp_path / 'out'
    args = [
        str(sample_raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--protocol', 'holdout', '--seed',
        '1'
    ]
    converter.main(args)
    stale = out / 'imagesTr' / 'case0099.nii.gz'
    stale.write_bytes(b'')
    (out / 'notes.txt').write_text('kept')
    before = _snapshot(out)
    with pytest.raises(FileExistsError, match=f'{re.escape(str(out))}.*--force'):
        converter.main(args)
    assert _snapshot(out) == before
    converter.main(args + ['--force'])
    assert not stale.exists() and (out / 'notes.txt').read_text() == 'kept'
    del before['notes.txt'], before['imagesTr/case0099.nii.gz']
    assert {k: v for k, v in _snapshot(out).items() if k != 'notes.txt'} == before
    assert _snapshot(out)['labelsTr/case0001.nii.gz'] == _snapshot(
        sample_out)['labelsTr/case0001.nii.gz']


# --- bad input ----------------------------------------------------------------------


@needs_ct
@pytest.mark.parametrize('where, hint', [
    (('RawData', 'Training'), 'looks like RawData/Training itself: pass '),
    (('RawData', ), 'looks like RawData itself: pass '),
    (('RawData', 'Training', 'img'), 'see --help'),
])
def test_wrong_layout_is_named(sample_raw, where, hint):
    pointed = sample_raw.joinpath(*where)
    with pytest.raises(FileNotFoundError) as error:
        converter.main([str(pointed), '-o', str(sample_raw.parent / 'never')])
    message = str(error.value)
    assert str(pointed) in message and 'RawData/Training/img/img0001.nii.gz' in message
    assert hint in message and '\n' not in message
    if where != ('RawData', 'Training', 'img'):
        assert message.endswith(str(sample_raw))
    assert not (sample_raw.parent / 'never').exists()


def test_wrong_layout_cli_exits_with_one_line(tmp_path, monkeypatch, capsys):
    """As a script: status 1 and one ``error:`` line, no traceback (run_cli)."""
    monkeypatch.setattr(
        sys, 'argv',
        [str(SCRIPT), str(tmp_path), '-o',
         str(tmp_path / 'out')])
    with pytest.raises(SystemExit) as exit_info:
        converter.run_cli(converter.main)
    message = exit_info.value.code
    assert isinstance(message, str) and message.startswith('error: ')  # status 1
    assert '\n' not in message and str(tmp_path) in message
    assert 'RawData/Training/img/img0001.nii.gz' in message
    assert not (tmp_path / 'out').exists()


def test_image_without_label_is_named(tmp_path):
    pair = _small_case(tmp_path / 'nii', 'a')
    raw = write_btcv_layout(tmp_path / 'raw', {1: pair, 2: pair})
    (raw / 'RawData' / 'Training' / 'label' / 'label0002.nii.gz').unlink()
    with pytest.raises(
            FileNotFoundError,
            match=r'img0002\.nii\.gz has no partner.*'
            r'label0002\.nii\.gz'):
        converter.main([str(raw), '-o', str(tmp_path / 'out'), '--protocol', 'all'])
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    'change, message',
    [
        (dict(shape=(6, 5, 3)), 'has shape'),
        (dict(affine=np.diag([-0.8, -0.8, 2.5, 1.0]) + 1e-5),
         None),  # header float noise
        (dict(
            affine=np.array([[-0.8, 0, 0, 5.0], [0, -0.8, 0, 0], [0, 0, 2.5, 0],
                             [0, 0, 0, 1]])), 'different affines'),
    ])
def test_label_off_the_image_grid_names_both_files(tmp_path, change, message):
    image, label = _small_case(tmp_path / 'nii', 'a')
    _, other_label = _small_case(
        tmp_path / 'other',
        'b',
        labels=np.zeros(change.get('shape', (6, 5, 4)), np.uint8),
        **change)
    raw = write_btcv_layout(tmp_path / 'raw', {
        1: (image, label),
        2: (image, other_label)
    })
    out = tmp_path / 'out'
    args = [str(raw), '-o', str(out), '--protocol', 'all']
    if message is None:  # the same grid: converts, onto the image's exact affine
        converter.main(args)
        written = nib.load(out / 'labelsTr' / 'case0002.nii.gz')
        assert np.array_equal(written.affine, nib.load(image).affine)
        return
    with pytest.raises(ValueError, match=message) as error:
        converter.main(args)
    text = str(error.value)
    assert 'label0002.nii.gz' in text and 'img0002.nii.gz' in text
    assert not out.exists() and sorted(
        p.name for p in tmp_path.iterdir()) == ['nii', 'other', 'raw']


def test_label_ids_out_of_range_name_file_and_ids(tmp_path):
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[0, 0, 0], labels[1, 0, 0], labels[2, 0, 0] = 6, 14, 52
    good = _small_case(tmp_path / 'nii', 'a')
    bad = _small_case(tmp_path / 'nii', 'b', labels=labels)
    raw = write_btcv_layout(tmp_path / 'raw', {1: good, 2: bad})
    out = tmp_path / 'out'
    (out / 'imagesTr').mkdir(parents=True)
    (out / 'imagesTr' / 'mine.nii.gz').write_bytes(b'users data')
    with pytest.raises(
            ValueError,
            match=r'label0002\.nii\.gz holds ids \[14, 52\] '
            r'outside 0\.\.13'):
        converter.main([str(raw), '-o', str(out), '--protocol', 'all', '--force'])
    # found while converting: nothing of the run reached the output
    assert _snapshot(out) == {'imagesTr/mine.nii.gz': b'users data'}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['nii', 'out', 'raw']
    # a label map keeping only some ids makes the rest background
    converter.main([
        str(raw), '-o',
        str(out), '--protocol', 'all', '--force', '--label-map', '6:6,52:8'
    ])
    converted = _labels(out / 'labelsTr' / 'case0002.nii.gz')
    assert converted[0, 0, 0] == 6 and converted[1, 0, 0] == 0
    assert converted[2, 0, 0] == 8


def test_float_and_uncompressed_sources(tmp_path):
    """A float label on an .nii image converts to uint8; non-integer ids are refused."""
    folder = tmp_path / 'nii'
    folder.mkdir()
    affine = np.diag([0.7, 0.7, 3.0, 1.0])
    image = nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), affine)
    values = np.zeros((4, 4, 3), np.float32)
    values[1, 1, 1] = 8.0
    nib.save(image, folder / 'ct.nii')
    nib.save(nib.Nifti1Image(values, affine), folder / 'seg.nii.gz')
    values[2, 2, 2] = 2.5
    nib.save(nib.Nifti1Image(values, affine), folder / 'bad.nii.gz')
    raw = tmp_path / 'raw'
    for sub, name, source in (('img', 'img0001.nii', 'ct.nii'),
                              ('label', 'label0001.nii.gz', 'seg.nii.gz')):
        (raw / 'RawData' / 'Training' / sub).mkdir(parents=True)
        os.symlink(folder / source, raw / 'RawData' / 'Training' / sub / name)
    converter.main([str(raw), '-o', str(tmp_path / 'out'), '--protocol', 'all'])
    written = tmp_path / 'out' / 'imagesTr' / 'case0001.nii.gz'
    assert gzip.decompress(written.read_bytes()) == (folder / 'ct.nii').read_bytes()
    labels = _labels(tmp_path / 'out' / 'labelsTr' / 'case0001.nii.gz')
    assert labels.dtype == np.uint8 and labels[1, 1, 1] == 8 and labels.sum() == 8
    bad = write_btcv_layout(tmp_path / 'bad',
                            {1: (folder / 'seg.nii.gz', folder / 'bad.nii.gz')})
    with pytest.raises(
            ValueError,
            match=r'label0001\.nii\.gz holds non-integer '
            r'values, e\.g\. \[2\.5\]'):
        converter.main([str(bad), '-o', str(tmp_path / 'out2'), '--protocol', 'all'])


@needs_ct
def test_output_loads_in_btcv_dataset(sample_out, sample_raw, tmp_path):
    """The contract with the dataset side: BTCVDataset reads what the converter
    writes, its classes from dataset.json."""
    from mmseg.registry import DATASETS
    content = json.loads((sample_out / 'dataset.json').read_text())
    for split in ('train', 'val'):
        dataset = DATASETS.build(
            dict(type='BTCVDataset', data_root=str(sample_out), split=split))
        assert [info['case_id']
                for info in dataset.load_data_list()] == content['splits'][split]
        assert len(dataset.metainfo['classes']) == 14
    out = tmp_path / 'transunet'
    converter.main([
        str(sample_raw), '-o',
        str(out), '--label-map', TOTALSEG_TO_BTCV, '--protocol', 'transunet'
    ])
    dataset = DATASETS.build(dict(type='BTCVDataset', data_root=str(out), split='test'))
    assert len(dataset) == 2 and len(dataset.metainfo['classes']) == 9
