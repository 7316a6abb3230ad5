"""tools/analysis_tools/memory_curve.py: the memory sampling, the slope and verdict,
the schedule stretching and --from-csv (the long run itself is the script's job; its
figures are in the README)."""
import json
import subprocess
import sys
import time

import pytest
from mmengine.config import Config

from tests.scripts import load_script

memory_curve = load_script('tools/analysis_tools/memory_curve.py')
DEMO = 'configs/demo/mcanet_mscan-t_1xb8-adamw-1k_synthetic-polyp-96x96.py'


def _samples(rss_per_kiter: float, iters=range(0, 2001, 100), pss_per_kiter=0.0):
    return [
        dict(
            iteration=i,
            seconds=float(i),
            processes=5,
            main_rss_mib=800.0 + rss_per_kiter * i / 1000,
            workers_rss_mib=2000.0,
            total_rss_mib=2800.0 + rss_per_kiter * i / 1000,
            total_pss_mib=1200.0 + pss_per_kiter * i / 1000) for i in iters
    ]


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_memory_sample_counts_the_children():
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        deadline = time.monotonic() + 10
        while child.pid not in memory_curve.descendants(memory_curve.os.getpid()):
            assert time.monotonic() < deadline, 'child not found in /proc'
            time.sleep(0.1)
        sample = memory_curve.memory_sample(memory_curve.os.getpid())
    finally:
        child.kill()
        child.wait()
    assert sample['processes'] >= 2
    assert sample['main_rss_mib'] > 10 and sample['workers_rss_mib'] > 1
    assert sample['total_rss_mib'] == pytest.approx(sample['main_rss_mib'] +
                                                    sample['workers_rss_mib'])
    assert 0 < sample['total_pss_mib'] <= sample['total_rss_mib']


def test_flat_and_growing_curves():
    flat = memory_curve.summarise(_samples(0.0), warmup=500, tolerance=2.0)
    assert flat['flat'] and flat['fitted_from'] == 500 and flat['fitted_to'] == 2000
    assert flat['slopes_mib_per_kiter']['total_rss_mib'] == pytest.approx(0.0)
    # 80 MiB per 1,000 iterations over 1,500 iterations: 120 MiB of ~2,900 (4.1%)
    leaking = memory_curve.summarise(_samples(80.0), warmup=500, tolerance=2.0)
    assert not leaking['flat']
    assert leaking['slopes_mib_per_kiter']['main_rss_mib'] == pytest.approx(80.0)
    assert leaking['fitted_rss_growth_mib'] == pytest.approx(120.0)
    assert '**NOT flat**' in memory_curve.markdown(_samples(80.0), leaking, 'cmd')
    # PSS alone moving (other processes sharing the pages come and go): still flat
    shared = memory_curve.summarise(_samples(0.0, pss_per_kiter=80.0), 500, 2.0)
    assert shared['flat']
    assert shared['slopes_mib_per_kiter']['total_pss_mib'] == pytest.approx(80.0)


def test_too_few_samples_after_the_warmup_are_refused():
    with pytest.raises(memory_curve.UsageError, match='only 1 memory sample'):
        memory_curve.summarise(_samples(0.0, range(0, 501, 100)), 500, 2.0)


def test_schedule_and_checkpoint_stretch_to_the_run():
    cfg = Config.fromfile(DEMO)
    memory_curve.stretch_schedule(cfg, 2000, 250)
    assert cfg.train_cfg.max_iters == 2000 and cfg.train_cfg.val_interval == 250
    assert cfg.param_scheduler[-1]['end'] == 2000
    assert cfg.param_scheduler[0]['end'] == 50  # the warm-up keeps its length
    assert cfg.default_hooks.checkpoint.interval == 2000


def test_from_csv_summarises_a_stopped_run(tmp_path, monkeypatch, capsys):
    """The hook appends each sample to the CSV at once; --from-csv summarises it."""
    fixed = {
        k: v
        for k, v in _samples(0.0)[0].items() if k not in ('iteration', 'seconds')
    }
    monkeypatch.setattr(memory_curve, 'memory_sample', lambda pid: dict(fixed))
    csv_path = tmp_path / 'memory_curve.csv'
    hook = memory_curve.MemorySamplingHook(100, str(csv_path))
    for iteration in range(0, 801, 100):
        hook.record(iteration)
    assert len(csv_path.read_text().splitlines()) == 1 + 9
    summary = memory_curve.main([DEMO, '--from-csv', str(csv_path), '--warmup', '300'])
    assert summary['flat'] and summary['fitted_from'] == 300
    saved = json.loads((tmp_path / 'memory_curve.json').read_text())
    assert len(saved['samples']) == 9 and saved['summary'] == summary
    assert '| 800 |' in (tmp_path / 'memory_curve.md').read_text()
    assert 'flat' in capsys.readouterr().out


def test_from_csv_refuses_another_file(tmp_path):
    other = tmp_path / 'scalars.csv'
    other.write_text('a,b\n1,2\n')
    with pytest.raises(memory_curve.UsageError, match='not a memory_curve.csv'):
        memory_curve.main([DEMO, '--from-csv', str(other)])
