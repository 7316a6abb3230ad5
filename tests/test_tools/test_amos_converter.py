"""Tests for tools/dataset_converters/amos.py (AMOS 2022 -> the volumetric layout), on
a fake AMOS folder built from the real TotalSegmentator CT (dataset.json written here).
"""
import json
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mmseg_fusion.utils.abdominal_labels import AMOS_CLASSES
from tests.scripts import load_script
from tests.shared_data import CT_SAMPLE, REPO

SCRIPT = REPO / 'tools' / 'dataset_converters' / 'amos.py'
needs_ct = pytest.mark.skipif(
    not CT_SAMPLE.is_dir(),
    reason=f'real CT sample {CT_SAMPLE} absent (../shared/data beside the clone, or '
    'MMSEG_FUSION_SHARED_DATA)')

converter = load_script('tools/dataset_converters/amos.py')

# TotalSegmentator v2 id -> AMOS id for the organs both label (sample README ids).
TOTALSEG_TO_AMOS = {
    1: 1,
    2: 2,
    3: 3,
    4: 4,
    15: 5,
    5: 6,
    6: 7,
    52: 8,
    63: 9,
    7: 10,
    8: 11,
    9: 12
}
CT_TRAIN = ('amos_0001', 'amos_0004', 'amos_0010', 'amos_0015')
MRI_TRAIN = ('amos_0507', )
CT_VAL, MRI_VAL = ('amos_0008', ), ('amos_0520', )
CT_TEST, MRI_TEST = ('amos_0002', ), ('amos_0540', )


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def _amos_label() -> np.ndarray:
    raw = np.asanyarray(nib.load(CT_SAMPLE / 'example_seg.nii.gz').dataobj)
    labels = np.zeros(raw.shape, np.uint8)
    for ts_id, amos_id in TOTALSEG_TO_AMOS.items():
        labels[raw == ts_id] = amos_id
    return labels


def build_amos(root: Path, label: np.ndarray = None) -> Path:
    """A fake amos22/ folder: the real CT under every case name, one AMOS label."""
    ct = nib.load(CT_SAMPLE / 'example_ct_sm.nii.gz')
    for folder in ('imagesTr', 'labelsTr', 'imagesVa', 'labelsVa', 'imagesTs'):
        (root / folder).mkdir(parents=True)
    label_file = root / 'label.nii.gz'
    header = ct.header.copy()
    header.set_data_dtype(np.uint8)
    nib.save(
        nib.Nifti1Image(_amos_label() if label is None else label, None, header),
        label_file)
    training, validation, test = [], [], []
    for cases, images, labels, listed in ((CT_TRAIN + MRI_TRAIN, 'imagesTr', 'labelsTr',
                                           training), (CT_VAL + MRI_VAL, 'imagesVa',
                                                       'labelsVa', validation)):
        for case in cases:
            (root / images / f'{case}.nii.gz').symlink_to(CT_SAMPLE /
                                                          'example_ct_sm.nii.gz')
            (root / labels / f'{case}.nii.gz').symlink_to(label_file)
            listed.append(
                dict(
                    image=f'./{images}/{case}.nii.gz',
                    label=f'./{labels}/{case}.nii.gz'))
    for case in CT_TEST + MRI_TEST:
        (root / 'imagesTs' / f'{case}.nii.gz').symlink_to(CT_SAMPLE /
                                                          'example_ct_sm.nii.gz')
    # AMOS releases list test cases as dicts or as plain paths: one of each.
    test = [
        dict(image=f'./imagesTs/{CT_TEST[0]}.nii.gz'),
        f'./imagesTs/{MRI_TEST[0]}.nii.gz'
    ]
    content = dict(
        name='AMOS',
        description='fake',
        licence='CC-BY-SA 4.0',
        release='1.0',
        labels={
            str(i): n
            for i, n in enumerate([
                'background', 'spleen', 'right kidney', 'left kidney', 'gall bladder',
                'esophagus', 'liver', 'stomach', 'arota', 'postcava', 'pancreas',
                'right adrenal gland', 'left adrenal gland', 'duodenum', 'bladder',
                'prostate/uterus'
            ])
        },
        numTraining=len(training),
        numValidation=len(validation),
        numTest=len(test),
        training=training,
        validation=validation,
        test=test)
    (root / 'dataset.json').write_text(json.dumps(content, indent=1))
    return root


@pytest.fixture(scope='module')
def amos_root(tmp_path_factory) -> Path:
    return build_amos(tmp_path_factory.mktemp('amos') / 'amos22')


