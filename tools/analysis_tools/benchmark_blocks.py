"""Parameters, FLOPs, latency and peak memory of the seed blocks, as a markdown table.

    python tools/analysis_tools/benchmark_blocks.py [--blocks NAME ...]
        [--device {cpu,cuda}] [--threads N] [--repeat N] [--warmup N]
        [--batch-size N] [--scale S] [--out FILE.md]

Every block is built through ``mmseg.registry.MODELS`` from the settings in ``BLOCKS``
and run on random inputs. FLOPs are counted by mmengine's ``FlopAnalyzer`` (one
multiply-add is one FLOP; element-wise operations are not counted). Latencies are the
median of ``--repeat`` runs after ``--warmup`` runs: forward in eval mode under
``torch.no_grad()``, forward+backward in train mode (backward of the sum of the
outputs). Peak memory is ``torch.cuda.max_memory_allocated`` over the forward+backward
runs (parameters, inputs and gradients included); on CPU it is not measured (n/a).
"""
import argparse
import os
import statistics
import time
from typing import Callable, List, Optional, Sequence

import torch
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import count_flops

# One row per benchmarked setting. ``inputs`` lists the forward's positional arguments,
# each a shape without the batch dimension (C, *spatial); a list of shapes is one
# argument that is a sequence of tensors. ``--scale`` multiplies the spatial sizes.
BLOCKS = [
    dict(
        name='GatedFusion',
        cfg=dict(type='GatedFusion', channels=64),
        inputs=[(64, 64, 64), (64, 64, 64)]),
    dict(
        name='MultiScaleSelectiveFusion',
        cfg=dict(type='MultiScaleSelectiveFusion', channels=64, num_inputs=4),
        inputs=[(64, 64, 64)] * 4),
    dict(
        name='MultiFeatureExtraction',
        cfg=dict(type='MultiFeatureExtraction', channels=64, dilations=(2, 4, 8)),
        inputs=[(64, 64, 64)]),
    dict(
        name='SAFM',
        cfg=dict(type='SAFM', channels=64, num_levels=4),
        inputs=[(64, 64, 64)]),
    dict(
        name='OSRAttention',
        cfg=dict(type='OSRAttention', channels=64, num_heads=8, sr_ratio=2),
        inputs=[(64, 64, 64)]),
    dict(
        name='JointChannelSpatialAttention',
        cfg=dict(
            type='JointChannelSpatialAttention',
            channels=64,
            reduction=16,
            kernel_size=7,
            grid_size=7),
        inputs=[(64, 64, 64)]),
    dict(
        name='HFFBlock',
        cfg=dict(
            type='HFFBlock',
            local_channels=64,
            global_channels=64,
            inter_channels=64,
            out_channels=64),
        inputs=[(64, 64, 64), (64, 64, 64)]),
    dict(
        name='HFFBlock+previous',
        cfg=dict(
            type='HFFBlock',
            local_channels=64,
            global_channels=64,
            inter_channels=64,
            out_channels=64,
            previous_channels=32),
        inputs=[(64, 64, 64), (64, 64, 64), (32, 128, 128)]),
    dict(
        name='DynamicFeatureFusion-2d',
        cfg=dict(type='DynamicFeatureFusion', channels=64, spatial_dims=2),
        inputs=[(64, 64, 64), (64, 64, 64)]),
    dict(
        name='DynamicFeatureFusion-3d',
        cfg=dict(type='DynamicFeatureFusion', channels=32, spatial_dims=3),
        inputs=[(32, 16, 32, 32), (32, 16, 32, 32)]),
    dict(
        name='MultiScaleCrossAxisAttention',
        cfg=dict(
            type='MultiScaleCrossAxisAttention',
            channels=64,
            num_heads=8,
            kernel_sizes=(7, 11, 21)),
        inputs=[(64, 64, 64)]),
    dict(
        name='DualCrossAttention',
        cfg=dict(
            type='DualCrossAttention', in_channels=(32, 64, 128, 256), patch_size=28),
        inputs=[[(32, 224, 224), (64, 112, 112), (128, 56, 56), (256, 28, 28)]]),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the seed blocks: params, FLOPs, latency, peak memory')
    parser.add_argument(
        '--blocks',
        nargs='+',
        metavar='NAME',
        help='rows to run, by row name or registry type (a type selects all its '
        f'rows); default: all of {[b["name"] for b in BLOCKS]}')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU)')
    parser.add_argument(
        '--repeat',
        type=int,
        default=20,
        help='timed runs per measurement; the median is reported')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed runs before each measurement')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply every spatial input size by this (rounded, at least 1)')
    parser.add_argument('--out', help='also write the markdown table to this file')
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.batch_size < 1 or args.scale <= 0:
        parser.error('need --repeat >= 1, --warmup >= 0, --batch-size >= 1 and '
                     '--scale > 0')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    try:
        args.rows = select_blocks(args.blocks)
    except ValueError as error:
        parser.error(str(error))
    return args


