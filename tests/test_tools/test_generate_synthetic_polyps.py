"""Tests for tools/misc/generate_synthetic_polyps.py."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'misc' / 'generate_synthetic_polyps.py'

generator = load_script('tools/misc/generate_synthetic_polyps.py')


def _generate(out: Path, *extra) -> Path:
    generator.main([
        '--out',
        str(out), '--num-train', '12', '--num-val', '4', '--size', '64', *extra
    ])
    return out


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp('synthetic') / 'out', '--seed', '5')


def test_layout_and_masks(dataset):
    lesions = 0
    for split, count in (('train', 12), ('val', 4)):
        names = sorted(p.stem for p in (dataset / 'img_dir' / split).glob('*.png'))
        assert len(names) == count
        masks = sorted(p.stem for p in (dataset / 'ann_dir' / split).glob('*.png'))
        assert masks == names
        assert (dataset / 'splits' / f'{split}.txt').read_text().split() == names
        for name in names:
            image = cv2.imread(
                str(dataset / 'img_dir' / split / f'{name}.png'), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(
                str(dataset / 'ann_dir' / split / f'{name}.png'), cv2.IMREAD_UNCHANGED)
            assert image.shape == (64, 64, 3) and image.dtype == np.uint8
            assert mask.shape == (64, 64) and mask.dtype == np.uint8
            assert set(np.unique(mask).tolist()) <= {0, 1}
            assert mask.mean() < 0.5
            lesions += bool(mask.any())
            # Mucosa-like: red dominates on average.
            assert image[..., 2].mean() > image[..., 1].mean()
    assert lesions >= 14  # a lesion in most of the 16 images
    info = (dataset / 'splits' / 'info.txt').read_text()
    assert 'seed: 5' in info and 'count train: 12' in info


def test_lesions_differ_from_background_but_not_trivially(dataset):
    """Mean colour inside the masks differs from outside, yet the ranges overlap: no
    single-channel threshold gives the mask."""
    images, masks = [], []
    for path in sorted((dataset / 'img_dir' / 'train').glob('*.png')):
        images.append(cv2.imread(str(path)).astype(np.float64))
        masks.append(cv2.imread(str(path).replace('img_dir', 'ann_dir'), 0) > 0)
    pixels, labels = np.concatenate([i.reshape(-1, 3) for i in images
                                     ]), np.concatenate([m.reshape(-1) for m in masks])
    inside, outside = pixels[labels].mean(0), pixels[~labels].mean(0)
    assert np.abs(inside - outside).max() > 5
    for channel in range(3):
        low, high = np.percentile(pixels[labels, channel], [10, 90])
        overlap = np.mean((pixels[~labels, channel] > low)
                          & (pixels[~labels, channel] < high))
        assert overlap > 0.2


def test_deterministic_for_a_seed(dataset, tmp_path):
    same = _generate(tmp_path / 'same', '--seed', '5')
    assert _snapshot(same) == _snapshot(dataset)
    other = _generate(tmp_path / 'other', '--seed', '6')
    first = 'img_dir/train/synthetic_train_00000.png'
    assert _snapshot(other)[first] != _snapshot(dataset)[first]


def test_sample_depends_only_on_seed_split_and_index(dataset, tmp_path):
    out = tmp_path / 'out'
    generator.main([
        '--out',
        str(out), '--num-train', '3', '--num-val', '4', '--size', '64', '--seed', '5'
    ])
    ours, full = _snapshot(out), _snapshot(dataset)
    for key in ours:
        if key.startswith(('img_dir', 'ann_dir')):
            assert ours[key] == full[key], key


def test_refuses_non_empty_output_unless_force(dataset, tmp_path):
    out = _generate(tmp_path / 'out')
    before = _snapshot(out)
    with pytest.raises(FileExistsError, match='--force') as err:
        _generate(out, '--seed', '1')
    assert str(out) in str(err.value)
    assert _snapshot(out) == before
    _generate(out, '--seed', '5', '--force')
    assert _snapshot(out) == _snapshot(dataset)


@pytest.mark.parametrize('args',
                         [['--size', '16'], ['--num-train', '0'], ['--seed', '-1']])
def test_rejects_bad_arguments(tmp_path, args):
    with pytest.raises(SystemExit):
        generator.main(['--out', str(tmp_path / 'out'), *args])


def test_cli(tmp_path):
    out = tmp_path / 'out'
    result = subprocess.run([
        sys.executable,
        str(SCRIPT), '--out',
        str(out), '--num-train', '2', '--num-val', '1'
    ],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(out / 'img_dir' / 'val' / 'synthetic_val_00000.png'))
    assert image.shape == (128, 128, 3)  # the default size
    again = subprocess.run(
        [sys.executable, str(SCRIPT), '--out',
         str(out)],
        capture_output=True,
        text=True)
    assert again.returncode != 0 and '--force' in again.stderr


def test_output_loads_as_polyp_dataset(dataset):
    from mmseg.registry import DATASETS

    val = DATASETS.build(
        dict(
            type='PolypDataset',
            data_root=str(dataset),
            ann_file='splits/val.txt',
            data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
    assert len(val) == 4
