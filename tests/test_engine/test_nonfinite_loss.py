"""NonFiniteLossHook: a NaN or infinite loss stops training with one line naming the
iteration, before anything of that iteration is saved."""
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel

from mmseg_fusion.engine.hooks import NonFiniteLossError, NonFiniteLossHook
from mmseg_fusion.utils import ToolError, run_cli
from tests.scripts import load_script
from tests.test_engine.runs import write_2d_config


def fake_runner(iteration=6, last_ckpt=None):
    hub = SimpleNamespace(get_info=lambda key: last_ckpt)
    return SimpleNamespace(
        iter=iteration, epoch=0, train_loop=object(), message_hub=hub)


def test_finite_losses_pass():
    outputs = {
        'loss': torch.tensor(0.5),
        'decode.loss_ce': torch.tensor(0.5),
        'decode.acc_seg': torch.tensor(80.)
    }
    NonFiniteLossHook().after_train_iter(fake_runner(), 0, None, outputs)
    NonFiniteLossHook().after_train_iter(fake_runner(), 0, None, None)


def test_a_nonfinite_term_names_the_iteration_and_the_term():
    outputs = {
        'loss': torch.tensor(float('inf')),
        'decode.loss_dice': torch.tensor(float('inf')),
        'decode.loss_ce': torch.tensor(0.3),
        'decode.acc_seg': torch.tensor(float('nan'))
    }  # not a loss: ignored
    with pytest.raises(NonFiniteLossError) as error:
        NonFiniteLossHook().after_train_iter(
            fake_runner(6, '/w/iter_6.pth'), 6, None, outputs)
    message = str(error.value)
    assert isinstance(error.value, ToolError)
    assert 'training stopped at iteration 7' in message
    assert 'loss=inf, decode.loss_dice=inf' in message and 'acc_seg' not in message
    assert 'the last checkpoint is /w/iter_6.pth' in message


def test_nan_loss_stops_tools_train_with_one_line(tmp_path, monkeypatch, capsys):
    config = write_2d_config(tmp_path, interval=1, val_interval=100)
    work = tmp_path / 'work'
    parse_losses = BaseModel.parse_losses
    calls = []

    def nan_at_third(self, losses):
        loss, log_vars = parse_losses(self, losses)
        calls.append(1)
        if len(calls) == 3:
            loss = loss * float('nan')
            log_vars['loss'] = loss.detach()
        return loss, log_vars

    monkeypatch.setattr(BaseModel, 'parse_losses', nan_at_third)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            load_script('tools/train.py').main,
            [config, '--work-dir',
             str(work), '--cfg-options', 'train_cfg.max_iters=6'])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith('error: training stopped at iteration 3: the loss is '
                               'not finite (loss=nan)')
    assert f'the last checkpoint is {work / "iter_2.pth"}' in lines[0]
    assert sorted(p for p in os.listdir(work)
                  if p.endswith('.pth')) == ['iter_1.pth', 'iter_2.pth'
                                             ]  # nothing of the broken iteration
