"""mmseg's own tools (shipped in mmseg/.mim/tools) run on our configs through
``python -m mmseg_fusion.tools TOOL ARGS``, under the default install (mmcv-lite)."""
import glob
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest

from tests.shared_data import REPO
from tests.tiny_run import write_tiny_run


def mmseg_tool(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, '-m', 'mmseg_fusion.tools', *args],
                            cwd=cwd,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    return result.returncode, result.stdout + result.stderr


def ok(*args, cwd):
    returncode, output = mmseg_tool(*args, cwd=cwd)
    assert returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_every_mmseg_tool_runs_on_a_tiny_config(tmp_path):
    config = write_tiny_run(tmp_path, max_iters=2)
    # Our dataset and metric (confusion_matrix reads the dataset class's METAINFO).
    with open(config) as f:
        text = f.read()
    text = text.replace(
        "type='BaseSegDataset', data_root=data_root, metainfo=metainfo,",
        "type='PolypDataset', data_root=data_root,")
    text = text.replace("val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])",
                        "val_evaluator = dict(type='MedicalMetric')")
    assert 'PolypDataset' in text and 'MedicalMetric' in text
    with open(config, 'w') as f:
        f.write(text)
    cwd = str(tmp_path)
    checkpoint = osp.join(cwd, 'w', 'iter_2.pth')

    ok('train', config, '--work-dir', 'w', cwd=cwd)
    assert osp.isfile(checkpoint)

    output = ok('test', config, checkpoint, '--work-dir', 'w', '--out', 'pred', cwd=cwd)
    assert 'mDice' in output
    assert sorted(os.listdir(tmp_path / 'pred')) == ['0.png', '1.png', '2.png', '3.png']

    ok('confusion_matrix', config, 'pred', 'cm', cwd=cwd)
    assert cv2.imread(str(tmp_path / 'cm' / 'confusion_matrix.png')) is not None

    output = ok('benchmark', config, checkpoint, '--work-dir', 'bench', cwd=cwd)
    assert 'Average fps' in output and glob.glob(str(tmp_path / 'bench' / 'fps_*.json'))

    output = ok('get_flops', config, '--shape', '32', cwd=cwd)
    assert 'Flops:' in output and 'Params:' in output

    ok('browse_dataset', config, '--output-dir', 'browse', '--not-show', cwd=cwd)
    assert len(os.listdir(tmp_path / 'browse')) == 4

    output = ok('print_config', config, cwd=cwd)
    assert "type='PolypDataset'" in output and (tmp_path / 'example.py').is_file()

    scalars = glob.glob(str(tmp_path / 'w' / '*' / 'vis_data' / 'scalars.json'))
    output = ok(
        'analyze_logs', *scalars, '--keys', 'loss', '--out', 'curve.png', cwd=cwd)
    assert cv2.imread(str(tmp_path / 'curve.png')) is not None


def test_unknown_tool_is_one_line(tmp_path):
    returncode, output = mmseg_tool('no_such_tool', cwd=str(tmp_path))
    lines = output.strip().splitlines()
    assert returncode == 1 and len(lines) == 1
    assert lines[0].startswith("error: unknown tool 'no_such_tool': usage: python -m "
                               'mmseg_fusion.tools TOOL')
