"""Every 2-D config can be tested with --tta: it has a tta_model and a tta_pipeline that
runs on an image of its data and yields the views the config's comment states."""
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.config_smoke import REPO, config_paths

# The 2-D configs: the volumetric ones (crop D x H x W, e.g. the 3-D demo) have their
# own test-time path (sliding-window inference).
CONFIGS = [
    p for p in config_paths('mcanet', 'segnext', 'dca', 'hff', 'blocks', 'demo')
    if not re.search(r'\d+x\d+x\d+\.py$', p)
]


def views(path: str) -> int:
    """The number of augmented views a config's TTA averages."""
    name = osp.basename(path)
    if 'synapse' in name or path.startswith(osp.join(REPO, 'configs', 'demo')):
        return 2  # none, horizontal flip
    if name.startswith(('mcanet_', 'segnext_')):
        return 12  # 6 scales x (none, horizontal flip), as mmseg's configs
    return 3  # DCA-style polyp configs: none, horizontal, vertical flip


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('tta')
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 20:50] = 1
    cv2.imwrite(str(root / 'img.png'), image)
    cv2.imwrite(str(root / 'mask.png'), mask)
    return root


def test_every_2d_config_is_covered():
    assert len(CONFIGS) == 28  # mcanet 10, segnext 3, dca 5, hff 2, blocks 7, demo 1


@pytest.mark.parametrize(
    'path', CONFIGS, ids=lambda p: osp.relpath(p, osp.join(REPO, 'configs')))
def test_tta_pipeline_runs_on_an_image(path, sample):
    cfg = Config.fromfile(path)
    assert cfg.tta_model.type == 'SegTTAModel'
    init_default_scope('mmseg')
    pipeline = Compose(cfg.tta_pipeline)
    results = pipeline(
        dict(
            img_path=str(sample / 'img.png'),
            seg_map_path=str(sample / 'mask.png'),
            reduce_zero_label=False,
            seg_fields=[],
            subset='Kvasir'))
    assert len(results['inputs']) == len(results['data_samples']) == views(path)
    for data_sample in results['data_samples']:
        # the ground truth stays at the original size, where predictions are scored
        assert tuple(data_sample.gt_sem_seg.data.shape) == (1, 60, 80)
        assert data_sample.ori_shape == (60, 80)
