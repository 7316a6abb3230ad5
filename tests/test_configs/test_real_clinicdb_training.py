"""The real CVC-ClinicDB sample converts, trains and tests with an MCANet config, with
the config's own pipelines, dataset and metric (only its length and batch shrunk)."""
import math

import pytest
from mmengine.runner import Runner

from tests.config_smoke import load_config
from tests.scripts import load_script
from tests.shared_data import CLINICDB_SAMPLE, REPO, needs_clinicdb_sample

CONFIG = (
    REPO / 'configs' / 'mcanet' /
    'mcanet_mscan-t_1xb8-adamw-80k_cvc-clinicdb-224x224.py')


@pytest.mark.slow
@needs_clinicdb_sample
def test_mcanet_trains_and_tests_on_converted_real_clinicdb(tmp_path):
    data_root = str(tmp_path / 'cvc_clinicdb')
    load_script('tools/dataset_converters/cvc_clinicdb.py').main(
        [str(CLINICDB_SAMPLE), '-o', data_root, '--val-num', '4'])

    cfg = load_config(str(CONFIG))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 4
    cfg.work_dir = str(tmp_path / 'work')
    cfg.env_cfg.dist_cfg.backend = 'gloo'

    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)

    metrics = runner.test()
    for key in ('mDice', 'mIoU', 'mHD95', 'Dice.polyp'):
        assert math.isfinite(metrics[key]), key
    assert 0 <= metrics['mDice'] <= 100
    assert (tmp_path / 'work' / 'iter_4.pth').is_file()
