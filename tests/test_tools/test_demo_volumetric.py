"""tools/misc/run_demo.py --volumetric end to end on a tiny generated set (synthetic
CT, conversion, training, whole-volume test with NIfTI predictions), and its
refusals to touch data it did not make."""
import glob
import json
import math
import os.path as osp

import nibabel as nib
import numpy as np
import pytest

from tests.scripts import load_script

ITERS = 3

run_demo = load_script('tools/misc/run_demo.py')


def train_losses(work_dir):
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


@pytest.mark.slow
def test_volumetric_demo_runs_end_to_end(tmp_path, capsys):
    work_dir, data_root, raw_root = (
        str(tmp_path / name) for name in ('work', 'btcv', 'raw'))
    argv = [
        '--volumetric', '--work-dir', work_dir, '--data-root', data_root, '--raw-root',
        raw_root, '--num-train', '2', '--num-val', '1', '--shape', '40', '40', '20',
        '--threads', '1', '--cfg-options', f'train_cfg.max_iters={ITERS}',
        f'default_hooks.checkpoint.interval={ITERS}', 'default_hooks.logger.interval=1',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'
    ]
    dice = run_demo.main(argv)

    with open(osp.join(data_root, 'dataset.json')) as f:
        splits = json.load(f)['splits']
    assert len(splits['train']) == 2 and len(splits['val']) == 1
    assert osp.isfile(osp.join(work_dir, f'iter_{ITERS}.pth'))
    losses = train_losses(work_dir)
    assert len(losses) == ITERS and all(math.isfinite(v) for v in losses)
    assert 0.0 <= dice <= 1.0

    # One NIfTI per held-out case, on its CT's grid.
    [case_id] = splits['val']
    prediction = nib.load(
        osp.join(work_dir, run_demo.PREDICTIONS_DIR, f'{case_id}.nii.gz'))
    image = nib.load(osp.join(data_root, 'imagesTr', f'{case_id}.nii.gz'))
    assert prediction.shape == image.shape
    np.testing.assert_allclose(prediction.affine, image.affine, atol=1e-4)
    assert glob.glob(osp.join(work_dir, '*', 'per_case_test.csv'))
    out = capsys.readouterr().out
    assert f'test mean Dice over organs {dice:.3f}' in out
    assert 'per-case CSV: ' in out and 'predictions: 1 NIfTI' in out

    # The work dir now holds a checkpoint: a second run refuses before doing anything.
    with pytest.raises(FileExistsError, match='already holds checkpoints'):
        run_demo.main(argv)


def _args(tmp_path):
    return run_demo.parse_args([
        '--volumetric', '--data-root',
        str(tmp_path / 'btcv'), '--raw-root',
        str(tmp_path / 'raw')
    ])


def test_existing_converted_volumes_are_reused(tmp_path, capsys):
    (tmp_path / 'btcv').mkdir()
    marker = tmp_path / 'btcv' / 'dataset.json'
    marker.write_text('{"mine": true}')
    run_demo.prepare_volumes(_args(tmp_path))
    assert marker.read_text() == '{"mine": true}'
    assert 'using the existing volumes' in capsys.readouterr().out


def test_foreign_folders_are_refused(tmp_path):
    (tmp_path / 'btcv').mkdir()
    (tmp_path / 'btcv' / 'notes.txt').write_text('unrelated')
    with pytest.raises(FileExistsError, match='lacks dataset.json'):
        run_demo.prepare_volumes(_args(tmp_path))
    (tmp_path / 'btcv' / 'notes.txt').unlink()
    (tmp_path / 'raw').mkdir()
    (tmp_path / 'raw' / 'notes.txt').write_text('unrelated')
    with pytest.raises(FileExistsError, match='lacks RawData/Training'):
        run_demo.prepare_volumes(_args(tmp_path))


def test_volumetric_defaults_and_limits():
    args = run_demo.parse_args(['--volumetric'])
    assert args.config == run_demo.DEFAULT_CONFIG_3D
    assert (args.num_train, args.num_val) == (16, 4)
    assert args.data_root == 'data/synthetic_ct_btcv'
    with pytest.raises(SystemExit):
        run_demo.parse_args(['--volumetric', '--num-train', '29', '--num-val', '2'])