def select_blocks(names: Optional[Sequence[str]]) -> List[dict]:
    """The rows of ``BLOCKS`` whose name or registry type is in ``names`` (all if
    None), in table order; unknown names raise ``ValueError``."""
    if not names:
        return list(BLOCKS)
    known = {b['name'] for b in BLOCKS} | {b['cfg']['type'] for b in BLOCKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f'--blocks got unknown names {unknown}; '
                         f'known: {sorted(known)}')
    return [b for b in BLOCKS if b['name'] in names or b['cfg']['type'] in names]


def make_inputs(spec, batch_size: int, scale: float, device: torch.device):
    """Random tensors for one input spec: a (C, *spatial) shape or a list of them."""
    if isinstance(spec, list):
        return [make_inputs(s, batch_size, scale, device) for s in spec]
    channels, *spatial = spec
    sizes = [max(1, round(s * scale)) for s in spatial]
    return torch.randn(batch_size, channels, *sizes, device=device)


def describe(value) -> str:
    """Shapes of an input (or list of inputs) as 'NxCxHxW'."""
    if isinstance(value, list):
        return '[' + ', '.join(describe(v) for v in value) + ']'
    return 'x'.join(str(s) for s in value.shape)


def describe_inputs(inputs: Sequence) -> str:
    shapes = [describe(x) for x in inputs]
    if len(shapes) > 1 and len(set(shapes)) == 1:
        return f'{shapes[0]} (x{len(shapes)})'
    return ', '.join(shapes)


def median_ms(run: Callable[[], None], repeat: int, warmup: int,
              device: torch.device) -> float:
    """Median wall time of ``run`` in milliseconds, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def output_sum(output) -> torch.Tensor:
    """Sum of every element of a tensor or a (nested) tuple of tensors."""
    if isinstance(output, torch.Tensor):
        return output.sum()
    return sum(output_sum(o) for o in output)


def benchmark(row: dict, args, device: torch.device) -> dict:
    """Build one row's block, run it, and return the table's values for it."""
    block = MODELS.build(row['cfg']).to(device)
    inputs = [
        make_inputs(spec, args.batch_size, args.scale, device) for spec in row['inputs']
    ]
    result = dict(
        name=row['name'],
        inputs=describe_inputs(inputs),
        params=sum(p.numel() for p in block.parameters()),
        flops=count_flops(block.eval(), inputs))

    def forward():
        with torch.no_grad():
            block(*inputs)

    def forward_backward():
        block.zero_grad(set_to_none=True)
        output_sum(block(*inputs)).backward()

    block.eval()
    result['forward_ms'] = median_ms(forward, args.repeat, args.warmup, device)
    block.train()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    result['train_ms'] = median_ms(forward_backward, args.repeat, args.warmup, device)
    result['peak_mib'] = (
        torch.cuda.max_memory_allocated(device) /
        2**20 if device.type == 'cuda' else None)
    return result


def human(value: Optional[float]) -> str:
    """1234567 -> '1.23 M'; None -> 'n/a'."""
    if value is None:
        return 'n/a'
    for factor, prefix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(value) >= factor:
            return f'{value / factor:.2f} {prefix}'
    return f'{value:.0f}'


def format_table(results: Sequence[dict], header: str) -> str:
    lines = [
        header, '',
        '| Block | Input (NxCx...) | Params | FLOPs | Forward ms | Fwd+bwd ms '
        '| Peak MiB (fwd+bwd) |', '|---|---|---:|---:|---:|---:|---:|'
    ]
    for r in results:
        peak = 'n/a' if r['peak_mib'] is None else f'{r["peak_mib"]:.1f}'
        lines.append(f'| {r["name"]} | {r["inputs"]} | {r["params"]:,} | '
                     f'{human(r["flops"])} | {r["forward_ms"]:.2f} | '
                     f'{r["train_ms"]:.2f} | {peak} |')
    lines += [
        '', 'FLOPs: mmengine FlopAnalyzer, one multiply-add = one FLOP, element-wise '
        'ops not counted; n/a: the block could not be traced (reason in the log). '
        'Latency: median wall time; forward in eval mode under no_grad, fwd+bwd in '
        'train mode. Peak memory: CUDA max_memory_allocated; n/a on CPU (not measured).'
    ]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    torch.manual_seed(0)
    results = [benchmark(row, args, device) for row in args.rows]
    where = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'CPU, {torch.get_num_threads()} threads (load average at start '
        f'{load:.2f})')
    header = (f'Seed blocks on {where}; torch {torch.__version__}; batch '
              f'{args.batch_size}, spatial scale {args.scale:g}; median of '
              f'{args.repeat} runs after {args.warmup} warm-up runs.')
    table = format_table(results, header)
    print(table, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    return table


if __name__ == '__main__':
    main()
