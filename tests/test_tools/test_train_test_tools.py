"""tools/train.py, tools/test.py and the dist scripts, end to end on a tiny run."""
import glob
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.tiny_run import write_tiny_run

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([*args],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_train_resume_and_test(tmp_path):
    config = write_tiny_run(tmp_path, max_iters=2)
    work_dir = str(tmp_path / 'work')
    run_tool(sys.executable, 'tools/train.py', config, '--work-dir', work_dir)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))

    # A second fresh run would overwrite the checkpoint: it must refuse.
    env = dict(os.environ, PYTHONPATH=REPO)
    refused = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    assert refused.returncode != 0
    assert '--resume' in refused.stderr

    output = run_tool(sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
                      '--resume', '--cfg-options', 'train_cfg.max_iters=4')
    assert 'resumed epoch: 0, iter: 2' in output
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))

    # Testing needs only the test data: the training set may be gone.
    output = run_tool(sys.executable, 'tools/test.py', config,
                      osp.join(work_dir, 'iter_4.pth'), '--work-dir', work_dir,
                      '--show-dir', 'overlays', '--cfg-options',
                      'train_dataloader.dataset.data_root=/nonexistent')
    assert 'mIoU' in output
    overlays = glob.glob(osp.join(work_dir, 'overlays', '**', '*.png'), recursive=True)
    assert len(overlays) == 4  # every test image is drawn


# The tiny run with our metric, a TTA pipeline and a paramwise optimizer config.
MEDICAL_TTA = """
val_evaluator = dict(type='MedicalMetric')
test_evaluator = val_evaluator
tta_model = dict(type='SegTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')]])]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=0.01),
                     paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.)}))
"""


@pytest.mark.slow
def test_out_tta_and_show_dir_with_our_metric(tmp_path):
    config = write_tiny_run(tmp_path, max_iters=2)
    with open(config, 'a') as f:
        f.write(MEDICAL_TTA)
    work_dir = str(tmp_path / 'work')
    output = run_tool(sys.executable, 'tools/train.py', config, '--work-dir', work_dir)
    assert 'paramwise_options' not in output  # one line per parameter before
    assert 'MultiScaleDeformableAttention' not in output

    out = str(tmp_path / 'pred')
    output = run_tool(sys.executable, 'tools/test.py', config,
                      osp.join(work_dir, 'iter_2.pth'), '--work-dir', work_dir, '--out',
                      out, '--tta', '--show-dir', 'overlays')
    assert 'mDice' in output
    # One PNG label mask per test image, named after the image.
    assert sorted(os.listdir(out)) == ['0.png', '1.png', '2.png', '3.png']
    for name in os.listdir(out):
        mask = cv2.imread(osp.join(out, name), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (32, 32) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
    assert f'predictions written to {out}' in output
    overlays = osp.join(work_dir, 'overlays', 'vis_data', 'vis_image')
    assert f'prediction overlays written to {overlays}' in output
    assert len(glob.glob(osp.join(overlays, '*.png'))) == 4


@pytest.mark.slow
def test_mmseg_own_train_tool_with_custom_imports(tmp_path):
    import mmseg
    mmseg_train = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    if not osp.isfile(mmseg_train):
        pytest.skip('this mmseg install ships no tools')
    config = write_tiny_run(tmp_path, max_iters=2)
    run_tool(sys.executable, mmseg_train, config, '--work-dir', str(tmp_path / 'w'))
    assert osp.isfile(osp.join(tmp_path, 'w', 'iter_2.pth'))


@pytest.mark.slow
def test_dist_train_and_test_on_cpu_use_gloo(tmp_path):
    config = write_tiny_run(tmp_path, max_iters=2)
    work_dir = str(tmp_path / 'dist')
    env = dict(os.environ, PORT='29533', PYTHON=sys.executable)
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert 'Distributed training: True' in result.stdout + result.stderr

    env['PORT'] = '29534'
    result = subprocess.run([
        'bash', 'tools/dist_test.sh', config,
        osp.join(work_dir, 'iter_2.pth'), '2', '--work-dir', work_dir
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert 'mIoU' in result.stdout + result.stderr