@pytest.fixture(scope='module')
def amos_out(amos_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('converted') / 'amos'
    converter.main([str(amos_root), '-o', str(out), '--val-ratio', '0.25'])
    return out


@needs_ct
def test_ct_only_by_default(amos_out):
    names = {
        folder: sorted(p.name[:-7] for p in (amos_out / folder).iterdir())
        for folder in ('imagesTr', 'labelsTr', 'imagesTs')
    }
    assert names['imagesTr'] == names['labelsTr'] == sorted(CT_TRAIN + CT_VAL)
    assert names['imagesTs'] == list(CT_TEST)
    for mri in MRI_TRAIN + MRI_VAL + MRI_TEST:
        assert not any(mri in files for files in names.values())


@needs_ct
def test_dataset_json(amos_root, amos_out):
    content = json.loads((amos_out / 'dataset.json').read_text())
    assert content['name'] == 'AMOS' and content['protocol'] == 'ct'
    assert content['labels'] == {str(i): n for i, n in enumerate(AMOS_CLASSES)}
    assert len(content['labels']) == 16 and content['labels']['8'] == 'aorta'
    splits = content['splits']
    assert splits['test'] == list(CT_VAL)  # the official validation set
    assert len(splits['val']) == 1 and len(splits['train']) == 3
    assert sorted(splits['train'] + splits['val']) == list(CT_TRAIN)
    assert content['seed'] == 0 and content['val_ratio'] == 0.25
    assert content['unlabelled'] == list(CT_TEST)
    assert content['source'] == str(amos_root)
    assert 'folds' not in content


@needs_ct
def test_files_are_copied_and_checked(amos_out):
    ct = (CT_SAMPLE / 'example_ct_sm.nii.gz').read_bytes()
    for path in ('imagesTr/amos_0001.nii.gz', 'imagesTr/amos_0008.nii.gz',
                 'imagesTs/amos_0002.nii.gz'):
        assert (amos_out / path).read_bytes() == ct
    image = nib.load(amos_out / 'imagesTr' / 'amos_0008.nii.gz')
    label = nib.load(amos_out / 'labelsTr' / 'amos_0008.nii.gz')
    assert np.array_equal(label.affine, image.affine) and label.shape == image.shape
    labels = np.asanyarray(label.dataobj)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, _amos_label())
    raw = np.asanyarray(nib.load(CT_SAMPLE / 'example_seg.nii.gz').dataobj)
    for ts_id, amos_id in ((5, 6), (1, 1), (52, 8), (7, 10)):  # liver, spleen, ...
        assert (labels == amos_id).sum() == (raw == ts_id).sum() > 0


@needs_ct
def test_val_draw_follows_the_seed(amos_root, tmp_path):
    drawn = set()
    for seed in range(6):
        out = tmp_path / f'seed{seed}'
        converter.main([
            str(amos_root), '-o',
            str(out), '--val-ratio', '0.25', '--seed',
            str(seed), '--no-unlabelled'
        ])
        content = json.loads((out / 'dataset.json').read_text())
        assert content['seed'] == seed and content['unlabelled'] == []
        assert not (out / 'imagesTs').exists()
        drawn.add(tuple(content['splits']['val']))
    assert len(drawn) > 1
    assert converter.hold_out(list(CT_TRAIN), 0.25,
                              3) == converter.hold_out(list(CT_TRAIN), 0.25, 3)
    assert converter.hold_out(list(CT_TRAIN), 0.0, 3) == (sorted(CT_TRAIN), [])


@needs_ct
@pytest.mark.parametrize('modality, train, test, unlabelled', [
    ('mri', MRI_TRAIN, MRI_VAL, MRI_TEST),
    ('all', CT_TRAIN + MRI_TRAIN, CT_VAL + MRI_VAL, CT_TEST + MRI_TEST),
])
def test_modality_choice(amos_root, tmp_path, modality, train, test, unlabelled):
    out = tmp_path / modality
    converter.main(
        [str(amos_root), '-o',
         str(out), '--modality', modality, '--val-ratio', '0'])
    content = json.loads((out / 'dataset.json').read_text())
    assert content['protocol'] == modality
    assert content['splits'] == dict(train=sorted(train), val=[], test=sorted(test))
    assert content['unlabelled'] == sorted(unlabelled)


def test_help_describes_the_layouts(capsys):
    with pytest.raises(SystemExit):
        converter.main(['--help'])
    text = capsys.readouterr().out
    for expected in ('dataset.json', 'imagesTr/amos_0001.nii.gz', 'imagesVa',
                     'labelsVa', 'imagesTs', 'ids up to 500 are CT', '--val-ratio',
                     'official validation set'):
        assert expected in text, expected


@pytest.mark.parametrize('args, message', [(['--val-ratio', '1'], '[0, 1)'),
                                           (['--modality', 'pet'], 'pet')])
def test_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit):
        converter.main([str(tmp_path), '-o', str(tmp_path / 'out'), *args])
    assert message in capsys.readouterr().err


# --- bad input ----------------------------------------------------------------------


