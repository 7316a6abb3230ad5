"""Bad data is refused with a message naming the file, or handled as documented, by
every converter and dataset (issue 10, section 4; the README's bad-data table).

Each test builds a small source (or converted) folder of good pairs plus one pair
spoilt in one way, then runs a converter or builds a dataset:

- an error must name the file, the value found and what was expected, and come
  before any training (converters: before the output folder appears; datasets: when
  the dataset is built, not when a sample is drawn);
- a converter that fails leaves no output folder and no temporary folder behind, and
  an existing output folder exactly as it was;
- a handled case must give the documented result (RGBA -> RGB, 16-bit -> 8-bit,
  grey -> three channels, 0/1 and 16-bit masks kept, empty masks kept and listed).
"""
import gzip
import json
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import nibabel as nib
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from mmseg_fusion.utils.abdominal_labels import AMOS_CLASSES, BTCV_CLASSES
from tests.scripts import load_script
from tests.shared_data import CLINICDB_SAMPLE, needs_clinicdb_sample

H, W = 24, 32
NAMES = ('a', 'b', 'c', 'd')  # 'b' is the spoilt pair
BAD = 'b'


# --------------------------------------------------------------------- 2-D files
def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _mask(high: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[6:18, 8:20] = high
    return mask


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


# Spoil the bad pair (image, mask; mask values 0/``high``); return the expected
# outcome: ('error', [texts the message must hold]) or ('ok', check(out_image,
# out_mask)). ``{img}``/``{mask}`` in texts stand for the spoilt files' paths.
def _corrupt_image(img: Path, mask: Path, high: int):
    img.write_bytes(b'this is not an image')
    return 'error', ['{img}', 'cannot read']


def _truncated_image(img: Path, mask: Path, high: int):
    _truncate(img)
    return 'error', ['{img}']


def _truncated_mask(img: Path, mask: Path, high: int):
    _truncate(mask)
    return 'error', ['{mask}']


def _rgba_image(img: Path, mask: Path, high: int):
    bgr = _image(1)
    _write(img, np.dstack([bgr, np.full((H, W), 9, np.uint8)]))
    return 'ok', lambda out, _: np.array_equal(out, bgr)


def _image_16bit(img: Path, mask: Path, high: int):
    bgr = _image(1)
    _write(img, bgr.astype(np.uint16) * 256 + 100)  # cv2 keeps the high byte
    return 'ok', lambda out, _: np.array_equal(out, bgr)


def _grayscale_image(img: Path, mask: Path, high: int):
    grey = _image(1)[..., 0]
    _write(img, grey)
    return 'ok', lambda out, _: all(np.array_equal(out[..., c], grey) for c in range(3))


def _mask_not_binary(img: Path, mask: Path, high: int):
    levels = np.repeat(np.array([0, 85, 170, 255], np.uint8), W // 4)
    _write(mask, np.tile(levels, (H, 1)))
    return 'error', ['{mask}', '170']


def _mask_other_size(img: Path, mask: Path, high: int):
    _write(mask, cv2.resize(_mask(high), (W + 4, H), interpolation=cv2.INTER_NEAREST))
    return 'error', ['{mask}', '{img}', f'{W + 4}x{H}', f'{W}x{H}', 'same size']


def _mask_empty(img: Path, mask: Path, high: int):
    _write(mask, np.zeros((H, W), np.uint8))
    return 'ok', lambda _, out: not out.any()


def _image_without_mask(img: Path, mask: Path, high: int):
    mask.unlink()
    return 'error', ['{img}', 'no mask']


def _mask_without_image(img: Path, mask: Path, high: int):
    img.unlink()
    return 'ok', None  # the orphan mask is ignored: the pair is absent


def _mask_label_ids(img: Path, mask: Path, high: int):
    ids = _mask(1)
    ids[0:4, 0:4] = 2
    _write(mask, ids)
    return 'error', ['{mask}', '2', '0..1' if high == 1 else 'binary']


def _mask_16bit(img: Path, mask: Path, high: int):
    _write(mask, _mask(high).astype(np.uint16) * (257 if high == 255 else 1))
    return 'ok', lambda _, out: np.array_equal(out, _mask(1))


def _mask_01(img: Path, mask: Path, high: int):
    _write(mask, _mask(1))
    return 'ok', lambda _, out: np.array_equal(out, _mask(1))


def _colour_mask(img: Path, mask: Path, high: int):
    _write(mask, np.dstack([_mask(high)] * 3))
    return 'error', ['{mask}', "'RGB'", 'single-channel']


CASES_2D: Dict[str, Callable] = {
    'corrupt image': _corrupt_image,
    'truncated image': _truncated_image,
    'truncated mask': _truncated_mask,
    'RGBA image': _rgba_image,
    '16-bit image': _image_16bit,
    'grayscale image': _grayscale_image,
    'mask not binary': _mask_not_binary,
    'mask of another size': _mask_other_size,
    'empty mask': _mask_empty,
    'image without mask': _image_without_mask,
    'mask without image': _mask_without_image,
    'label ids out of range': _mask_label_ids,
    '16-bit mask': _mask_16bit,
    '0/1 mask': _mask_01,
    'colour mask': _colour_mask,
}


def _expand(texts: List[str], img: Path, mask: Path) -> List[str]:
    """``{img}`` and ``{mask}`` (or ``{label}``) replaced by the files' paths."""
    return [t.format(img=img, mask=mask, label=mask) for t in texts]


def _assert_names(message: str, texts: List[str]) -> None:
    for text in texts:
        assert text in message, f'{text!r} not in {message!r}'


# --------------------------------------------------------------- polyp converters
def _source_pairs(root: Path,
                  image_dir: str,
                  mask_dir: str,
                  image_suffix: str = '',
                  mask_suffix: str = '') -> Dict[str, Tuple[Path, Path]]:
    pairs = {}
    for index, name in enumerate(NAMES):
        img = _write(root / image_dir / f'{name}{image_suffix}.png', _image(index))
        mask = _write(root / mask_dir / f'{name}{mask_suffix}.png', _mask(255))
        pairs[name] = (img, mask)
    return pairs


def _kvasir(root: Path):
    pairs = _source_pairs(root / 'Kvasir-SEG', 'images', 'masks')
    return pairs, [str(root), '--val-num', '1'], ('train', 'val')


def _cvc(root: Path):
    pairs = _source_pairs(root, 'images', 'masks', '_fram', '_mask')
    return pairs, [str(root), '--val-num', '1'], ('train', 'val')


def _pranet(root: Path):
    pairs = _source_pairs(root / 'TrainDataset', 'image', 'mask')
    _source_pairs(root / 'TestDataset' / 'Kvasir', 'images', 'masks')
    return pairs, [str(root), '--subsets', 'Kvasir'], ('train', )


POLYP_CONVERTERS = {
    'kvasir_seg': _kvasir,
    'cvc_clinicdb': _cvc,
    'pranet_polyp': _pranet,
}


def _leftovers(out: Path) -> List[Path]:
    """Temporary folders the converters write beside ``out``."""
    return sorted(out.parent.glob(f'.{out.name}.*'))


def _converted(out: Path, splits, name: str) -> Optional[Tuple[np.ndarray, ...]]:
    for split in splits:
        img = out / 'img_dir' / split / f'{name}.png'
        if img.exists():
            return (cv2.imread(str(img), cv2.IMREAD_UNCHANGED),
                    cv2.imread(
                        str(out / 'ann_dir' / split / f'{name}.png'),
                        cv2.IMREAD_UNCHANGED))
    return None


@pytest.mark.parametrize('case', list(CASES_2D))
@pytest.mark.parametrize('converter', list(POLYP_CONVERTERS))
def test_polyp_converter(converter, case, tmp_path):
    pairs, args, splits = POLYP_CONVERTERS[converter](tmp_path / 'src')
    img, mask = pairs[BAD]
    outcome, detail = CASES_2D[case](img, mask, 255)
    if case == 'colour mask':  # the public Kvasir-SEG masks are RGB: handled
        outcome, detail = 'ok', lambda _, out: np.array_equal(out, _mask(1))
    out = tmp_path / 'out'
    main = load_script(f'tools/dataset_converters/{converter}.py').main
    if outcome == 'error':
        with pytest.raises((ValueError, FileNotFoundError)) as error:
            main([*args, '-o', str(out)])
        _assert_names(str(error.value), _expand(detail, img, mask))
        assert not out.exists() and not _leftovers(out)
        return
    main([*args, '-o', str(out)])
    assert not _leftovers(out)
    result = _converted(out, splits, BAD)
    if detail is None:
        assert result is None
        return
    out_image, out_mask = result
    assert out_image.shape == (H, W, 3) and out_image.dtype == np.uint8
    assert out_mask.shape == (H, W) and set(np.unique(out_mask)) <= {0, 1}
    assert detail(out_image, out_mask)
    if case == 'empty mask':
        info = (out / 'splits' / 'info.txt').read_text()
        assert re.search(r'empty_masks: 1 \w+/b$', info, re.M), info


@pytest.mark.parametrize('converter', list(POLYP_CONVERTERS))
def test_polyp_converter_keeps_the_old_output_on_failure(converter, tmp_path):
    """--force into a finished output, then a bad file half-way: the old output
    stays as it was (the new one was written to a temporary folder)."""
    pairs, args, _ = POLYP_CONVERTERS[converter](tmp_path / 'src')
    out = tmp_path / 'out'
    main = load_script(f'tools/dataset_converters/{converter}.py').main
    main([*args, '-o', str(out)])
    before = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()}
    _truncate(pairs['d'][1])  # the last pair: the others are written first
    with pytest.raises(ValueError, match=re.escape(str(pairs['d'][1]))):
        main([*args, '-o', str(out), '--force'])
    assert {p: p.read_bytes() for p in out.rglob('*') if p.is_file()} == before
    assert not _leftovers(out)


def test_truncated_jpeg_is_refused(tmp_path):
    """cv2 decodes a truncated JPEG without an error (grey where data is missing):
    the converters check the file with Pillow."""
    pairs, args, _ = _kvasir(tmp_path / 'src')
    img = pairs[BAD][0]
    jpeg = img.with_suffix('.jpg')
    _write(jpeg, _image(1))
    img.unlink()
    _truncate(jpeg)
    assert cv2.imread(str(jpeg)) is not None  # what the check is for
    main = load_script('tools/dataset_converters/kvasir_seg.py').main
    with pytest.raises(
            ValueError,
            match=f'{re.escape(str(jpeg))} is damaged .*'
            'truncated.*expected a complete image'):
        main([*args, '-o', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


@needs_clinicdb_sample
def test_real_clinicdb_masks_pass_the_binary_check(tmp_path):
    """The real CVC-ClinicDB JPEG masks (lossy: values all over 0..255 along the
    edges) are binary enough: converted, every mask {0, 1}, none empty."""
    main = load_script('tools/dataset_converters/cvc_clinicdb.py').main
    out = tmp_path / 'out'
    main([str(CLINICDB_SAMPLE), '-o', str(out), '--val-num', '4'])
    masks = list((out / 'ann_dir').rglob('*.png'))
    assert len(masks) == 20
    assert all(set(np.unique(cv2.imread(str(m), 0))) == {0, 1} for m in masks)
    assert 'empty_masks: 0' in (out / 'splits' / 'info.txt').read_text()


# ------------------------------------------------------------------ 2-D datasets
def _polyp_layout(root: Path) -> Tuple[Dict[str, Tuple[Path, Path]], dict]:
    pairs = {}
    for index, name in enumerate(NAMES):
        pairs[name] = (_write(root / 'img_dir' / 'train' / f'{name}.png',
                              _image(index)),
                       _write(root / 'ann_dir' / 'train' / f'{name}.png', _mask(1)))
    return pairs, dict(type='PolypDataset')


def _synapse_layout(root: Path) -> Tuple[Dict[str, Tuple[Path, Path]], dict]:
    pairs = {}
    for index, name in enumerate(NAMES):
        stem = f'case0001_slice{index:03d}'
        labels = _mask(1) * (index + 5)  # organ ids 5..8
        pairs[name] = (_write(root / 'img_dir' / 'train' / f'{stem}.png',
                              _image(index)[..., 0]),
                       _write(root / 'ann_dir' / 'train' / f'{stem}.png', labels))
    (root / 'spacing.json').write_text(json.dumps({'case0001': [0.8, 0.8, 3.0]}))
    return pairs, dict(type='SynapseSliceDataset')


SLICE_DATASETS = {'PolypDataset': _polyp_layout, 'SynapseSliceDataset': _synapse_layout}
# Cases of the converters' input that do not apply to a dataset's input.
NOT_FOR_DATASETS = ('16-bit mask', '0/1 mask')


def _build_slices(root: Path, dataset: dict):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(
            dict(
                dataset,
                data_root=str(root),
                data_prefix=dict(
                    img_path='img_dir/train', seg_map_path='ann_dir/train'),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs')
                ]))


@pytest.mark.parametrize('case', [c for c in CASES_2D if c not in NOT_FOR_DATASETS])
@pytest.mark.parametrize('dataset_type', list(SLICE_DATASETS))
def test_slice_dataset(dataset_type, case, tmp_path):
    pairs, dataset = SLICE_DATASETS[dataset_type](tmp_path / 'data')
    img, mask = pairs[BAD]
    outcome, detail = CASES_2D[case](img, mask, 1)
    if case == 'mask not binary' and dataset_type == 'SynapseSliceDataset':
        detail = ['{mask}', '[85, 170, 255]', '0..8']
    if case == 'label ids out of range' and dataset_type == 'SynapseSliceDataset':
        _write(mask, _mask(1) * 9)
        detail = ['{mask}', '[9]', '0..8']
    if outcome == 'error':
        with pytest.raises((ValueError, FileNotFoundError)) as error:
            _build_slices(tmp_path / 'data', dataset)
        _assert_names(str(error.value), _expand(detail, img, mask))
        return
    built = _build_slices(tmp_path / 'data', dataset)
    paths = [built.get_data_info(i)['img_path'] for i in range(len(built))]
    if detail is None:
        assert str(img) not in paths and len(built) == len(NAMES) - 1
        return
    sample = built[paths.index(str(img))]
    image = sample['inputs'].numpy().transpose(1, 2, 0)
    labels = sample['data_samples'].gt_sem_seg.data.numpy()[0]
    assert image.shape == (H, W, 3)
    assert detail(image, labels if dataset_type == 'PolypDataset' else labels > 0)


# ------------------------------------------------------------------ NIfTI files
SHAPE = (12, 10, 6)
AFFINE = np.diag([1.5, 1.5, 3.0, 1.0])


def _volume(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-200, 300, SHAPE).astype(np.int16)


def _labels() -> np.ndarray:
    """Random ids 0..3 (random, so a few bytes cut from the end of the compressed
    file cut voxels, not the header)."""
    return np.random.default_rng(7).integers(0, 4, SHAPE).astype(np.uint8)


def _save(path: Path, data: np.ndarray, affine=AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _broken_image_header(img: Path, label: Path):
    img.write_bytes(gzip.compress(b'\0' * 400))
    return 'error', ['{img}', 'NIfTI']


def _broken_label_header(img: Path, label: Path):
    label.write_bytes(gzip.compress(b'not a header' * 40))
    return 'error', ['{label}', 'NIfTI']


def _truncate_end(path: Path, size: int = 12) -> None:
    """Cut the gzip trailer and the last deflated bytes: the header stays readable,
    the voxels end early."""
    data = path.read_bytes()
    path.write_bytes(data[:-size])


def _truncated_image_nifti(img: Path, label: Path):
    _truncate_end(img)
    return 'error', ['{img}', 'expected a complete NIfTI file']


def _truncated_label_nifti(img: Path, label: Path):
    _truncate_end(label)
    return 'error', ['{label}', 'expected a complete NIfTI file']


def _image_2d(img: Path, label: Path):
    _save(img, _volume(1)[..., 0])
    return 'error', ['{img}', '(12, 10)', '3-D']


def _shape_mismatch(img: Path, label: Path):
    _save(label, _labels()[..., :5])
    return 'error', ['{label}', '{img}', '(12, 10, 5)', '(12, 10, 6)']


def _ids_out_of_range(img: Path, label: Path):
    labels = _labels()
    labels[0, 0, 0] = 99
    _save(label, labels)
    return 'error', ['{label}', '99', '0..']


def _fractional_label(img: Path, label: Path):
    _save(label, _labels().astype(np.float32) + np.float32(0.25) * (_labels() == 2))
    return 'error', ['{label}', 'non-integer', '2.25']


def _empty_label(img: Path, label: Path):
    _save(label, np.zeros(SHAPE, np.uint8))
    return 'ok', None


def _image_without_label(img: Path, label: Path):
    label.unlink()
    return 'error', ['label', '0002']


CASES_3D: Dict[str, Callable] = {
    'broken image header': _broken_image_header,
    'broken label header': _broken_label_header,
    'truncated image': _truncated_image_nifti,
    'truncated label': _truncated_label_nifti,
    '2-D image': _image_2d,
    'image and label of different shapes': _shape_mismatch,
    'label ids out of range': _ids_out_of_range,
    'fractional label': _fractional_label,
    'empty label': _empty_label,
    'image without label': _image_without_label,
}
CASE_NUMBERS = (1, 2, 3)


def _btcv_source(root: Path) -> Tuple[Tuple[Path, Path], List[str]]:
    training = root / 'RawData' / 'Training'
    for number in CASE_NUMBERS:
        _save(training / 'img' / f'img{number:04d}.nii.gz', _volume(number))
        _save(training / 'label' / f'label{number:04d}.nii.gz', _labels())
    bad = (training / 'img' / 'img0002.nii.gz', training / 'label' / 'label0002.nii.gz')
    return bad, [str(root), '--protocol', 'all']


def _synapse_source(root: Path) -> Tuple[Tuple[Path, Path], List[str]]:
    bad, _ = _btcv_source(root)
    return bad, [str(root), '--train-cases', '1', '2', '--test-cases', '3']


def _amos_source(root: Path) -> Tuple[Tuple[Path, Path], List[str]]:
    training = []
    for number in CASE_NUMBERS:
        image = _save(root / 'imagesTr' / f'amos_{number:04d}.nii.gz', _volume(number))
        _save(root / 'labelsTr' / f'amos_{number:04d}.nii.gz', _labels())
        training.append(
            dict(image=f'./imagesTr/{image.name}', label=f'./labelsTr/{image.name}'))
    content = dict(
        name='AMOS',
        labels={
            str(i): n
            for i, n in enumerate(AMOS_CLASSES)
        },
        training=training,
        validation=[],
        test=[])
    (root / 'dataset.json').write_text(json.dumps(content))
    bad = (root / 'imagesTr' / 'amos_0002.nii.gz',
           root / 'labelsTr' / 'amos_0002.nii.gz')
    return bad, [str(root), '--val-ratio', '0']


VOLUME_CONVERTERS = {
    'btcv': _btcv_source,
    'amos': _amos_source,
    'synapse': _synapse_source
}


@pytest.mark.parametrize('case', list(CASES_3D))
@pytest.mark.parametrize('converter', list(VOLUME_CONVERTERS))
def test_volume_converter(converter, case, tmp_path):
    (img, label), args = VOLUME_CONVERTERS[converter](tmp_path / 'src')
    outcome, detail = CASES_3D[case](img, label)
    out = tmp_path / 'out'
    main = load_script(f'tools/dataset_converters/{converter}.py').main
    if outcome == 'error':
        with pytest.raises((ValueError, FileNotFoundError)) as error:
            main([*args, '-o', str(out)])
        _assert_names(str(error.value), _expand(detail, img, label))
        assert not out.exists() and not _leftovers(out)
        return
    main([*args, '-o', str(out)])
    assert not _leftovers(out)
    if converter == 'synapse':
        written = sorted((out / 'ann_dir' / 'train').glob('case0002_*.png'))
        assert len(written) == SHAPE[2]
        assert not any(cv2.imread(str(p), 0).any() for p in written)
    else:
        stem = 'case0002' if converter == 'btcv' else 'amos_0002'
        written = nib.load(str(out / 'labelsTr' / f'{stem}.nii.gz'))
        assert not np.asanyarray(written.dataobj).any()


def test_synapse_converter_label_map_makes_unknown_ids_background(tmp_path):
    """With --label-map, ids the map does not list become background (documented);
    without one, they are an error (test_volume_converter)."""
    (img, label), args = _synapse_source(tmp_path / 'src')
    _ids_out_of_range(img, label)
    main = load_script('tools/dataset_converters/synapse.py').main
    main([*args, '-o', str(tmp_path / 'out'), '--label-map', '1:1,2:2,3:3'])
    assert (tmp_path / 'out' / 'spacing.json').is_file()


# --------------------------------------------------------------- volume datasets
VOLUME_DATASETS = {
    'MedicalVolumeDataset': ('background', 'a', 'b', 'c'),
    'BTCVDataset': BTCV_CLASSES,
    'AMOSDataset': AMOS_CLASSES,
}


def _volume_layout(root: Path, classes) -> Tuple[Path, Path]:
    cases = [f'case{n:04d}' for n in CASE_NUMBERS]
    for case in cases:
        _save(root / 'imagesTr' / f'{case}.nii.gz', _volume(int(case[-1])))
        _save(root / 'labelsTr' / f'{case}.nii.gz', _labels())
    content = dict(
        name='test',
        protocol='holdout',
        labels={
            str(i): n
            for i, n in enumerate(classes)
        },
        splits=dict(train=cases, val=[], test=[]))
    (root / 'dataset.json').write_text(json.dumps(content))
    return (root / 'imagesTr' / 'case0002.nii.gz',
            root / 'labelsTr' / 'case0002.nii.gz')


@pytest.mark.parametrize('case', list(CASES_3D))
@pytest.mark.parametrize('dataset_type', list(VOLUME_DATASETS))
def test_volume_dataset(dataset_type, case, tmp_path):
    root = tmp_path / 'data'
    img, label = _volume_layout(root, VOLUME_DATASETS[dataset_type])
    outcome, detail = CASES_3D[case](img, label)
    if case == 'label ids out of range':
        detail = ['{label}', '[99]', f'0..{len(VOLUME_DATASETS[dataset_type]) - 1}']
    config = dict(
        type=dataset_type,
        data_root=str(root),
        pipeline=[dict(type='LoadVolumeFromFile')])
    with DefaultScope.overwrite_default_scope('mmseg'):
        if outcome == 'error':
            with pytest.raises((ValueError, FileNotFoundError)) as error:
                DATASETS.build(config)
            _assert_names(str(error.value), _expand(detail, img, label))
            return
        dataset = DATASETS.build(config)
        assert not dataset[1]['gt_seg_map'].any()
