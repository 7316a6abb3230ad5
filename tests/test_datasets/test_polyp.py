"""Tests for mmseg_fusion/datasets/polyp.py on the converted real CVC-ClinicDB
sample."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from tests.scripts import load_script
from tests.shared_data import CLINICDB_SAMPLE, needs_clinicdb_sample

REPO = Path(__file__).resolve().parents[2]
CONVERTERS = REPO / 'tools' / 'dataset_converters'
SAMPLE = CLINICDB_SAMPLE


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Pipelines name mmseg transforms, found through the default scope."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> Path:
    """The real sample converted to the polyp layout (16 train, 4 val)."""
    out = tmp_path_factory.mktemp('polyp') / 'clinicdb'
    converter = load_script('tools/dataset_converters/cvc_clinicdb.py')
    converter.main([str(SAMPLE), '-o', str(out)])
    return out


def _build(root: Path, split: str = 'train', **kwargs):
    cfg = dict(
        type='PolypDataset',
        data_root=str(root),
        data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


@needs_clinicdb_sample
def test_loads_converted_sample(converted):
    train, val = _build(converted), _build(converted, 'val')
    assert (len(train), len(val)) == (16, 4)
    assert train.metainfo['classes'] == ('background', 'polyp')
    assert len(train.metainfo['palette']) == 2
    names = set()
    for dataset, split in ((train, 'train'), (val, 'val')):
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            image, mask = Path(info['img_path']), Path(info['seg_map_path'])
            assert image.parent == converted / 'img_dir' / split
            assert mask == converted / 'ann_dir' / split / image.name
            assert image.is_file() and mask.is_file()
            assert info['reduce_zero_label'] is False and 'subset' not in info
            names.add(image.stem)
    assert names == {f'fine_3_{i}' for i in range(1, 21)}


@needs_clinicdb_sample
def test_ann_file_and_subset(converted):
    dataset = _build(converted, 'val', ann_file='splits/val.txt', subset='CVC-ClinicDB')
    assert len(dataset) == 4
    expected = (converted / 'splits' / 'val.txt').read_text().split()
    stems = [Path(dataset.get_data_info(i)['img_path']).stem for i in range(4)]
    assert stems == expected
    assert {dataset.get_data_info(i)['subset'] for i in range(4)} == {'CVC-ClinicDB'}


@needs_clinicdb_sample
def test_pipeline_gives_binary_gt_and_subset_meta(converted):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(
            type='PackSegInputs',
            meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'subset')),
    ]
    dataset = _build(converted, 'val', pipeline=pipeline, subset='ClinicDB-sample')
    for index in range(len(dataset)):
        sample = dataset[index]
        gt = sample['data_samples'].gt_sem_seg.data
        assert tuple(gt.shape) == (1, 288, 384)
        assert tuple(sample['inputs'].shape) == (3, 288, 384)
        assert set(np.unique(gt.numpy()).tolist()) == {0, 1}
        assert sample['data_samples'].metainfo['subset'] == 'ClinicDB-sample'


@needs_clinicdb_sample
def test_missing_mask_names_image_and_expected_path(converted, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(converted, root)
    name = (root / 'splits' / 'val.txt').read_text().split()[0]
    mask = root / 'ann_dir' / 'val' / f'{name}.png'
    mask.unlink()
    image = root / 'img_dir' / 'val' / mask.name
    with pytest.raises(FileNotFoundError) as err:
        _build(root, 'val')
    assert str(image) in str(err.value) and str(mask) in str(err.value)


def test_missing_or_empty_image_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist') as err:
        _build(tmp_path, 'train')
    assert str(tmp_path / 'img_dir' / 'train') in str(err.value)
    (tmp_path / 'img_dir' / 'train').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='holds no image') as err:
        _build(tmp_path, 'train')
    assert str(tmp_path / 'img_dir' / 'train') in str(err.value)


@needs_clinicdb_sample
def test_image_listed_in_ann_file_must_exist(converted, tmp_path):
    (tmp_path / 'list.txt').write_text('not_there\n')
    with pytest.raises(FileNotFoundError, match='not_there.png'):
        _build(converted, 'val', ann_file=str(tmp_path / 'list.txt'))


@pytest.mark.parametrize('kwargs,name', [
    (dict(reduce_zero_label=True), 'reduce_zero_label'),
    (dict(subset=''), 'subset'),
    (dict(subset=3), 'subset'),
])
@needs_clinicdb_sample
def test_rejects_bad_arguments(converted, kwargs, name):
    with pytest.raises(ValueError, match=name):
        _build(converted, **kwargs)


@needs_clinicdb_sample
def test_reads_raw_jpeg_sample_with_binarize_transform():
    """PolypDataset pointed at the raw sample (suffixes pair *_fram.jpg with
    *_mask.jpg); BinarizeSegMap turns the lossy 0/255 masks into {0, 1}."""

    def build(transforms, **kwargs):
        return DATASETS.build(
            dict(
                type='PolypDataset',
                data_root=str(SAMPLE),
                img_suffix='_fram.jpg',
                seg_map_suffix='_mask.jpg',
                data_prefix=dict(img_path='images', seg_map_path='masks'),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'), *transforms,
                    dict(type='PackSegInputs')
                ],
                **kwargs))

    # Without BinarizeSegMap the 0/255 masks are refused when the dataset is built
    # (255 is mmseg's ignore index: the polyps would never be learned).
    with pytest.raises(
            ValueError,
            match=r'fine_3_10_mask\.jpg holds the values .*255'
            r'.* outside the class ids 0\.\.1.*BinarizeSegMap'):
        build([])
    raw = build([], check_files=False)
    assert len(raw) == 20
    raw_values = np.unique(raw[0]['data_samples'].gt_sem_seg.data.numpy())
    assert len(raw_values) > 2  # lossy JPEG: not a clean label map
    binary = build([dict(type='BinarizeSegMap', threshold=128)])
    gt = binary[0]['data_samples'].gt_sem_seg.data.numpy()
    assert set(np.unique(gt).tolist()) == {0, 1}
    raw_gt = raw[0]['data_samples'].gt_sem_seg.data.numpy()
    np.testing.assert_array_equal(gt, (raw_gt >= 128).astype(np.uint8))
