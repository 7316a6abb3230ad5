"""Tests for tools/misc/generate_synthetic_ct.py (synthetic abdominal CT, raw BTCV
layout), and that its output converts with tools/dataset_converters/btcv.py."""
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from tests.scripts import load_script

generator = load_script('tools/misc/generate_synthetic_ct.py')
btcv = load_script('tools/dataset_converters/btcv.py')

SHAPE = (48, 48, 24)
# Median HU inside each organ (BTCV id): generous ranges around the generator's means
# (noise, blur and partial volume move them).
HU_RANGES = {
    6: (40, 80),
    1: (30, 70),
    2: (100, 180),
    3: (100, 180),
    8: (140, 230),
    9: (80, 170),
    4: (-20, 40),
    11: (10, 80)
}
BIG_ORGANS = (1, 2, 3, 6, 7, 8, 9)


def _generate(out: Path, *extra: str) -> Path:
    generator.main(
        ['--out',
         str(out), '--num-cases', '3', '--shape', *map(str, SHAPE), *extra])
    return out


def _case(out: Path, number: int):
    training = out / 'RawData' / 'Training'
    return (nib.load(training / 'img' / f'img{number:04d}.nii.gz'),
            nib.load(training / 'label' / f'label{number:04d}.nii.gz'))


def _arrays(out: Path) -> dict:
    """Every volume's voxels and affine, by file name."""
    return {
        p.name: (np.asanyarray(nib.load(p).dataobj), nib.load(p).affine)
        for p in sorted(out.rglob('*.nii.gz'))
    }


def _world_centre(label: nib.Nifti1Image, organ: int) -> np.ndarray:
    voxels = np.argwhere(np.asanyarray(label.dataobj) == organ)
    return nib.affines.apply_affine(label.affine, voxels.mean(axis=0))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    return _generate(
        tmp_path_factory.mktemp('ct') / 'out', '--seed', '5', '--num-test-cases', '1',
        '--orientation', 'random')


def test_layout_shapes_and_ids(dataset):
    training = dataset / 'RawData' / 'Training'
    assert sorted(p.name for p in (training / 'img').iterdir()) == [
        'img0001.nii.gz', 'img0002.nii.gz', 'img0003.nii.gz'
    ]
    assert sorted(p.name for p in (training / 'label').iterdir()) == [
        'label0001.nii.gz', 'label0002.nii.gz', 'label0003.nii.gz'
    ]
    assert [p.name for p in (dataset / 'RawData' / 'Testing' / 'img').iterdir()
            ] == ['img0061.nii.gz']
    for number in (1, 2, 3):
        image, label = _case(dataset, number)
        hu, labels = np.asanyarray(image.dataobj), np.asanyarray(label.dataobj)
        assert hu.shape == labels.shape == SHAPE
        assert hu.dtype == np.int16 and labels.dtype == np.uint8
        assert set(np.unique(labels).tolist()) <= set(range(14))
        assert set(BIG_ORGANS) <= set(np.unique(labels).tolist())
        assert 0.01 < (labels > 0).mean() < 0.3
    record = json.loads((dataset / 'generator.json').read_text())
    assert record['seed'] == 5 and record['shape'] == list(SHAPE)
    assert sorted(record['cases']) == ['img0001', 'img0002', 'img0003', 'img0061']


def test_spacing_and_affine_agree(dataset):
    record = json.loads((dataset / 'generator.json').read_text())['cases']
    spacings = []
    for number in (1, 2, 3):
        image, label = _case(dataset, number)
        assert np.array_equal(image.affine, label.affine)
        columns = np.linalg.norm(image.affine[:3, :3], axis=0)
        np.testing.assert_allclose(image.header.get_zooms(), columns, rtol=1e-6)
        np.testing.assert_allclose(
            columns, record[f'img{number:04d}']['spacing'], rtol=1e-6)
        assert image.header['qform_code'] == image.header['sform_code'] == 1
        np.testing.assert_allclose(image.header.get_qform(), image.affine, atol=1e-5)
        assert 0.7 <= columns[0] == columns[1] <= 1.0 and 2.0 <= columns[2] <= 5.0
        assert ''.join(nib.aff2axcodes(
            image.affine)) == record[f'img{number:04d}']['axcodes']
        spacings.append(tuple(columns))
    assert len(set(spacings)) == 3  # drawn per case


