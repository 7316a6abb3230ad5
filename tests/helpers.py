"""Assertions shared by the tests."""
import torch


def assert_every_parameter_gets_grad(module: torch.nn.Module, output) -> None:
    """Backpropagate the sum of ``output`` (a tensor or a tuple of tensors) and
    check that every parameter of ``module`` received a non-zero gradient."""
    outputs = output if isinstance(output, (tuple, list)) else (output, )
    module.zero_grad()
    sum(o.float().pow(2).mean() for o in outputs).backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f'parameters without gradient: {missing}'
    zero = [n for n, p in module.named_parameters() if not p.grad.abs().sum() > 0]
    assert not zero, f'parameters with an all-zero gradient: {zero}'
