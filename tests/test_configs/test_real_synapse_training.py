"""The Synapse protocol end to end on a real CT: convert it, train the U-Net + DCA
Synapse config with its own pipelines, and evaluate per case and organ in 3-D."""
import math

import pytest
from mmengine.runner import Runner

from tests.config_smoke import load_config
from tests.scripts import load_script
from tests.shared_data import (CT_SAMPLE, REPO, TOTALSEG_TO_BTCV, needs_ct_sample,
                               write_btcv_layout)

CONFIG = REPO / 'configs' / 'dca' / 'dca_unet-s5_1xb24-14k_synapse-224x224.py'
ORGANS = ('aorta', 'gallbladder', 'left_kidney', 'right_kidney', 'liver', 'pancreas',
          'spleen', 'stomach')


@pytest.mark.slow
@needs_ct_sample
def test_dca_unet_trains_and_tests_on_converted_real_ct(tmp_path):
    slab = (CT_SAMPLE / 'example_ct_sm.nii.gz', CT_SAMPLE / 'example_seg.nii.gz')
    raw = write_btcv_layout(tmp_path / 'raw', {1: slab, 2: slab})
    data_root = str(tmp_path / 'synapse')
    load_script('tools/dataset_converters/synapse.py').main([
        str(raw), '-o', data_root, '--label-map', TOTALSEG_TO_BTCV, '--train-cases',
        '1', '--test-cases', '2'
    ])

    cfg = load_config(str(CONFIG))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    # HD95 in mm from the spacing each slice carries (SynapseSliceDataset)
    cfg.test_evaluator.use_spacing = True
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.env_cfg.dist_cfg.backend = 'gloo'

    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)

    metrics = runner.test()  # the 30 slices of case 2, stacked into one volume
    for organ in ORGANS:
        assert 0 <= metrics[f'Dice.{organ}'] <= 100, organ
        assert math.isfinite(metrics[f'HD95.{organ}']), organ
    assert math.isfinite(metrics['mDice']) and math.isfinite(metrics['mHD95'])