def test_anatomy_is_where_the_affine_says(dataset, tmp_path):
    """In world (RAS) coordinates, whatever the stored axis order: the liver lies to
    the patient's right (+x) of the spleen, the kidneys behind (-y) the stomach, and
    the aorta runs through every slice."""
    axcodes = set()
    outputs = [
        dataset,
        _generate(tmp_path / 'ras', '--seed', '5', '--orientation', 'RAS',
                  '--num-cases', '1')
    ]
    for out in outputs:
        for label_file in sorted((out / 'RawData' / 'Training' / 'label').iterdir()):
            label = nib.load(label_file)
            axcodes.add(nib.aff2axcodes(label.affine))
            liver, spleen = _world_centre(label, 6), _world_centre(label, 1)
            stomach = _world_centre(label, 7)
            assert liver[0] > spleen[0] + 5
            assert _world_centre(label, 2)[0] > _world_centre(label, 3)[0]
            for kidney in (2, 3):
                assert _world_centre(label, kidney)[1] < stomach[1]
            assert liver[2] > _world_centre(label, 2)[2]  # liver above the kidneys
            canonical = np.asanyarray(nib.as_closest_canonical(label).dataobj)
            assert (canonical == 8).any(axis=(0, 1)).all()
    assert len(axcodes) > 1


@pytest.fixture(scope='module')
def default_case(tmp_path_factory) -> Path:
    """One case at the default shape (small vessels are a few voxels wide at 48)."""
    out = tmp_path_factory.mktemp('ct') / 'default'
    generator.main(['--out', str(out), '--num-cases', '1', '--seed', '2'])
    return out


def test_orientation_changes_storage_not_anatomy(dataset, tmp_path):
    ras = _generate(tmp_path / 'ras', '--seed', '5', '--orientation', 'RAS')
    lps = _generate(tmp_path / 'lps', '--seed', '5', '--orientation', 'LPS')
    for number in (1, 2, 3):
        cases = [_case(out, number) for out in (dataset, ras, lps)]
        assert nib.aff2axcodes(cases[1][0].affine) == ('R', 'A', 'S')
        assert nib.aff2axcodes(cases[2][0].affine) == ('L', 'P', 'S')
        for index in (0, 1):  # image, label
            canonical = [nib.as_closest_canonical(case[index]) for case in cases]
            for other in canonical[1:]:
                np.testing.assert_array_equal(
                    np.asanyarray(other.dataobj), np.asanyarray(canonical[0].dataobj))
                np.testing.assert_allclose(other.affine, canonical[0].affine, atol=1e-4)


def test_organ_hounsfield_units(dataset, default_case):
    inside, outside, checked = [], [], set()
    for out, number in ((dataset, 1), (dataset, 2), (dataset, 3), (default_case, 1)):
        image, label = _case(out, number)
        hu, labels = np.asanyarray(image.dataobj), np.asanyarray(label.dataobj)
        for organ, (low, high) in HU_RANGES.items():
            # away from the organ's edge (partial volume), in-plane
            core = ndimage.binary_erosion(labels == organ, np.ones((3, 3, 1)))
            if core.sum() > 10:
                assert low <= np.median(hu[core]) <= high, organ
                checked.add(organ)
        corner = hu[:3, :3, :]  # outside the body ellipse: air
        assert corner.max() < -850 and abs(np.median(corner) + 1000) < 30
        outside.append(hu[labels == 0])
        inside.append(hu[labels > 0])
    assert checked == set(HU_RANGES)
    assert np.asanyarray(_case(default_case, 1)[0].dataobj).shape == (96, 96, 48)
    background = np.concatenate(outside)
    # fat (about -100) and soft tissue both occur outside the organs
    assert ((background > -180) & (background < -40)).mean() > 0.02
    assert ((background > 0) & (background < 80)).mean() > 0.05
    assert np.percentile(np.concatenate(inside), 50) > 0
    assert np.percentile(background, 99.5) > 300  # the spine