@needs_ct
def test_folder_without_dataset_json(amos_root, tmp_path, monkeypatch):
    for pointed, hint in ((amos_root / 'imagesTr', f'pass {amos_root}'),
                          (amos_root.parent, f'pass {amos_root}'), (tmp_path,
                                                                    'see --help')):
        with pytest.raises(FileNotFoundError) as error:
            converter.main([str(pointed), '-o', str(tmp_path / 'out')])
        message = str(error.value)
        assert f'{pointed} holds no dataset.json' in message and hint in message
        assert 'imagesTr/, labelsTr/, imagesVa/, labelsVa/' in message
    assert not (tmp_path / 'out').exists()
    # as a script: one line and status 1, no traceback
    monkeypatch.setattr(sys, 'argv', [str(SCRIPT), str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        converter.run_cli(converter.main)
    assert exit_info.value.code.startswith('error: ') and '\n' not in str(
        exit_info.value.code)


def test_dataset_json_without_the_keys(tmp_path):
    (tmp_path / 'dataset.json').write_text(json.dumps(dict(name='AMOS', labels={})))
    with pytest.raises(
            ValueError, match=r"lacks the keys \['training', 'validation'\]"):
        converter.main([str(tmp_path), '-o', str(tmp_path / 'out')])


@needs_ct
def test_listed_file_missing(tmp_path):
    root = build_amos(tmp_path / 'amos22')
    (root / 'labelsVa' / 'amos_0008.nii.gz').unlink()
    with pytest.raises(
            FileNotFoundError,
            match=r'labelsVa/amos_0008\.nii\.gz is listed in .*validation'):
        converter.main([str(root), '-o', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


@needs_ct
def test_label_ids_out_of_range(tmp_path):
    label = _amos_label()
    label[0, 0, 0], label[0, 0, 1] = 16, 40
    root = build_amos(tmp_path / 'amos22', label)
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=r'label\.nii\.gz|amos_0001\.nii\.gz') as error:
        converter.main([str(root), '-o', str(out)])
    assert re.search(r'holds ids \[16, 40\] outside 0\.\.15', str(error.value))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['amos22']


@needs_ct
def test_label_shape_differs(tmp_path):
    root = build_amos(tmp_path / 'amos22')
    small = root / 'small.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), small)
    (root / 'labelsTr' / 'amos_0010.nii.gz').unlink()
    (root / 'labelsTr' / 'amos_0010.nii.gz').symlink_to(small)
    with pytest.raises(ValueError) as error:
        converter.main([str(root), '-o', str(tmp_path / 'out')])
    message = str(error.value)
    assert 'labelsTr/amos_0010.nii.gz has shape (4, 4, 4)' in message
    assert 'imagesTr/amos_0010.nii.gz has shape (122, 101, 30)' in message
    assert not (tmp_path / 'out').exists()


@needs_ct
def test_float_label_near_the_grid_is_rewritten_on_the_image_grid(tmp_path):
    root = build_amos(tmp_path / 'amos22')
    ct = nib.load(CT_SAMPLE / 'example_ct_sm.nii.gz')
    shifted = ct.affine.copy()
    shifted[0, 3] += 2e-4  # header float noise, within --affine-atol
    odd = root / 'odd.nii.gz'
    nib.save(nib.Nifti1Image(_amos_label().astype(np.float32), shifted), odd)
    (root / 'labelsTr' / 'amos_0004.nii.gz').unlink()
    (root / 'labelsTr' / 'amos_0004.nii.gz').symlink_to(odd)
    out = tmp_path / 'out'
    converter.main([str(root), '-o', str(out)])
    label = nib.load(out / 'labelsTr' / 'amos_0004.nii.gz')
    assert label.get_data_dtype() == np.uint8
    assert np.array_equal(label.affine, ct.affine)
    np.testing.assert_array_equal(np.asanyarray(label.dataobj), _amos_label())
    with pytest.raises(ValueError, match='different affines'):
        converter.main(
            [str(root), '-o',
             str(tmp_path / 'strict'), '--affine-atol', '1e-5'])


@needs_ct
def test_refuses_non_empty_output_unless_force(amos_root, amos_out, tmp_path):
    out = tmp_path / 'out'
    (out / 'labelsTr').mkdir(parents=True)
    (out / 'labelsTr' / 'amos_9999.nii.gz').write_bytes(b'stale')
    (out / 'notes.txt').write_text('kept')
    before = _snapshot(out)
    args = [str(amos_root), '-o', str(out), '--val-ratio', '0.25']
    with pytest.raises(FileExistsError, match=f'{re.escape(str(out))}.*--force'):
        converter.main(args)
    assert _snapshot(out) == before
    converter.main(args + ['--force'])
    after = _snapshot(out)
    assert 'labelsTr/amos_9999.nii.gz' not in after and after['notes.txt'] == b'kept'
    del after['notes.txt']
    converted = _snapshot(amos_out)
    assert after.keys() == converted.keys()
    assert all(after[k] == converted[k] for k in after if k != 'dataset.json')


@needs_ct
def test_output_loads_in_amos_dataset(amos_out):
    """The contract with the dataset side: AMOSDataset reads what the converter
    writes (the official validation cases as its test split)."""
    from mmseg.registry import DATASETS
    for split, cases in (('test', list(CT_VAL)), ('train', None), ('val', None)):
        dataset = DATASETS.build(
            dict(type='AMOSDataset', data_root=str(amos_out), split=split))
        ids = [info['case_id'] for info in dataset.load_data_list()]
        assert ids == (
            cases or json.loads(
                (amos_out / 'dataset.json').read_text())['splits'][split])
        assert len(dataset.metainfo['classes']) == 16
