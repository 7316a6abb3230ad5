"""ExactResumeHook: a run resumed from a checkpoint reaches the uninterrupted run's
weights bit for bit (2-D and 3-D, iteration and epoch loops, dataloader workers,
validation in between)."""
import random

import numpy as np
import pytest
import torch

from mmseg_fusion.engine.hooks import random_states, set_random_states
from tests.test_engine.runs import (max_difference, straight_and_resumed,
                                    write_2d_config, write_3d_config)


def test_random_states_round_trip():
    states = random_states()
    drawn = (random.random(), np.random.rand(), torch.rand(1).item())
    set_random_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == drawn


def test_states_survive_weights_only_loading(tmp_path):
    path = tmp_path / 'states.pth'
    torch.save(dict(exact_resume=dict(random_states=random_states())), path)
    loaded = torch.load(path, weights_only=True)['exact_resume']['random_states']
    drawn = (random.random(), np.random.rand(), torch.rand(1).item())
    set_random_states(loaded)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == drawn


def test_resume_2d_is_bit_identical(tmp_path):
    # Augmentations (numpy, in the main process), dropout (torch), validation at
    # the checkpoint; the control without restoring differs.
    config = write_2d_config(tmp_path)
    straight, resumed = straight_and_resumed(config, tmp_path, total=4, split=2)
    assert max_difference(straight, resumed) == 0.0

    control = write_2d_config(
        tmp_path,
        hooks='custom_hooks = [dict('
        "type='ExactResumeHook', restore=False)]\n")
    straight, resumed = straight_and_resumed(
        control, tmp_path / 'control', total=4, split=2)
    assert max_difference(straight, resumed) > 1e-6


@pytest.mark.slow
def test_resume_2d_with_workers_and_epoch_wrap(tmp_path):
    # Augmentations in a persistent worker, DefaultSampler epochs inside the
    # iteration loop (4 images, batch 2: a new epoch every 2 iterations).
    config = write_2d_config(
        tmp_path,
        num_workers=1,
        persistent=True,
        sampler='DefaultSampler',
        interval=3,
        val_interval=3)
    straight, resumed = straight_and_resumed(config, tmp_path, total=5, split=3)
    assert max_difference(straight, resumed) == 0.0


@pytest.mark.slow
def test_resume_epoch_loop_with_persistent_workers(tmp_path):
    config = write_2d_config(
        tmp_path,
        num_workers=1,
        persistent=True,
        sampler='DefaultSampler',
        interval=1,
        val_interval=1,
        by_epoch=True)
    straight, resumed = straight_and_resumed(
        config, tmp_path, total=2, split=1, unit='epoch')
    assert max_difference(straight, resumed) == 0.0


def test_resume_3d_with_monai_random_transforms_is_bit_identical(tmp_path):
    # MONAI random crops, flips and intensity shifts seeded from numpy's global
    # generator (in the main process), stochastic depth (torch).
    config = write_3d_config(tmp_path)
    straight, resumed = straight_and_resumed(config, tmp_path, total=4, split=2)
    assert max_difference(straight, resumed) == 0.0


@pytest.mark.slow
def test_resume_3d_without_restoring_differs(tmp_path):
    # The control: the same run, the states saved but not restored.
    control = write_3d_config(
        tmp_path,
        hooks='custom_hooks = [dict('
        "type='ExactResumeHook', restore=False)]\n")
    straight, resumed = straight_and_resumed(
        control, tmp_path / 'control', total=4, split=2)
    assert max_difference(straight, resumed) > 1e-6
