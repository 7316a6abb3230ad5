"""Every 3-D config (configs/dnet, the 3-D demo and the real-CT overfit check) builds
its model and predicts logits at a small patch; each configs/dnet header names its
recipe and memory estimate; the model zoo metafile lists exactly the configs of the
folder. (Training losses of the data path run in test_real_ct_volumetric.py and the
demo test.)"""
import os.path as osp

import pytest
import torch
import yaml
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from tests.config_smoke import REPO, config_paths, load_config

DEMO_3D = osp.join(REPO, 'configs', 'demo',
                   'dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py')
OVERFIT_3D = osp.join(
    REPO, 'configs', 'demo',
    'dnet-tiny_dlk-w8_1xb2-adamw-400it_totalseg-ct-overfit-32x32x32.py')
CONFIGS = config_paths('dnet') + [DEMO_3D, OVERFIT_3D]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: where the 2 cores are shared with other jobs, PyTorch's
    default (a thread per core) made these 3-D runs 5-50 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_its_model_and_predicts_at_a_small_patch(path):
    cfg = load_config(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    num_classes = model.decode_head.num_classes
    assert num_classes == (16 if 'amos' in osp.basename(path) else 14)
    patch = cfg.model.test_cfg.patch_size
    assert all(s % model.size_divisor == 0 for s in patch), patch
    # The smallest patch the network takes: sides of its total stride, the last one
    # doubled where instance norms (U-Net, SwinUNETR) need more than one voxel at the
    # deepest level.
    side = model.size_divisor
    has_instance_norm = any(
        isinstance(m, torch.nn.modules.instancenorm._InstanceNorm)
        for m in model.modules())
    size = (side, side, 2 * side if has_instance_norm else side)

    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 1, *size))
    assert logits.shape == (1, num_classes, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize('path', config_paths('dnet'), ids=osp.basename)
def test_config_header_states_recipe_sources_and_memory(path):
    with open(path) as f:
        header = ''.join(line for line in f if line.startswith('#'))
    for word in ('patch', 'spacing', 'lr', 'iterations', '24 GB', 'estimate'):
        assert word in header, f'{osp.basename(path)} header lacks {word!r}'


def test_metafile_lists_every_config_of_the_folder():
    with open(osp.join(REPO, 'configs', 'dnet', 'metafile.yaml')) as f:
        metafile = yaml.safe_load(f)
    listed = sorted(osp.join(REPO, model['Config']) for model in metafile['Models'])
    assert listed == config_paths('dnet')
    collections = {c['Name'] for c in metafile['Collections']}
    for model in metafile['Models']:
        assert model['In Collection'] in collections
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
