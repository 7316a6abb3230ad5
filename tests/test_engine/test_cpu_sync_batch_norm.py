"""CPUSyncBatchNorm: two gloo processes with half a batch each normalise, and compute
gradients and running statistics, as one BatchNorm over the whole batch does."""
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from mmseg_fusion.engine import CPUSyncBatchNorm
from tests.test_tools.distributed_runs import free_port

SHAPES = {2: (4, 3, 5, 6), 3: (4, 3, 2, 5, 4)}


def batch(spatial_dims):
    """The whole batch, a loss weight of its shape, and the layer's parameters."""
    generator = torch.Generator().manual_seed(spatial_dims)
    shape = SHAPES[spatial_dims]
    x = torch.randn(shape, generator=generator) * 3 + 1
    weight = torch.randn(shape, generator=generator)
    gamma = torch.rand(shape[1], generator=generator) + 0.5
    beta = torch.randn(shape[1], generator=generator)
    return x, weight, gamma, beta


def step(layer, x, weight):
    """Two training steps (running statistics move twice), then the output of the
    second, the input gradient and the parameter gradients of sum(out * weight)."""
    layer(x * 0.5)
    x = x.clone().requires_grad_()
    out = layer(x)
    (out * weight).sum().backward()
    return dict(
        out=out.detach(),
        grad_x=x.grad,
        grad_gamma=layer.weight.grad,
        grad_beta=layer.bias.grad,
        running_mean=layer.running_mean,
        running_var=layer.running_var)


def single_process(spatial_dims):
    x, weight, gamma, beta = batch(spatial_dims)
    layer = (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(3, momentum=0.3)
    layer.weight.data.copy_(gamma)
    layer.bias.data.copy_(beta)
    return step(layer, x, weight)


def rank_worker(rank, port, spatial_dims, path, dtype=torch.float32):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
        x, weight, gamma, beta = batch(spatial_dims)
        half = slice(2 * rank, 2 * rank + 2)
        layer = CPUSyncBatchNorm(3, momentum=0.3)
        layer.weight.data.copy_(gamma)
        layer.bias.data.copy_(beta)
        result = step(layer, x[half].to(dtype), weight[half].to(dtype))
        for key in ('grad_gamma', 'grad_beta'):  # each rank holds its part
            dist.all_reduce(result[key])
        torch.save(result, f'{path}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_two_processes_equal_one_batch_norm(tmp_path, spatial_dims):
    mp.spawn(rank_worker, args=(free_port(), spatial_dims, str(tmp_path)), nprocs=2)
    expected = single_process(spatial_dims)
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    for key in ('out', 'grad_x'):
        got = torch.cat([ranks[0][key], ranks[1][key]])
        torch.testing.assert_close(got, expected[key], rtol=1e-5, atol=1e-5)
    for key in ('grad_gamma', 'grad_beta', 'running_mean', 'running_var'):
        for rank in ranks:
            torch.testing.assert_close(rank[key], expected[key], rtol=1e-5, atol=1e-5)
    # the halves' statistics differ: BatchNorm on one half alone would fail above
    x, _, gamma, beta = batch(spatial_dims)
    local = (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(3)
    local.weight.data.copy_(gamma)
    local.bias.data.copy_(beta)
    assert not torch.allclose(local(x[:2]), expected['out'][:2], atol=1e-2)


@pytest.mark.slow
def test_half_precision_inputs_keep_float32_statistics(tmp_path):
    # bfloat16 maps, as autocast hands them over: the sums over 60 voxels per channel
    # in bfloat16 would be off by about 1e-2 of their size; float32 statistics give
    # the float32 result to bfloat16's rounding of the input and output
    mp.spawn(
        rank_worker, args=(free_port(), 2, str(tmp_path), torch.bfloat16), nprocs=2)
    expected = single_process(2)
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    got = torch.cat([ranks[0]['out'], ranks[1]['out']])
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected['out'], rtol=2e-2, atol=3e-2)
    for rank in ranks:
        assert rank['running_mean'].dtype == torch.float32
        torch.testing.assert_close(
            rank['running_mean'], expected['running_mean'], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize('momentum', [0.1, None])
def test_without_a_process_group_it_is_batch_norm(momentum):
    x, weight, gamma, beta = batch(2)
    ours, reference = CPUSyncBatchNorm(
        3, momentum=momentum), nn.BatchNorm2d(
            3, momentum=momentum)
    for layer in (ours, reference):
        layer.weight.data.copy_(gamma)
        layer.bias.data.copy_(beta)
    for _ in range(3):
        torch.testing.assert_close(ours(x), reference(x))
    torch.testing.assert_close(ours.running_var, reference.running_var)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(x), reference(x))
    assert ours.state_dict().keys() == reference.state_dict().keys()


def test_convert_shares_parameters_and_buffers():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.SyncBatchNorm(4), nn.Sequential(nn.BatchNorm2d(4)))
    sync, plain = model[1], model[2][0]
    converted = CPUSyncBatchNorm.convert(model)
    assert converted is model
    assert type(model[1]) is CPUSyncBatchNorm and type(model[2][0]) is nn.BatchNorm2d
    assert model[1].weight is sync.weight and model[1].running_var is sync.running_var
    CPUSyncBatchNorm.convert(model, batch_norm=True)
    assert type(model[2][0]) is CPUSyncBatchNorm
    assert model[2][0].running_mean is plain.running_mean
    assert model[2][0].num_batches_tracked is plain.num_batches_tracked


def test_refuses_input_without_channels():
    with pytest.raises(ValueError, match=r'\(N, C, \*\) input, got shape \(5,\)'):
        CPUSyncBatchNorm(5)(torch.randn(5))