def test_deterministic_per_seed_and_case(dataset, tmp_path):
    same = _arrays(
        _generate(tmp_path / 'same', '--seed', '5', '--num-test-cases', '1',
                  '--orientation', 'random'))
    reference = _arrays(dataset)
    assert same.keys() == reference.keys()
    for name, (data, affine) in same.items():
        assert np.array_equal(data, reference[name][0]) and np.array_equal(
            affine, reference[name][1]), name
    one = _arrays(
        _generate(tmp_path / 'one', '--seed', '5', '--num-cases', '1', '--orientation',
                  'random'))
    assert np.array_equal(one['img0001.nii.gz'][0], reference['img0001.nii.gz'][0])
    other = _arrays(
        _generate(tmp_path / 'other', '--seed', '6', '--num-cases', '1',
                  '--orientation', 'random'))
    assert not np.array_equal(other['label0001.nii.gz'][0],
                              reference['label0001.nii.gz'][0])


def test_refuses_non_empty_output_unless_force(dataset, tmp_path):
    out = _generate(tmp_path / 'out', '--seed', '1', '--num-cases', '1')
    (out / 'notes.txt').write_text('kept')
    before = _arrays(out)
    with pytest.raises(FileExistsError, match='--force') as error:
        _generate(out, '--seed', '5')
    assert str(out) in str(error.value) and _arrays(out).keys() == before.keys()
    _generate(out, '--seed', '5', '--num-test-cases', '1', '--orientation', 'random',
              '--force')
    assert (out / 'notes.txt').read_text() == 'kept'
    after, reference = _arrays(out), _arrays(dataset)
    assert after.keys() == reference.keys()
    assert all(np.array_equal(after[k][0], reference[k][0]) for k in after)


@pytest.mark.parametrize(
    'args', [['--num-cases', '0'], ['--num-cases', '31'], ['--num-test-cases', '21'],
             ['--shape', '8', '48', '24'], ['--seed', '-1'], ['--orientation', 'LAS']])
def test_rejects_bad_arguments(tmp_path, args, capsys):
    with pytest.raises(SystemExit):
        generator.main(['--out', str(tmp_path / 'out'), *args])
    assert 'error' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_output_converts_with_the_btcv_converter(dataset, tmp_path):
    out = tmp_path / 'btcv'
    btcv.main(
        [str(dataset), '-o',
         str(out), '--protocol', 'holdout', '--val-ratio', '0.34'])
    content = json.loads((out / 'dataset.json').read_text())
    assert content['splits']['val'] and content['splits']['train']
    assert sorted(content['splits']['train'] +
                  content['splits']['val']) == ['case0001', 'case0002', 'case0003']
    assert content['unlabelled'] == ['case0061']
    source = dataset / 'RawData' / 'Training'
    assert (out / 'imagesTr' /
            'case0002.nii.gz').read_bytes() == (source / 'img' /
                                                'img0002.nii.gz').read_bytes()
    assert np.array_equal(
        np.asanyarray(nib.load(out / 'labelsTr' / 'case0002.nii.gz').dataobj),
        np.asanyarray(nib.load(source / 'label' / 'label0002.nii.gz').dataobj))


def test_thirty_cases_follow_the_btcv_numbering():
    assert generator.BTCV_LABELLED_CASES[:12] == (*range(1, 11), 21, 22)
    assert len(generator.BTCV_LABELLED_CASES) == 30
    assert generator.BTCV_UNLABELLED_CASES[0] == 61
