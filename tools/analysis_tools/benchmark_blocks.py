"""Parameters, FLOPs, latency and peak memory of the papers' fusion and attention
blocks, 2-D and 3-D, as a markdown table and (``--json``) as JSON.

    python tools/analysis_tools/benchmark_blocks.py [--blocks NAME ...]
        [--device {cpu,cuda}] [--threads N] [--repeat N] [--warmup N]
        [--batch-size N] [--scale S] [--out FILE.md] [--json FILE.json]

Every block is built through ``mmseg.registry.MODELS`` from the settings in ``BLOCKS``
and run on random inputs; the 2-D rows use the sizes at which the blocks were
compared with the papers' reference code (issue 9), the ``-3d`` rows the blocks'
volumetric form. FLOPs are counted by mmengine's ``FlopAnalyzer`` (one multiply-add
is one FLOP; element-wise operations are not counted). Latencies are the median of
``--repeat`` runs after ``--warmup`` runs: forward in eval mode under
``torch.no_grad()``, forward+backward in train mode (backward of the sum of the
outputs). Peak memory is the most memory the allocator held during one
forward+backward beyond what it held before (parameters and inputs excluded;
activations, workspaces and gradients included): on CUDA from
``torch.cuda.max_memory_allocated``, on CPU from the allocation events that
``torch.profiler`` records with ``profile_memory=True`` (their running
'Total Allocated').
"""
import argparse
import json
import os
import os.path as osp
import statistics
import tempfile
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
        inputs=[(64, 88, 88)] * 2),
    dict(
        name='MultiScaleSelectiveFusion',
        cfg=dict(type='MultiScaleSelectiveFusion', channels=64, num_inputs=4),
        inputs=[(64, 88, 88)] * 4),
    dict(
        name='MultiFeatureExtraction',
        cfg=dict(type='MultiFeatureExtraction', channels=64, dilations=(2, 4, 8)),
        inputs=[(64, 88, 88)]),
    dict(
        name='SAFM',
        cfg=dict(type='SAFM', channels=64, num_levels=4),
        inputs=[(64, 88, 88)]),
    dict(
        name='OSRAttention',
        cfg=dict(type='OSRAttention', channels=64, num_heads=8, sr_ratio=2),
        inputs=[(64, 44, 44)]),
    dict(
        name='JointChannelSpatialAttention',
        cfg=dict(
            type='JointChannelSpatialAttention',
            channels=64,
            reduction=8,
            kernel_size=7,
            grid_size=22),
        inputs=[(64, 22, 22)]),
    dict(
        name='HFFBlock',
        cfg=dict(
            type='HFFBlock',
            local_channels=64,
            global_channels=64,
            inter_channels=64,
            out_channels=64),
        inputs=[(64, 44, 44), (64, 44, 44)]),
    dict(
        name='HFFBlock+previous',
        cfg=dict(
            type='HFFBlock',
            local_channels=64,
            global_channels=64,
            inter_channels=64,
            out_channels=64,
            previous_channels=32),
        inputs=[(64, 44, 44), (64, 44, 44), (32, 88, 88)]),
    dict(
        name='DynamicFeatureFusion-2d',
        cfg=dict(type='DynamicFeatureFusion', channels=64, spatial_dims=2),
        inputs=[(64, 88, 88)] * 2),
    dict(
        name='MultiScaleCrossAxisAttention',
        cfg=dict(
            type='MultiScaleCrossAxisAttention',
            channels=64,
            num_heads=8,
            kernel_sizes=(7, 11, 21)),
        inputs=[(64, 128, 128)]),
    dict(
        name='DualCrossAttention',
        cfg=dict(
            type='DualCrossAttention', in_channels=(32, 64, 128, 256), patch_size=28),
        inputs=[[(32, 224, 224), (64, 112, 112), (128, 56, 56), (256, 28, 28)]]),
    # 3-D forms (MultiScaleCrossAxisAttention is 2-D only).
    dict(
        name='GatedFusion-3d',
        cfg=dict(type='GatedFusion', channels=32, spatial_dims=3),
        inputs=[(32, 32, 48, 48)] * 2),
    dict(
        name='MultiScaleSelectiveFusion-3d',
        cfg=dict(
            type='MultiScaleSelectiveFusion', channels=32, num_inputs=4,
            spatial_dims=3),
        inputs=[(32, 32, 48, 48)] * 4),
    dict(
        name='MultiFeatureExtraction-3d',
        cfg=dict(
            type='MultiFeatureExtraction',
            channels=32,
            dilations=(2, 4, 8),
            spatial_dims=3),
        inputs=[(32, 32, 48, 48)]),
    dict(
        name='SAFM-3d',
        cfg=dict(type='SAFM', channels=32, num_levels=4, spatial_dims=3),
        inputs=[(32, 32, 48, 48)]),
    dict(
        name='OSRAttention-3d',
        cfg=dict(
            type='OSRAttention', channels=64, num_heads=8, sr_ratio=2, spatial_dims=3),
        inputs=[(64, 16, 22, 22)]),
    dict(
        name='JointChannelSpatialAttention-3d',
        cfg=dict(
            type='JointChannelSpatialAttention',
            channels=64,
            reduction=8,
            kernel_size=7,
            grid_size=(8, 11, 11),
            spatial_dims=3),
        inputs=[(64, 16, 22, 22)]),
    dict(
        name='HFFBlock+previous-3d',
        cfg=dict(
            type='HFFBlock',
            local_channels=32,
            global_channels=32,
            inter_channels=32,
            out_channels=32,
            previous_channels=16,
            spatial_dims=3),
        inputs=[(32, 16, 22, 22), (32, 16, 22, 22), (16, 32, 44, 44)]),
    dict(
        name='DynamicFeatureFusion-3d',
        cfg=dict(type='DynamicFeatureFusion', channels=32, spatial_dims=3),
        inputs=[(32, 32, 48, 48), (32, 32, 48, 48)]),
    dict(
        name='DualCrossAttention-3d',
        cfg=dict(
            type='DualCrossAttention',
            in_channels=(32, 64, 128, 256),
            patch_size=(4, 8, 8),
            spatial_dims=3),
        inputs=[[(32, 32, 64, 64), (64, 16, 32, 32), (128, 8, 16, 16),
                 (256, 4, 8, 8)]]),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the papers\' fusion and attention blocks: params, '
        'FLOPs, latency, peak memory')
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
    parser.add_argument('--json', help='also write the results as JSON to this file')
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


