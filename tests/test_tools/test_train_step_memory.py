"""tools/analysis_tools/train_step_memory.py on the tiny 3-D demo config."""
import pytest

from tests.scripts import load_script

train_step_memory = load_script('tools/analysis_tools/train_step_memory.py')
TINY_DNET = 'configs/demo/dnet-tiny_dlk-w8_1xb2-adamw-800it_synthetic-ct-32x32x32.py'


def test_reports_every_step_and_the_model(capsys):
    result = train_step_memory.main(
        [TINY_DNET, '--patch', '32', '32', '32', '--steps', '2', '--threads', '1'])
    assert result['patch'] == (32, 32, 32)
    assert result['params'] == 263_586  # the tiny D-Net's 0.26 M (README model table)
    assert len(result['step_seconds']) == len(result['step_cpu_seconds']) == 2
    assert all(t > 0 for t in result['step_seconds'] + result['step_cpu_seconds'])
    assert result['rss_peak_gib'] >= result['rss_before_gib'] > 0
    printed = capsys.readouterr().out
    assert 's wall' in printed and 's CPU' in printed


@pytest.mark.parametrize('argv, message', [
    (['--steps', '0'], '--steps must be a positive int, got 0'),
    (['--patch', '0', '32', '32'], '--patch sides must be positive'),
])
def test_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        train_step_memory.parse_args([TINY_DNET] + argv)
    assert message in capsys.readouterr().err
