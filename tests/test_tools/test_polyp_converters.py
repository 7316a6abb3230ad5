"""Tests for the polyp converters in tools/dataset_converters (Kvasir-SEG, CVC-ClinicDB,
PraNet), on the real CVC-ClinicDB sample and on small trees built from its files."""
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.scripts import load_script
from tests.shared_data import CLINICDB_SAMPLE, needs_clinicdb_sample

REPO = Path(__file__).resolve().parents[2]
CONVERTERS = REPO / 'tools' / 'dataset_converters'
SAMPLE = CLINICDB_SAMPLE
SAMPLE_NAMES = sorted(f'fine_3_{i}' for i in range(1, 21))
SUBSETS = ('Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB', 'CVC-300')

cvc_clinicdb = load_script('tools/dataset_converters/cvc_clinicdb.py')
kvasir_seg = load_script('tools/dataset_converters/kvasir_seg.py')
pranet_polyp = load_script('tools/dataset_converters/pranet_polyp.py')


def _sample_image(name: str) -> Path:
    return SAMPLE / 'images' / f'{name}_fram.jpg'


def _sample_mask(name: str) -> Path:
    return SAMPLE / 'masks' / f'{name}_mask.jpg'


def _names(folder: Path) -> list:
    return sorted(p.stem for p in folder.glob('*.png'))