def peak_step_mib(step: Callable[[], None], device: torch.device) -> float:
    """MiB the allocator held at most during ``step`` beyond what it held before."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:
        trace = osp.join(folder, 'trace.json')
        prof.export_chrome_trace(trace)
        with open(trace) as f:
            events = json.load(f)['traceEvents']
    # 'Total Allocated' counts from zero at the profiler's start.
    totals = [
        e['args']['Total Allocated'] for e in events
        if e.get('name') == '[memory]' and e['args'].get('Device Type') == 0
    ]
    return max([0] + totals) / 2**20


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
    result['train_ms'] = median_ms(forward_backward, args.repeat, args.warmup, device)
    block.zero_grad(set_to_none=True)
    result['peak_mib'] = peak_step_mib(lambda: output_sum(block(*inputs)).backward(),
                                       device)
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
        lines.append(f'| {r["name"]} | {r["inputs"]} | {r["params"]:,} | '
                     f'{human(r["flops"])} | {r["forward_ms"]:.2f} | '
                     f'{r["train_ms"]:.2f} | {r["peak_mib"]:.1f} |')
    lines += [
        '', 'FLOPs: mmengine FlopAnalyzer, one multiply-add = one FLOP, element-wise '
        'ops not counted; n/a: the block could not be traced (reason in the log). '
        'Latency: median wall time; forward in eval mode under no_grad, fwd+bwd in '
        'train mode. Peak memory: the most the allocator held during one fwd+bwd '
        'beyond what it held before (activations, workspaces and gradients; '
        'parameters and inputs excluded): CUDA max_memory_allocated, on CPU the '
        'torch.profiler allocation events.'
    ]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = os.getloadavg()
    torch.manual_seed(0)
    results = [benchmark(row, args, device) for row in args.rows]
    where = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'CPU, {torch.get_num_threads()} threads (load average at start '
        f'{load[0]:.2f})')
    header = (
        f'Fusion and attention blocks on {where}; torch {torch.__version__}; batch '
        f'{args.batch_size}, spatial scale {args.scale:g}; median of '
        f'{args.repeat} runs after {args.warmup} warm-up runs.')
    table = format_table(results, header)
    print(table, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    if args.json:
        meta = dict(
            device=where,
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            load_average=load,
            batch_size=args.batch_size,
            scale=args.scale,
            repeat=args.repeat,
            warmup=args.warmup,
            flops_unit='multiply-adds',
            peak_memory='allocator peak during one forward+backward above the level '
            'before it (CUDA max_memory_allocated; CPU torch.profiler memory events)')
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=2)
    return table


if __name__ == '__main__':
    main()
