"""User errors of tools/train.py, tools/test.py and the Synapse converter end with one
``error: ...`` line and exit status 1; config overrides that would be ignored are
applied or refused; the noise the tools printed is gone."""
import logging
import os
import subprocess
import sys

import pytest
import torch

from mmseg_fusion.utils import (CheckpointMismatchError, ConfigError, DataNotFoundError,
                                OutputExistsError, PathNotFoundError,
                                PretrainedDownloadError, load_run_config, run_config)
from tests.scripts import load_script
from tests.shared_data import REPO
from tests.tiny_run import write_tiny_run

train_tool = load_script('tools/train.py')
test_tool = load_script('tools/test.py')
SYNAPSE_DCA = str(REPO / 'configs/dca/dca_unet-s5_1xb24-14k_synapse-224x224.py')
PRANET = str(REPO / 'configs/mcanet/'
             'mcanet_mscan-t_1xb8-adamw-80k_pranet-polyp-224x224.py')


def run(*args):
    """Run a command in the repository; return (exit status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, *args],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    return result.returncode, result.stdout, result.stderr


def assert_one_error_line(returncode, stderr, *words):
    assert returncode == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), stderr[-3000:]
    for word in words:
        assert word in lines[0]


@pytest.fixture
def tiny(tmp_path):
    """A tiny config and a checkpoint of its model (random weights)."""
    config = write_tiny_run(tmp_path)
    cfg = load_run_config(config)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    checkpoint = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), checkpoint)
    return config, str(checkpoint)


def test_missing_config_is_one_line():
    assert_one_error_line(*run('tools/train.py', 'configs/no_such.py')[::2],
                          'config file not found: configs/no_such.py')
    assert_one_error_line(*run('tools/test.py', 'configs/no_such.py', 'x.pth')[::2],
                          'config file not found')


def test_missing_checkpoint(tiny, tmp_path):
    config, _ = tiny
    with pytest.raises(PathNotFoundError, match='checkpoint not found: .*none.pth'):
        test_tool.main([config, str(tmp_path / 'none.pth')])


def test_checkpoint_of_another_model_is_refused(tiny, tmp_path):
    config, checkpoint = tiny
    state = torch.load(checkpoint)['state_dict']
    state['decode_head.conv_seg.weight'] = torch.zeros(9, 4, 1, 1)  # 9 classes
    del state['decode_head.conv_seg.bias']
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict=state), other)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'not a checkpoint of this config.s model: 1 of the '
            r'model.s \d+ weights are missing \(e.g. decode_head.conv_seg.'
            r'bias\); 1 have another shape \(e.g. decode_head.conv_seg.'
            r'weight \(9, 4, 1, 1\) in the checkpoint, \(2, 4, 1, 1\)'):
        test_tool.main([config, str(other), '--work-dir', str(tmp_path / 'w')])

    not_a_checkpoint = tmp_path / 'notes.pth'
    not_a_checkpoint.write_text('not a checkpoint')
    with pytest.raises(CheckpointMismatchError, match='cannot read checkpoint'):
        test_tool.main(
            [config, str(not_a_checkpoint), '--work-dir',
             str(tmp_path / 'w')])


def test_missing_data_folder_names_its_converter(tiny, tmp_path):
    config, checkpoint = tiny
    with pytest.raises(
            DataNotFoundError,
            match=r'data folder /nonexistent/kvasir_seg \(test_dataloader\) '
            r'does not exist: make it with tools/dataset_converters/'
            r'kvasir_seg.py'):
        test_tool.main(
            [config, checkpoint, '--cfg-options', 'data_root=/nonexistent/kvasir_seg'])
    with pytest.raises(DataNotFoundError, match=r'\(train_dataloader\)'):
        train_tool.main([
            config, '--work-dir',
            str(tmp_path / 'w'), '--cfg-options',
            'train_dataloader.dataset.data_root=/nonexistent/synapse'
        ])


def test_tta_without_pipeline_is_one_line(tiny):
    config, checkpoint = tiny
    returncode, _, stderr = run('tools/test.py', config, checkpoint, '--tta')
    assert_one_error_line(returncode, stderr, 'no tta_pipeline and no tta_model')


def test_out_folder_must_be_empty(tiny, tmp_path):
    config, checkpoint = tiny
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'old.png').write_bytes(b'')
    with pytest.raises(OutputExistsError, match='--out .*out is not empty'):
        test_tool.main([config, checkpoint, '--out', str(tmp_path / 'out')])


def test_out_sets_output_dir_only_where_the_metric_takes_it(tiny, tmp_path):
    cfg = load_run_config(tiny[0])
    cfg.test_evaluator = [dict(type='IoUMetric'), dict(type='MedicalMetric')]
    assert run_config.set_output_dir(cfg, 'out') == ['IoUMetric', 'MedicalMetric']
    iou, medical = cfg.test_evaluator
    assert iou == dict(type='IoUMetric', output_dir='out')  # no keep_results: **kwargs
    assert medical == dict(type='MedicalMetric', output_dir='out', keep_results=True)
    cfg.test_evaluator = dict(type='CityscapesMetric', output_dir='x')
    run_config.set_output_dir(cfg, 'out')
    assert cfg.test_evaluator.output_dir == 'out'


def test_pretrained_download_failure_says_how_to_train_without(tiny, tmp_path):
    config, _ = tiny
    url = 'http://127.0.0.1:9/unreachable.pth'  # nothing listens: refused at once
    with pytest.raises(
            PretrainedDownloadError,
            match=f'could not download the pretrained weights {url} .*: '
            'train without them with --cfg-options '
            r'model\.backbone\.init_cfg=None'):
        train_tool.main([
            config, '--work-dir',
            str(tmp_path / 'w'), '--cfg-options',
            'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={url}'
        ])


def test_find_pretrained_names_every_key():
    cfg = load_run_config(
        str(REPO / 'configs/hff/'
            'hff-uper_r18-mit-b1_1xb16-100e_kvasir-seg-224x224.py'))
    assert [key for key, _ in run_config.find_pretrained(cfg.model)
            ] == ['model.backbone.cnn.init_cfg', 'model.backbone.transformer.init_cfg']


def test_misspelt_top_level_key_is_refused_with_close_matches():
    with pytest.raises(
            ConfigError,
            match="'data_rot' is not a key of this config.*"
            'did you mean data_root'):
        load_run_config(SYNAPSE_DCA, cfg_options={'data_rot': '/x'})
    with pytest.raises(ConfigError, match='did you mean train_dataloader'):
        load_run_config(SYNAPSE_DCA, cfg_options={'train_dataloder.batch_size': 2})
    # Keys the runner reads are accepted even where the config leaves them out.
    assert 'experiment_name' not in load_run_config(SYNAPSE_DCA)
    cfg = load_run_config(SYNAPSE_DCA, cfg_options={'experiment_name': 'run1'})
    assert cfg.experiment_name == 'run1'


def test_data_root_override_moves_every_dataset_and_path_inside():
    cfg = load_run_config(SYNAPSE_DCA, cfg_options={'data_root': '/my/synapse'})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == '/my/synapse'
    # the spacing file is read by the dataset from its data_root, nothing to move
    assert 'spacing_file' not in cfg.test_evaluator

    cfg = load_run_config(
        PRANET,
        cfg_options={
            'data_root': '/my/pranet',
            'test_dataloader.dataset.datasets.0.data_root': '/elsewhere'
        })
    roots = [d.data_root for d in cfg.test_dataloader.dataset.datasets]
    assert roots == ['/elsewhere'] + ['/my/pranet'] * 4  # explicit keys are kept
    assert cfg.train_dataloader.dataset.data_root == '/my/pranet'


def test_workers_fit_the_cpus(monkeypatch):
    monkeypatch.setattr(run_config, 'usable_cpus', lambda: 2)
    cfg = load_run_config(SYNAPSE_DCA)
    assert [cfg[k].num_workers for k in run_config.DATALOADERS] == [2, 2, 2]
    monkeypatch.setattr(run_config, 'usable_cpus', lambda: 16)
    assert load_run_config(SYNAPSE_DCA).train_dataloader.num_workers == 4


def test_paramwise_options_lines_only_at_debug():
    records = []
    logger = logging.getLogger('test_paramwise_options')
    logger.propagate = False
    logger.setLevel(logging.DEBUG)  # MMLogger leaves the level to its handlers
    handler = logging.Handler(level=logging.INFO)  # as MMLogger sets log_level
    handler.emit = records.append
    logger.addHandler(handler)
    run_config.quiet_paramwise_options(logger)
    run_config.quiet_paramwise_options(logger)  # installed once
    logger.info('paramwise_options -- decode_head.conv_seg.weight:lr=0.0006')
    logger.info('Checkpoints will be saved to /w.')
    assert [r.getMessage() for r in records] == ['Checkpoints will be saved to /w.']
    handler.setLevel(logging.DEBUG)
    logger.info('paramwise_options -- decode_head.conv_seg.weight:lr=0.0006')
    assert len(records) == 2


def test_help_prints_no_warning():
    returncode, stdout, stderr = run('tools/train.py', '--help')
    assert returncode == 0 and 'usage: train.py' in stdout
    assert stderr == ''  # the mmcv-lite MultiScaleDeformableAttention warning is gone
    returncode, stdout, stderr = run('-m', 'mmseg_fusion.tools', 'get_flops', '--help')
    assert returncode == 0 and 'usage: get_flops.py' in stdout and stderr == ''


def test_synapse_converter_wrong_layout_is_one_line(tmp_path):
    (tmp_path / 'raw' / 'images').mkdir(parents=True)
    returncode, _, stderr = run('tools/dataset_converters/synapse.py',
                                str(tmp_path / 'raw'), '-o', str(tmp_path / 'out'))
    assert_one_error_line(returncode, stderr, 'holds neither RawData/Training')
