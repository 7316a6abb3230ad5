"""Checkpoints are written through a temporary file renamed into place, outdated ones
are removed only after the new one is saved, and --resume refuses a bad checkpoint
with one line naming it; a run killed while saving resumes (exactly)."""
import builtins
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.runner import Runner

from mmseg_fusion.engine.checkpoint_io import (ResumeCheckpoint, atomic_open,
                                               remove_stale_temporary_files,
                                               temporary_name)
from mmseg_fusion.utils import run_cli
from tests.scripts import load_script
from tests.shared_data import REPO
from tests.test_engine.runs import max_difference, train, write_2d_config


class Interrupted(Exception):
    pass


def fail_halfway(monkeypatch, path_part):
    """Make writes to files whose name contains ``path_part`` store half of the data,
    then raise (a kill in the middle of a write, without killing the test)."""
    real_open = builtins.open

    class Half:

        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[:len(data) // 2])
            self.handle.close()
            raise Interrupted

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def patched(file, mode='r', *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if 'w' in mode and path_part in osp.basename(str(file)):
            return Half(handle)
        return handle

    monkeypatch.setattr(builtins, 'open', patched)


def test_put_keeps_the_old_file_when_a_write_breaks(tmp_path, monkeypatch):
    path = tmp_path / 'iter_4.pth'
    path.write_bytes(b'old checkpoint')
    fail_halfway(monkeypatch, 'iter_4')
    with pytest.raises(Interrupted):
        LocalBackend().put(b'new checkpoint bytes', str(path))
    monkeypatch.undo()
    assert path.read_bytes() == b'old checkpoint'
    assert os.listdir(tmp_path) == ['iter_4.pth']  # the temporary file is gone
    LocalBackend().put(b'new checkpoint bytes', str(path))
    assert path.read_bytes() == b'new checkpoint bytes'
    assert os.listdir(tmp_path) == ['iter_4.pth']


def test_last_checkpoint_is_replaced_whole(tmp_path, monkeypatch):
    from mmengine.hooks import checkpoint_hook
    assert checkpoint_hook.open is atomic_open
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text('/work/iter_2.pth')
    fail_halfway(monkeypatch, 'last_checkpoint')
    with pytest.raises(Interrupted):
        with checkpoint_hook.open(str(pointer), 'w') as f:
            f.write('/work/iter_4.pth')
    monkeypatch.undo()
    assert pointer.read_text() == '/work/iter_2.pth'
    with checkpoint_hook.open(str(pointer), 'w') as f:
        f.write('/work/iter_4.pth')
    assert pointer.read_text() == '/work/iter_4.pth'
    assert os.listdir(tmp_path) == ['last_checkpoint']


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f'.iter_4.pth.tmp-{dead}'
    mine = temporary_name(str(tmp_path / 'iter_6.pth'))
    for path in (stale, mine):
        open(path, 'wb').close()
    assert remove_stale_temporary_files(str(tmp_path)) == [str(stale)]
    assert os.listdir(tmp_path) == [osp.basename(mine)]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny config and a work dir trained for 2 iterations (iter_2.pth)."""
    root = tmp_path_factory.mktemp('trained')
    config = write_2d_config(root, val_interval=100)
    torch.set_num_threads(1)
    train(config, str(root / 'work'), ['train_cfg.max_iters=2'])
    return config, root / 'work'


def test_outdated_checkpoints_are_removed_after_saving(trained, tmp_path, monkeypatch):
    config, _ = trained
    work = tmp_path / 'work'
    save = Runner.save_checkpoint

    def save_but_break_at_4(self, out_dir, filename, *args, **kwargs):
        if filename == 'iter_4.pth':
            raise Interrupted
        return save(self, out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(Runner, 'save_checkpoint', save_but_break_at_4)
    options = ['train_cfg.max_iters=4', 'default_hooks.checkpoint.max_keep_ckpts=1']
    with pytest.raises(Interrupted):
        train(config, str(work), options)
    # mmengine removes iter_2.pth before saving iter_4.pth: nothing would be left.
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    ResumeCheckpoint(str(work / 'iter_2.pth'))
    monkeypatch.undo()
    train(config, str(work), options, resume=True)
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == ['iter_4.pth']


train_tool = load_script('tools/train.py')


def resume_error(config, work, capsys, *options):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_tool.main, [
            config, '--work-dir',
            str(work), '--resume', '--cfg-options', 'train_cfg.max_iters=4', *options
        ])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: cannot resume')
    return lines[0]


def copy_work(trained, tmp_path):
    config, source = trained
    work = tmp_path / 'work'
    shutil.copytree(source, work)
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    return config, work


def test_resume_refuses_a_truncated_checkpoint(trained, tmp_path, capsys):
    config, work = copy_work(trained, tmp_path)
    shutil.copy(work / 'iter_2.pth', work / 'iter_1.pth')  # an older, good one
    data = (work / 'iter_2.pth').read_bytes()
    (work / 'iter_2.pth').write_bytes(data[:len(data) // 2])
    line = resume_error(config, work, capsys)
    assert str(work / 'iter_2.pth') in line and 'truncated' in line
    assert f'load_from={work / "iter_1.pth"}' in line  # the way out


def test_resume_refuses_foreign_files(trained, tmp_path, capsys):
    config, work = copy_work(trained, tmp_path)
    foreign = work / 'iter_2.pth'
    foreign.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 100)
    line = resume_error(config, work, capsys)
    assert str(foreign) in line and 'not a PyTorch checkpoint' in line

    weights_only = tmp_path / 'weights.pth'  # a state_dict, not a training checkpoint
    torch.save(dict(conv=torch.zeros(2)), weights_only)
    line = resume_error(config, work, capsys, f'load_from={weights_only}')
    assert str(weights_only) in line and 'not an mmengine training checkpoint' in line


def test_resume_refuses_a_bad_last_checkpoint(trained, tmp_path, capsys):
    config, work = copy_work(trained, tmp_path)
    (work / 'last_checkpoint').write_text('')
    line = resume_error(config, work, capsys)
    assert str(work / 'last_checkpoint') in line and 'empty' in line
    (work / 'last_checkpoint').write_text(str(work / 'iter_9.pth'))
    line = resume_error(config, work, capsys)
    assert str(work / 'iter_9.pth') in line and 'does not exist' in line


def test_resume_refuses_a_checkpoint_of_another_model(trained, tmp_path, capsys):
    config, work = copy_work(trained, tmp_path)
    line = resume_error(config, work, capsys, 'model.decode_head.channels=8')
    assert str(work / 'iter_2.pth') in line and 'another model' in line


def run_killed(moment, config, work_dir, *options):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    result = subprocess.run([
        sys.executable, 'tests/test_engine/kill_run.py', moment, config,
        str(work_dir), '--cfg-options', *options
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == -signal.SIGKILL, (result.stdout + result.stderr)[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize('moment', ['save:iter_4', 'pointer:iter_4', 'iter:5'])
def test_sigkill_then_resume_reaches_the_straight_run(moment, tmp_path):
    """Killed while writing iter_4.pth, while rewriting last_checkpoint to name it,
    or during iteration 5 (after its second checkpoint): the last checkpoint stays
    loadable, and resuming from it ends with the uninterrupted run's weights."""
    config = write_2d_config(tmp_path, interval=2, val_interval=2)
    work = tmp_path / 'killed'
    run_killed(moment, config, work, 'train_cfg.max_iters=6')
    last = (work / 'last_checkpoint').read_text()
    expected = 'iter_4.pth' if moment == 'iter:5' else 'iter_2.pth'
    assert last == str(work / expected)
    ResumeCheckpoint(last)  # complete and an mmengine training checkpoint
    if moment == 'save:iter_4':
        assert not (work / 'iter_4.pth').exists()  # no truncated file by that name
        assert any('.iter_4.pth.tmp-' in name for name in os.listdir(work))

    train(config, str(work), ['train_cfg.max_iters=6'], resume=True)
    assert not any('.tmp-' in name for name in os.listdir(work))
    train(config, str(tmp_path / 'straight'), ['train_cfg.max_iters=6'])
    assert max_difference(
        str(tmp_path / 'straight' / 'iter_6.pth'), str(work / 'iter_6.pth')) == 0.0
