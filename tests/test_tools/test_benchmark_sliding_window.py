"""tools/analysis_tools/benchmark_sliding_window.py on tiny random volumes: ours and
MONAI's sliding_window_inference agree, the table and the JSON are written."""
import json

import pytest

from tests.scripts import load_script

SCRIPT = 'tools/analysis_tools/benchmark_sliding_window.py'


def rows(text):
    return [[c.strip() for c in line.strip('|').split('|')]
            for line in text.splitlines() if line.startswith('| ')][1:]


def test_benchmark_table_and_json(tmp_path, capsys):
    benchmark = load_script(SCRIPT)
    out = tmp_path / 'result.json'
    text = benchmark.main([
        '--model', 'unet', '--shape', '20', '16', '17', '--patch', '16', '16', '16',
        '--repeat', '1', '--warmup', '0', '--no-memory', '--json',
        str(out)
    ])
    assert capsys.readouterr().out.endswith(text)  # after the progress log lines
    table = rows(text)
    assert [r[0].split(':')[0] for r in table] == [
        'ours', 'MONAI sliding_window_inference (direct)',
        'whole volume, one forward (padded to the stride)'
    ]
    assert float(table[0][4]) == 0.0  # same logits as MONAI called directly
    assert [r[3] for r in table] == ['n/a'] * 3
    result = json.loads(out.read_text())
    assert result['settings']['shape'] == [20, 16, 17]
    assert result['settings']['windows'] == 4  # 2 x 1 x 2: step 8, last at 4 / 0 / 1
    assert result['methods']['ours']['max_abs_diff'] == 0.0
    assert all(m['median_s'] > 0 and m['median_cpu_s'] > 0
               for m in result['methods'].values())


@pytest.mark.slow
def test_benchmark_cpu_memory_in_fresh_processes():
    benchmark = load_script(SCRIPT)
    argv = ['--model', 'unet', '--shape', '24', '24', '24', '--patch', '16', '16', '16']
    # the whole-volume pass holds at least the 14 x 24^3 float32 logits (0.7 MiB)
    # and the input (0.05 MiB) above the loaded state
    peak = benchmark.peak_memory_cpu_subprocess('whole', argv)
    assert 0.7 < peak < 2000


def test_benchmark_refuses_bad_arguments(capsys):
    benchmark = load_script(SCRIPT)
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--overlap', '1.0', '--shape', '8', '8', '8'])
    assert '--overlap must be in [0, 1)' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--volume', '/no/such/ct.nii.gz'])
    assert 'no such file' in capsys.readouterr().err


def test_full_dnet_is_the_configs_network():
    # --model dnet-full builds the configs' D-Net: the same parameters as
    # configs/_base_/models/dnet.py less its deep-supervision outputs (1x1x1
    # convolutions at the four coarser decoder levels, unused at inference)
    from mmengine.config import Config
    from mmseg.registry import MODELS

    benchmark = load_script(SCRIPT)
    model = benchmark.build_model('dnet-full', (96, 96, 96), 0.5, 4)
    cfg = Config.fromfile('configs/_base_/models/dnet.py')
    reference = MODELS.build(cfg.model)
    widths = cfg.model.backbone.widths
    supervision = sum((c + 1) * cfg.num_classes for c in widths[:4])
    benchmarked = sum(p.numel() for p in model.parameters())
    configured = sum(p.numel() for p in reference.parameters())
    assert benchmarked == configured - supervision
    assert type(model.backbone).__name__ == 'DNetEncoder'
    assert model.test_cfg['patch_size'] == (96, 96, 96)
