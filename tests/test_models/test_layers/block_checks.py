"""Checks shared by the block tests: their norm layers, their 3-D forms, and which
input checks run (``count_calls``, ``assert_check_inputs_switch``).

3-D (``spatial_dims=3``): a 3-D block whose weights are lifted from a 2-D block
(each k x k kernel placed in the centre depth slice of its k x k x k kernel, zeros
elsewhere; everything else copied) sees, on a volume that repeats one image along D,
the same thing at every depth as the 2-D block sees on the image: its output must be
the 2-D output repeated along D. Convolutions, pooling, interpolation, batch
statistics and attention over repeated keys all keep that identity, so it checks the
3-D arithmetic against the 2-D block, which the other tests check against the papers.
"""
import importlib

import pytest
import torch
import torch.nn as nn


def lift_2d_to_3d(block_2d: nn.Module, block_3d: nn.Module) -> None:
    """Load ``block_2d``'s state into ``block_3d`` (same keys); a tensor with one more
    axis in 3-D is a kernel (O, I, k, k) -> (O, I, k_d, k, k), put in the centre depth
    slice."""
    source = block_2d.state_dict()
    lifted = {}
    for key, target in block_3d.state_dict().items():
        value = source[key]
        if value.shape == target.shape:
            lifted[key] = value.clone()
            continue
        assert value.dim() == 4 and target.dim() == 5, (key, value.shape, target.shape)
        assert target.shape[:2] + target.shape[3:] == value.shape, key
        kernel = torch.zeros_like(target)
        kernel[:, :, target.shape[2] // 2] = value
        lifted[key] = kernel
    block_3d.load_state_dict(lifted, strict=True)


def repeat_depth(x: torch.Tensor, depth: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, depth, H, W), the image at every depth."""
    return x.unsqueeze(2).expand(-1, -1, depth, -1, -1).contiguous()


def outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_3d_repeats_2d(block_2d: nn.Module,
                         block_3d: nn.Module,
                         inputs_2d,
                         depths,
                         train: bool = True,
                         atol: float = 1e-5) -> None:
    """Lift ``block_2d`` into ``block_3d``, call both (the 3-D one on the inputs
    repeated along D, ``depths[i]`` for input i) and compare every output."""
    lift_2d_to_3d(block_2d, block_3d)
    block_2d.train(train)
    block_3d.train(train)
    inputs_3d = [repeat_depth(x, d) for x, d in zip(inputs_2d, depths)]
    expected = outputs(block_2d(*inputs_2d))
    got = outputs(block_3d(*inputs_3d))
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.shape == (e.shape[0], e.shape[1], depths[0], *e.shape[2:])
        torch.testing.assert_close(g, repeat_depth(e, depths[0]), rtol=1e-5, atol=atol)


def depth_reach(block, inputs, index: int = 0) -> float:
    """How much output depth 0 of ``block`` (a module or a function of the inputs)
    depends on input ``index`` at depth 1: the gradient norm there (0 for a block
    that works slice by slice)."""
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    out = outputs(block(*inputs))
    sum(o[:, :, 0].sum() for o in out).backward()
    return inputs[index].grad[:, :, 1].abs().sum().item()


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def assert_norms_are(block: nn.Module, norm_type: type, count: int) -> None:
    """``block`` holds ``count`` batch/instance/group norms, each a ``norm_type``
    (exactly that class for the torch batch norms, which a wrong rank would miss)."""
    norms = [m for m in block.modules() if isinstance(m, NORMS)]
    assert len(norms) == count, norms
    for m in norms:
        if norm_type in (nn.BatchNorm2d, nn.BatchNorm3d):
            assert type(m) is norm_type, m
        else:
            assert isinstance(m, norm_type), m


# Configs every block with a norm must build and run with, and the layer each gives.
NORM_CFGS = [
    (dict(type='SyncBN'), nn.SyncBatchNorm),
    (dict(type='GN', num_groups=2), nn.GroupNorm),
]


def count_calls(monkeypatch, module_name: str, function: str = 'check_feature_map'):
    """Wrap the check ``function`` that module ``module_name`` calls so each call is
    recorded; return the list of calls (each the call's arguments), which grows as the
    module calls it. The wrapper still runs the check."""
    module = importlib.import_module(module_name)
    original = getattr(module, function)
    calls = []

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, recording)
    return calls


def assert_check_inputs_switch(monkeypatch,
                               build,
                               inputs,
                               bad_inputs,
                               message: str,
                               checks=('check_feature_map', )) -> None:
    """A block built alone checks its inputs; built with ``check_inputs=False`` it
    checks none and computes the same output.

    Args:
        build: ``build(**kwargs)`` returns the block, ``kwargs`` being
            ``check_inputs=...`` or nothing.
        inputs (Sequence[Tensor]): good positional inputs.
        bad_inputs (Sequence[Tensor]): inputs the block's check refuses with a
            ValueError matching ``message``.
        checks (Sequence[str]): the check functions the block's module calls.
    """
    checked = build()
    module_name = type(checked).__module__
    calls = {name: count_calls(monkeypatch, module_name, name) for name in checks}
    assert checked.check_inputs is True
    with pytest.raises(ValueError, match=message):
        checked(*bad_inputs)
    checked.eval()
    expected = outputs(checked(*inputs))
    assert all(calls[name] for name in checks), calls

    unchecked = build(check_inputs=False)
    unchecked.load_state_dict(checked.state_dict(), strict=True)
    unchecked.eval()
    for name in checks:
        calls[name].clear()
    got = outputs(unchecked(*inputs))
    assert {name: len(c) for name, c in calls.items()} == {name: 0 for name in checks}
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)
    with pytest.raises(ValueError, match='check_inputs must be a bool'):
        build(check_inputs=1)