def _read_list(path: Path) -> list:
    return path.read_text().split()


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def _check_pair(out: Path, split: str, name: str, image_src: Path,
                mask_src: Path) -> np.ndarray:
    """The written image equals the decoded source (PNG is lossless, channel order
    kept) and the written mask is the source thresholded at 128; returns the mask."""
    image = cv2.imread(
        str(out / 'img_dir' / split / f'{name}.png'), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(
        str(out / 'ann_dir' / split / f'{name}.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image, cv2.imread(str(image_src)))
    assert mask.ndim == 2 and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    raw = cv2.imread(str(mask_src), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(mask, (raw >= 128).astype(np.uint8))
    return mask


@pytest.fixture(scope='module')
def clinicdb_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('clinicdb') / 'out'
    cvc_clinicdb.main([str(SAMPLE), '-o', str(out)])
    return out


@needs_clinicdb_sample
def test_clinicdb_real_sample_pairs_and_masks(clinicdb_out):
    out = clinicdb_out
    train, val = _names(out / 'img_dir' / 'train'), _names(out / 'img_dir' / 'val')
    assert (len(train), len(val)) == (16, 4)
    assert sorted(train + val) == SAMPLE_NAMES
    for split, names in (('train', train), ('val', val)):
        assert _names(out / 'ann_dir' / split) == names
        assert _read_list(out / 'splits' / f'{split}.txt') == names
    values = set()
    for split, names in (('train', train), ('val', val)):
        for name in names:
            mask = _check_pair(out, split, name, _sample_image(name),
                               _sample_mask(name))
            values |= set(np.unique(mask).tolist())
            assert 0 < mask.mean() < 0.5, name
    assert values == {0, 1}
    info = (out / 'splits' / 'info.txt').read_text()
    assert 'seed: 0' in info and 'count val: 4' in info


@needs_clinicdb_sample
def test_clinicdb_split_follows_seed(tmp_path, clinicdb_out):
    cvc_clinicdb.main([str(SAMPLE), '-o', str(tmp_path / 'same'), '--val-num', '4'])
    cvc_clinicdb.main([
        str(SAMPLE), '-o',
        str(tmp_path / 'other'), '--seed', '1', '--val-ratio', '0.25'
    ])
    val = _read_list(clinicdb_out / 'splits' / 'val.txt')
    assert _read_list(tmp_path / 'same' / 'splits' / 'val.txt') == val
    other = _read_list(tmp_path / 'other' / 'splits' / 'val.txt')
    assert len(other) == 5 and other != val
    assert 'seed: 1' in (tmp_path / 'other' / 'splits' / 'info.txt').read_text()


@needs_clinicdb_sample
def test_clinicdb_cli_refuses_existing_output_unless_force(tmp_path):
    script = str(CONVERTERS / 'cvc_clinicdb.py')
    out = tmp_path / 'out'

    def run(*extra):
        return subprocess.run(
            [sys.executable, script,
             str(SAMPLE), '-o',
             str(out), *extra],
            capture_output=True,
            text=True)

    assert run().returncode == 0
    before = _snapshot(out)
    refused = run('--seed', '3')
    assert refused.returncode != 0
    assert str(out) in refused.stderr and '--force' in refused.stderr
    assert 'Traceback' not in refused.stderr
    assert _snapshot(out) == before
    forced = run('--seed', '3', '--force')
    assert forced.returncode == 0, forced.stderr
    after = _snapshot(out)
    assert after != before
    # --force replaces the old output: no stale file of the seed-0 split remains.
    assert len([k for k in after if k.startswith('img_dir')]) == 20
    assert 'seed: 3' in (out / 'splits' / 'info.txt').read_text()


@needs_clinicdb_sample
def test_clinicdb_missing_mask_names_the_image(tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(SAMPLE, src)
    (src / 'masks' / 'fine_3_7_mask.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='fine_3_7_fram.jpg'):
        cvc_clinicdb.main([str(src), '-o', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


@needs_clinicdb_sample
def test_clinicdb_official_tif_layout(tmp_path):
    root = tmp_path / 'CVC-ClinicDB'
    for sub in ('Original', 'Ground Truth'):
        (root / sub).mkdir(parents=True)
    for index, name in enumerate(SAMPLE_NAMES[:5], start=1):
        cv2.imwrite(
            str(root / 'Original' / f'{index}.tif'),
            cv2.imread(str(_sample_image(name))))
        cv2.imwrite(
            str(root / 'Ground Truth' / f'{index}.tif'),
            cv2.imread(str(_sample_mask(name)), cv2.IMREAD_GRAYSCALE))
    out = tmp_path / 'out'
    cvc_clinicdb.main([str(tmp_path), '-o', str(out), '--val-num', '1'])
    names = _names(out / 'img_dir' / 'train') + _names(out / 'img_dir' / 'val')
    assert sorted(names) == ['1', '2', '3', '4', '5']
    for split in ('train', 'val'):
        for name in _names(out / 'img_dir' / split):
            _check_pair(out, split, name, root / 'Original' / f'{name}.tif',
                        root / 'Ground Truth' / f'{name}.tif')


@pytest.mark.parametrize(
    'args', [['--val-num', '0'], ['--val-num', '20'], ['--val-ratio', '1.5']])
@needs_clinicdb_sample
def test_clinicdb_rejects_bad_split_sizes(tmp_path, args):
    with pytest.raises(ValueError, match='val'):
        cvc_clinicdb.main([str(SAMPLE), '-o', str(tmp_path / 'out'), *args])


def test_clinicdb_unknown_layout_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no CVC-ClinicDB layout'):
        cvc_clinicdb.main([str(tmp_path), '-o', str(tmp_path / 'out')])


def _kvasir_tree(root: Path, names) -> Path:
    """Kvasir-SEG/{images,masks}/NAME.jpg from the real sample's JPEG files."""
    top = root / 'Kvasir-SEG'
    for sub in ('images', 'masks'):
        (top / sub).mkdir(parents=True)
    for name in names:
        shutil.copy(_sample_image(name), top / 'images' / f'{name}.jpg')
        shutil.copy(_sample_mask(name), top / 'masks' / f'{name}.jpg')
    return top


@needs_clinicdb_sample
def test_kvasir_converter(tmp_path):
    names = SAMPLE_NAMES[:10]
    top = _kvasir_tree(tmp_path / 'download', names)
    out = tmp_path / 'out'
    # SRC may be the folder above Kvasir-SEG/.
    kvasir_seg.main([str(tmp_path / 'download'), '-o', str(out), '--val-num', '2'])
    train, val = _names(out / 'img_dir' / 'train'), _names(out / 'img_dir' / 'val')
    assert (len(train), len(val)) == (8, 2) and sorted(train + val) == names
    for split, split_names in (('train', train), ('val', val)):
        assert _names(out / 'ann_dir' / split) == split_names
        for name in split_names:
            _check_pair(out, split, name, top / 'images' / f'{name}.jpg',
                        top / 'masks' / f'{name}.jpg')
    # The default val ratio (0.12: 120 of Kvasir-SEG's 1000) on 10 pairs gives 1.
    kvasir_seg.main([str(top), '-o', str(tmp_path / 'default')])
    assert len(_read_list(tmp_path / 'default' / 'splits' / 'val.txt')) == 1


def _pranet_tree(root: Path) -> dict:
    """TrainDataset/{image,mask} and TestDataset/SUBSET/{images,masks} as PNG files
    made from the real sample; returns {split: (image folder, mask folder, names)}."""
    layout = {
        'train': (root / 'TrainDataset' / 'image', root / 'TrainDataset' / 'mask',
                  SAMPLE_NAMES[:6])
    }
    for i, subset in enumerate(SUBSETS):
        folder = root / 'TestDataset' / subset
        layout[f'test/{subset}'] = (folder / 'images', folder / 'masks',
                                    SAMPLE_NAMES[6 + 2 * i:8 + 2 * i])
    for image_dir, mask_dir, names in layout.values():
        image_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for name in names:
            image = cv2.imread(str(_sample_image(name)))
            mask = cv2.imread(str(_sample_mask(name)))  # 3 channels, as some are
            cv2.imwrite(str(image_dir / f'{name}.png'), image)
            cv2.imwrite(str(mask_dir / f'{name}.png'), mask)
    return layout


@needs_clinicdb_sample
def test_pranet_converter_keeps_the_official_split(tmp_path):
    layout = _pranet_tree(tmp_path / 'src')
    out = tmp_path / 'out'
    pranet_polyp.main([str(tmp_path / 'src'), '-o', str(out)])
    subsets = sorted(p.name for p in (out / 'img_dir' / 'test').iterdir())
    assert subsets == sorted(SUBSETS)
    for split, (image_dir, mask_dir, names) in layout.items():
        assert _names(out / 'img_dir' / split) == sorted(names)
        assert _names(out / 'ann_dir' / split) == sorted(names)
        assert _read_list(out / 'splits' / f'{split}.txt') == sorted(names)
        for name in names:
            _check_pair(out, split, name, image_dir / f'{name}.png',
                        mask_dir / f'{name}.png')


@needs_clinicdb_sample
def test_pranet_subsets_argument_and_missing_subset(tmp_path):
    _pranet_tree(tmp_path / 'src')
    out = tmp_path / 'out'
    pranet_polyp.main([str(tmp_path / 'src'), '-o', str(out), '--subsets', 'Kvasir'])
    assert [p.name for p in (out / 'img_dir' / 'test').iterdir()] == ['Kvasir']
    shutil.rmtree(tmp_path / 'src' / 'TestDataset' / 'CVC-300')
    with pytest.raises(FileNotFoundError, match='CVC-300'):
        pranet_polyp.main([str(tmp_path / 'src'), '-o', str(tmp_path / 'out2')])


@pytest.mark.parametrize('script,words', [
    ('kvasir_seg.py', ['Kvasir-SEG/images/', 'Kvasir-SEG/masks/', '--val-ratio']),
    ('cvc_clinicdb.py', ['Ground Truth', '_fram', '--seed']),
    ('pranet_polyp.py', ['TrainDataset/', 'TestDataset/', 'ETIS-LaribPolypDB']),
])
def test_help_explains_the_input_layout(script, words):
    result = subprocess.run(
        [sys.executable, str(CONVERTERS / script), '--help'],
        capture_output=True,
        text=True)
    assert result.returncode == 0
    for word in words + ['--force', '--out']:
        assert word in result.stdout, word
