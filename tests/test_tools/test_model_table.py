"""tools/analysis_tools/model_table.py on two tiny configs (a 2-D U-Net and a 3-D
D-Net), each measured in its own process: parameters, FLOPs, PyTorch and onnxruntime
latency, training throughput and peak memory, markdown per family and JSON."""
import json

import pytest
from mmengine.config import Config

from mmseg_fusion.utils.segmentor_io import build_segmentor
from tests.scripts import load_script
from tests.shared_data import REPO
from tests.tiny_run import CONFIG_TEMPLATE

DNET_DEMO = (
    REPO / 'configs' / 'demo' /
    'dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py')
TINY_DNET = f'''_base_ = [{str(DNET_DEMO)!r}]
crop_size = (16, 16, 16)
model = dict(
    backbone=dict(widths=(4, 8, 16, 32), salience_channels=2),
    decode_head=dict(in_channels=(2, 4, 8, 16, 32)),
    test_cfg=dict(patch_size=crop_size))
'''


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis_tools/model_table.py')


def write_configs(root):
    """tiny2d/unet.py, tiny2d/unet_copy.py (the same model on other data) and
    tiny3d/dnet.py."""
    (root / 'tiny2d').mkdir()
    (root / 'tiny3d').mkdir()
    unet = CONFIG_TEMPLATE.format(data_root=str(root / 'data'), max_iters=2)
    (root / 'tiny2d' / 'unet.py').write_text(unet)
    (root / 'tiny2d' / 'unet_copy.py').write_text(
        unet.replace(repr(str(root / 'data')), repr(str(root / 'other'))))
    (root / 'tiny3d' / 'dnet.py').write_text(TINY_DNET)


def params(config) -> int:
    model = build_segmentor(Config.fromfile(str(config)))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_model_table_two_tiny_configs(tool, tmp_path, capsys):
    write_configs(tmp_path)
    md, js = tmp_path / 'table.md', tmp_path / 'table.json'
    result = tool.main([
        '--configs',
        str(tmp_path / 'tiny2d'),
        str(tmp_path / 'tiny3d'), '--repeats', '2', '--warmup', '1', '--threads', '2',
        '--train', '--train-steps', '1', '--max-seconds', '300', '--out',
        str(md), '--json',
        str(js)
    ])
    text = capsys.readouterr().out
    assert text == md.read_text()
    assert json.loads(js.read_text())['rows'] == json.loads(
        json.dumps(result['rows'], default=str))

    rows = {row['name']: row for row in result['rows']}
    assert list(rows) == ['unet', 'unet_copy', 'dnet']
    unet, copy, dnet = rows['unet'], rows['unet_copy'], rows['dnet']
    assert unet['input'] == [1, 3, 32, 32] and dnet['input'] == [1, 1, 16, 16, 16]
    for row, config in ((unet, 'tiny2d/unet.py'), (dnet, 'tiny3d/dnet.py')):
        assert row['status'] == 'ok', row
        assert row['params'] == params(tmp_path / config)
        assert row['flops'] > 0 and row['torch_ms'] > 0 and row['onnx_ms'] > 0
        assert row['onnx'] == 'ok' and row['onnx_max_abs_diff'] < 1e-4
        train = row['train']
        assert train['status'] == 'ok', train
        assert train['train_per_s'] > 0 and train['train_steps'] == 1
        assert train['train_peak_rss_mib'] >= train['rss_before_mib'] > 0
    assert unet['train']['train_batch'] == 2 and dnet['train']['train_batch'] == 2
    assert dnet['train']['train_size'] == [16, 16, 16]
    # the copy is the same model at the same size: measured once
    assert copy['same_as'] == 'unet' and copy['torch_ms'] == unet['torch_ms']
    assert copy['train_same_as'] == 'unet'

    assert '## tiny2d' in text and '## tiny3d' in text
    assert '| `unet_copy` | 1x3x32x32 |' in text and 'same model as `unet`' in text
    assert '| `dnet` | 1x1x16x16x16 |' in text
    assert 'Load average (1 min)' in text and 'images or patches / s' in text


def test_model_table_timeout(tool, tmp_path):
    """A measurement over --max-seconds is killed and reported as n/a (timeout)."""
    (tmp_path / 'tiny').mkdir()
    (tmp_path / 'tiny' / 'unet.py').write_text(
        CONFIG_TEMPLATE.format(data_root=str(tmp_path / 'data'), max_iters=2))
    result = tool.main(
        ['--configs',
         str(tmp_path / 'tiny'), '--max-seconds', '0.5', '--no-onnx'])
    row = result['rows'][0]
    assert row['status'] == 'timeout'
    assert row['reason'] == 'timeout after 0.5 s'


def test_find_configs_skips_base(tool):
    configs = tool.find_configs(None)
    assert configs and not any('/_base_/' in c for c in configs)
    assert tool.family_of('configs/segnext/x.py') == 'mcanet'
    with pytest.raises(FileNotFoundError, match='no such file or folder'):
        tool.find_configs(['configs/no_such_folder'])
