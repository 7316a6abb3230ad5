"""The layout of configs/: SegNeXt baselines in configs/segnext, the `_base_` fragments
(the DCA neck, the Synapse 9-class head), the PraNet base built on Kvasir-SEG's, and
each algorithm folder's README.md and metafile.yaml (mmseg's model-zoo format)
listing its configs with their parameters and FLOPs."""
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from tests.config_smoke import REPO, config_paths

FOLDERS = ('mcanet', 'segnext', 'dca', 'hff', 'blocks', 'demo')
BASE = osp.join(REPO, 'configs', '_base_')
VOLUMETRIC = re.compile(r'\d+x\d+x\d+\.py$')  # the 3-D configs, documented elsewhere


def configs_2d(folder):
    return [p for p in config_paths(folder) if not VOLUMETRIC.search(p)]


def rel(path):
    return osp.relpath(path, REPO)


def fromfile(*parts):
    return Config.fromfile(osp.join(REPO, 'configs', *parts))


def metafile(folder):
    with open(osp.join(REPO, 'configs', folder, 'metafile.yaml')) as f:
        return yaml.safe_load(f)


def test_segnext_baselines_live_in_configs_segnext():
    names = [osp.basename(p) for p in config_paths('segnext')]
    assert names == [
        f'segnext_mscan-t_1xb8-adamw-80k_{d}-224x224.py'
        for d in ('cvc-clinicdb', 'kvasir-seg', 'pranet-polyp')
    ]
    assert not [p for p in config_paths('mcanet') if 'segnext' in osp.basename(p)]
    for name in names:
        assert fromfile('segnext', name).model.decode_head.type == 'LightHamHead'


def test_dca_configs_take_their_neck_from_the_fragment():
    fragment = Config.fromfile(osp.join(BASE, 'models', 'dca_unet.py'))
    unet = Config.fromfile(osp.join(BASE, 'models', 'unet.py'))
    assert fragment.model.neck.type == 'DCANeck'
    without_neck = fragment.model.to_dict()
    without_neck.pop('neck')
    assert without_neck == unet.model.to_dict()  # the U-Net plus one neck entry
    dca = [p for p in config_paths('dca') if osp.basename(p).startswith('dca_')]
    assert len(dca) == 3
    for path in dca:
        assert Config.fromfile(path).model.neck == fragment.model.neck, rel(path)
        assert "'../_base_/models/dca_unet.py'" in open(path).read()


def test_synapse_configs_take_the_9_class_head_from_the_fragment():
    head = Config.fromfile(osp.join(BASE, 'models', 'synapse_head.py')).synapse_head
    assert (head.num_classes, head.out_channels, head.threshold) == (9, 9, None)
    assert [loss.type
            for loss in head.loss_decode] == ['CrossEntropyLoss', 'TverskyLoss']
    synapse = [
        p for folder in FOLDERS for p in configs_2d(folder)
        if 'synapse' in osp.basename(p)
    ]
    assert len(synapse) == 3
    for path in synapse:
        built = Config.fromfile(path).model.decode_head
        for key in ('num_classes', 'out_channels', 'threshold'):
            assert built[key] == head[key], (rel(path), key)
        if osp.basename(path).startswith('mcanet_'):
            # MCANet keeps its single softmax cross-entropy
            assert built.loss_decode == dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
        else:
            assert built.loss_decode == head.loss_decode, rel(path)


def test_pranet_base_inherits_the_kvasir_pipelines():
    kvasir = fromfile('_base_', 'datasets', 'kvasir_seg.py')
    pranet = fromfile('_base_', 'datasets', 'pranet_polyp.py')
    assert "_base_ = './kvasir_seg.py'" in open(
        osp.join(BASE, 'datasets', 'pranet_polyp.py')).read()
    assert pranet.train_pipeline == kvasir.train_pipeline
    assert pranet.train_dataloader.dataset.pipeline == kvasir.train_pipeline
    assert pranet.train_dataloader.dataset.data_root == 'data/pranet_polyp'
    # the test pipelines are Kvasir-SEG's, packing 'subset' too
    assert pranet.test_pipeline[:-1] == kvasir.test_pipeline[:-1]
    pack = pranet.test_pipeline[-1]
    assert pack.type == 'PackSegInputs' and pack.meta_keys[-1] == 'subset'
    tta, kvasir_tta = pranet.tta_pipeline, kvasir.tta_pipeline
    assert tta[0] == kvasir_tta[0]
    assert tta[1].transforms[:-1] == kvasir_tta[1].transforms[:-1]
    assert tta[1].transforms[-1] == [pack]
    for loader in (pranet.test_dataloader, pranet.val_dataloader):
        assert loader.dataset.type == 'ConcatDataset'
        assert [d.subset for d in loader.dataset.datasets] == list(pranet.test_subsets)
        for dataset in loader.dataset.datasets:
            assert set(dataset) == {
                'type', 'data_root', 'subset', 'data_prefix', 'pipeline'
            }
            assert dataset.pipeline == pranet.test_pipeline
        assert loader.batch_size == 1 and loader.sampler.shuffle is False


@pytest.mark.parametrize('folder', FOLDERS)
def test_folder_has_a_readme_and_a_metafile_listing_its_configs(folder):
    configs = {rel(p) for p in configs_2d(folder)}
    assert configs
    meta = metafile(folder)
    collections = {c['Name']: c for c in meta['Collections']}
    for collection in collections.values():
        assert collection['Paper']['Title'] and collection['Paper']['URL']
        assert collection['README'] == f'configs/{folder}/README.md'
    models = meta['Models']
    assert {m['Config'] for m in models} == configs
    readme = open(osp.join(REPO, 'configs', folder, 'README.md')).read()
    for model in models:
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['In Collection'] in collections
        metadata = model['Metadata']
        assert metadata['Training Data']
        assert isinstance(metadata['Parameters'], int)
        assert isinstance(metadata['FLOPs'], int)
        assert model['Weights'] is None  # nothing trained and published here
        assert model['Name'] in readme, model['Name']
        for result in model.get('Results') or []:
            assert result['Task'] == 'Semantic Segmentation' and result['Metrics']


@pytest.mark.slow
@pytest.mark.parametrize('folder', FOLDERS)
def test_metafile_parameters_are_those_of_the_built_models(folder):
    init_default_scope('mmseg')
    for model in metafile(folder)['Models']:
        cfg = Config.fromfile(osp.join(REPO, model['Config']))
        built = MODELS.build(cfg.model)
        params = sum(p.numel() for p in built.parameters())
        assert params == model['Metadata']['Parameters'], model['Name']
