"""tools/analysis_tools: block benchmark, FLOPs, model benchmark and log analysis, run
in-process through each script's ``main(argv)`` on tiny inputs."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from tests.scripts import load_script
from tests.tiny_run import write_tiny_run

TOOLS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'analysis_tools')


@pytest.fixture
def tool():
    """Import a script of tools/analysis_tools by name, from its file: the scripts
    import shared code from mmseg_fusion, never each other, so sys.path stays as it
    is."""
    return lambda name: load_script(f'tools/analysis_tools/{name}.py')


def table_rows(text: str):
    """The body rows of the markdown table in ``text``, as lists of cell strings."""
    rows = [
        line.strip('|').split('|') for line in text.splitlines()
        if line.startswith('| ') and not line.startswith('| Block')
        and not line.startswith('| run ')
    ]
    return [[cell.strip() for cell in row] for row in rows]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_model_params(config: str) -> int:
    return n_params(MODELS.build(Config.fromfile(config).model))


def test_benchmark_blocks_table(tool, tmp_path, capsys):
    benchmark_blocks = tool('benchmark_blocks')
    out = tmp_path / 'blocks.md'
    text = benchmark_blocks.main([
        '--blocks', 'SAFM', 'GatedFusion', '--repeat', '1', '--warmup', '0', '--scale',
        '0.125', '--batch-size', '1', '--out',
        str(out), '--json',
        str(tmp_path / 'blocks.json')
    ])
    assert capsys.readouterr().out == text == out.read_text()

    rows = table_rows(text)
    # table order; a type selects its 2-D and 3-D rows
    names = ['GatedFusion', 'SAFM', 'GatedFusion-3d', 'SAFM-3d']
    assert [r[0] for r in rows] == names
    settings = {b['name']: b for b in benchmark_blocks.BLOCKS}
    for name, inputs, params, flops, forward_ms, train_ms, peak in rows:
        expected = n_params(MODELS.build(settings[name]['cfg']))
        assert int(params.replace(',', '')) == expected
        assert float(forward_ms) > 0 and float(train_ms) > 0
        assert float(peak) > 0  # CPU: the profiler's allocation events
    assert rows[0][1] == '1x64x11x11 (x2)'  # 88 x 88 scaled by 1/8, batch 1
    assert rows[1][3] != 'n/a'  # SAFM can be traced
    saved = json.loads((tmp_path / 'blocks.json').read_text())
    assert [r['name'] for r in saved['results']] == names
    assert saved['meta']['batch_size'] == 1
    assert all(r['peak_mib'] > 0 and r['train_ms'] > 0 for r in saved['results'])


def test_benchmark_blocks_selection(tool):
    benchmark_blocks = tool('benchmark_blocks')
    names = [b['name'] for b in benchmark_blocks.select_blocks(['HFFBlock'])]
    # a type selects all its rows
    assert names == ['HFFBlock', 'HFFBlock+previous', 'HFFBlock+previous-3d']
    assert len(benchmark_blocks.select_blocks(None)) == len(benchmark_blocks.BLOCKS)
    with pytest.raises(ValueError, match='NoSuchBlock'):
        benchmark_blocks.select_blocks(['NoSuchBlock'])


def test_benchmark_blocks_settings_build_run_and_trace(tool):
    """Every row of the settings table builds, runs and traces (FLOPs are counted) at a
    tiny scale: tracing fails on checks that compare sizes as tensors."""
    benchmark_blocks = tool('benchmark_blocks')
    for row in benchmark_blocks.BLOCKS:
        block = MODELS.build(row['cfg']).eval()
        inputs = [
            benchmark_blocks.make_inputs(s, 1, 0.05, torch.device('cpu'))
            for s in row['inputs']
        ]
        with torch.no_grad():
            block(*inputs)
        assert benchmark_blocks.count_flops(block, inputs) > 0, row['name']


def test_get_flops_tiny_config(tool, tmp_path, capsys):
    get_flops = tool('get_flops')
    config = write_tiny_run(tmp_path)
    result = get_flops.main([config])
    output = capsys.readouterr().out
    params = tiny_model_params(config)
    assert result['params'] == params
    assert f'({params:,})' in output
    assert result['input_shape'] == (1, 3, 32, 32)  # the preprocessor's size

    larger = get_flops.main([config, '--shape', '64', '64'])
    assert larger['input_shape'] == (1, 3, 64, 64)
    # A fully convolutional model: FLOPs grow with the number of pixels.
    assert larger['flops'] == 4 * result['flops'] > 0


def test_benchmark_tiny_config(tool, tmp_path, capsys):
    benchmark = tool('benchmark')
    config = write_tiny_run(tmp_path)
    result = benchmark.main([config, '--repeat', '2', '--warmup', '0'])
    output = capsys.readouterr().out
    params = tiny_model_params(config)
    assert result['params'] == params
    assert f'Params: {params:,}' in output
    assert 'random image(s) of 32x32 (not a dataset)' in output
    assert result['img_per_s'] > 0
    assert result['ms_per_img'] == pytest.approx(1000 / result['img_per_s'])

    checkpoint = str(tmp_path / 'weights.pth')
    model = MODELS.build(Config.fromfile(config).model)
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    benchmark.main([
        config, '--checkpoint', checkpoint, '--repeat', '1', '--warmup', '0',
        '--batch-size', '2', '--shape', '24'
    ])
    output = capsys.readouterr().out
    assert f'Weights: {checkpoint}' in output
    assert '2 random image(s) of 24x24' in output


def write_scalars(path, records):
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_analyze_logs_plot_and_summary(tool, tmp_path, capsys):
    analyze_logs = tool('analyze_logs')
    work_dir = tmp_path / 'work'
    # A run and its resumed continuation, in two timestamped folders.
    write_scalars(work_dir / '20240101_000000' / 'vis_data' / 'scalars.json', [
        dict(lr=0.01, loss=0.9, iter=1, step=1),
        dict(lr=0.009, loss=0.5, iter=2, step=2),
        dict(mDice=61.5, mIoU=50.0, step=2),
        dict(lr=0.008, loss=0.7, iter=3, step=3),
    ])
    write_scalars(work_dir / '20240102_000000' / 'vis_data' / 'scalars.json', [
        dict(lr=0.007, loss=0.3, iter=4, step=4),
        dict(mDice=70.25, mIoU=55.0, step=4),
        dict(lr=0.006, loss=0.4, iter=5, step=5),
        dict(mDice=68.0, mIoU=56.0, step=6),
    ])
    out = tmp_path / 'curves.png'
    curves = analyze_logs.main([
        str(work_dir), '--keys', 'loss', 'mDice', 'lr', '--out',
        str(out), '--summary', '--legend', 'unet'
    ])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert curves['unet']['loss'] == [(1, 0.9), (2, 0.5), (3, 0.7), (4, 0.3), (5, 0.4)]

    rows = {r[1]: r for r in table_rows(capsys.readouterr().out)}
    # loss: lowest 0.3 at step 4; mDice: highest 70.25 at step 4 (last is 68).
    assert rows['loss'] == ['unet', 'loss', '0.3', '4', 'min', '0.4']
    assert rows['mDice'] == ['unet', 'mDice', '70.25', '4', 'max', '68']
    assert rows['lr'][2:4] == ['0.01', '1']


def test_analyze_logs_unknown_key(tool, tmp_path):
    analyze_logs = tool('analyze_logs')
    scalars = tmp_path / 'vis_data' / 'scalars.json'
    write_scalars(scalars, [dict(loss=1.0, step=1)])
    with pytest.raises(ValueError, match=re.escape("['mDice']")):
        analyze_logs.main([str(scalars), '--keys', 'mDice', '--summary'])


@pytest.mark.parametrize('args, message', [
    (['get_flops.py', 'configs/no_such.py'], 'error: config file not found'),
    (['benchmark.py', 'configs/no_such.py'], 'error: config file not found'),
    (['analyze_logs.py', 'no_such_dir', '--summary'], 'error: no scalars.json in'),
])
def test_user_errors_are_one_line(args, message):
    repo = osp.dirname(osp.dirname(TOOLS))
    result = subprocess.run(
        [sys.executable, osp.join(TOOLS, args[0]), *args[1:]],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
