"""Distributed runs on CPUs (gloo): mmengine's settings; two processes against one."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from mmseg_fusion import compat
from tests.test_tools.distributed_runs import (REPO, dist_train, free_port, losses, run,
                                               tool_env, write_config)

# The runner's setup_env as mmengine's Runner calls it, in a fresh process (world of
# one, launched as torchrun would); CUDA made absent, as on a CPU build of torch.
START_AND_END = textwrap.dedent('''
    import atexit
    import torch
    torch.cuda.is_available = lambda: False
    from mmseg_fusion.engine import CPUDistributedRunner, end_process_group
    set_device = torch.cuda.set_device
    runner = object.__new__(CPUDistributedRunner)
    runner._distributed, runner._launcher = True, 'pytorch'
    callbacks = atexit._ncallbacks()
    runner.setup_env(dict(dist_cfg=dict(backend='gloo')))
    assert torch.distributed.is_initialized()
    assert torch.distributed.get_backend() == 'gloo'
    assert torch.cuda.set_device is set_device  # patched for the start only
    assert atexit._ncallbacks() == callbacks + 1

    def failed_run():
        raise RuntimeError('this rank failed')

    try:
        runner._tracked(failed_run)
    except RuntimeError:
        pass
    end_process_group()  # after a failed run: left for torchrun, no barrier
    assert torch.distributed.is_initialized()
    runner._tracked(lambda: None)
    end_process_group()
    assert not torch.distributed.is_initialized()
    end_process_group()  # at exit again: nothing left to end
    print('started and ended')
''')


def test_cpu_distributed_settings_are_mmengine_config_keys(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(
        dict(
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)),
            find_unused_parameters=True))
    compat.configure_cpu_distributed(cfg, 'none')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'runner_type' not in cfg
    compat.configure_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    assert cfg.runner_type == 'CPUDistributedRunner'
    # mmengine's own default wrapper, but for device_ids
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=True,
        device_ids=None)

    own = Config(
        dict(
            runner_type='MyRunner',
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', broadcast_buffers=True)))
    compat.configure_cpu_distributed(own, 'slurm')
    assert own.runner_type == 'MyRunner'
    assert own.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=True, device_ids=None)


@pytest.mark.parametrize('cfg', [
    dict(sync_bn='torch'),
    dict(model=dict(decode_head=[dict(), dict(norm_cfg=dict(type='SyncBN'))])),
])
def test_cpu_distributed_leaves_sync_bn_to_the_runner(monkeypatch, cfg):
    # CPUDistributedRunner makes SyncBN layers CPUSyncBatchNorm when it wraps the model
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    config = Config(cfg)
    compat.configure_cpu_distributed(config, 'pytorch')
    assert config.runner_type == 'CPUDistributedRunner'
    assert config.get('sync_bn') == cfg.get('sync_bn')


def test_cpu_distributed_settings_leave_cuda_runs_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    compat.configure_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'runner_type' not in cfg and 'model_wrapper_cfg' not in cfg


def test_runner_starts_the_group_through_mmengine_and_ends_it():
    env = dict(
        tool_env(free_port()),
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1')
    env['MASTER_PORT'] = env['PORT']
    result = subprocess.run([sys.executable, '-c', START_AND_END],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert 'started and ended' in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize('norm, options', [('GN', ()), ('BN', ('sync_bn=torch', ))])
def test_two_processes_train_as_one_with_the_same_total_batch(tmp_path, norm, options):
    """``tools/dist_train.sh CONFIG 2`` with 1 image per process against
    ``tools/train.py`` with 2 images: the first iterations' losses (the mean over
    ranks) and the weights after them agree to float32 rounding (measured with
    GroupNorm: 3e-8 and 2e-9); the checkpoint of the two processes tests in one with
    ``tools/test.py``. With BatchNorm, ``sync_bn`` makes the two processes normalise
    over both images (CPUSyncBatchNorm), and the running statistics agree too."""
    config = write_config(str(tmp_path), max_iters=2, norm=norm)
    two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
    result = dist_train(config, two, free_port(), batch_per_process=1, options=options)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert 'Distributed training: True' in result.stdout + result.stderr
    result = run([sys.executable, 'tools/train.py', config, '--work-dir', one],
                 free_port())
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    per_rank, single = losses(two), losses(one)
    assert sorted(per_rank) == [0, 1] and list(single) == [0]
    assert len(single[0]) == len(per_rank[0]) == len(per_rank[1]) == 2
    for it, expected in enumerate(single[0]):
        mean = (per_rank[0][it] + per_rank[1][it]) / 2
        assert mean == pytest.approx(expected, abs=1e-6), f'iteration {it + 1}'
    # the ranks saw different images: the check above compares a real split
    assert per_rank[0][0] != pytest.approx(per_rank[1][0], abs=1e-6)

    import mmseg_fusion  # noqa: F401  (mmengine checkpoints load weights-only)
    a = torch.load(osp.join(two, 'iter_2.pth'), map_location='cpu')['state_dict']
    b = torch.load(osp.join(one, 'iter_2.pth'), map_location='cpu')['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-6), key

    result = run([
        sys.executable, 'tools/test.py', config,
        osp.join(two, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test')
    ], free_port())
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert 'mIoU' in result.stdout + result.stderr


@pytest.mark.slow
def test_a_rank_that_fails_ends_the_job_without_hanging(tmp_path):
    """Rank 1 raises after its first iteration while rank 0 goes on to the next
    collective: the failing rank must exit at once (no teardown barrier, which would
    wait for rank 0 forever), so torchrun ends the job with an error."""
    config = write_config(str(tmp_path), max_iters=4, fail_rank=1)
    result = dist_train(
        config, str(tmp_path / 'work'), free_port(), batch_per_process=1, timeout=400)
    assert result.returncode != 0
    assert 'rank 1 fails on purpose' in result.stdout + result.stderr
