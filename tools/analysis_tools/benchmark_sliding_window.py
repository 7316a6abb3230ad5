"""Sliding-window inference of ``VolumeEncoderDecoder`` against MONAI's
``sliding_window_inference`` called directly, on one network and one volume.

    python tools/analysis_tools/benchmark_sliding_window.py
        [--model {dnet,dnet-full,unet}]
        [--volume CT.nii.gz | --shape D H W] [--patch D H W] [--overlap F]
        [--sw-batch-size N] [--repeat N] [--warmup N] [--device {cpu,cuda}]
        [--threads N] [--no-memory] [--json FILE]

Three methods run on the same model (eval mode, no_grad) and volume:

- ``ours``: ``VolumeEncoderDecoder.slide_inference``, the sliding-window step of
  ``predict`` (test_cfg mode 'slide', Gaussian blending, sigma 1/8 of the patch,
  progress logging on as in a test run);
- ``monai``: ``monai.inferers.sliding_window_inference`` with the same patch, overlap,
  windows per forward and Gaussian, the network's forward as predictor;
- ``whole``: one forward pass on the whole volume (``whole_inference``, zero-padded to
  a multiple of the network's stride).

Repeats are interleaved (one run of each method per round, the order alternating
between rounds) in one process; the median wall time and the median CPU time (steadier
when other processes share the cores) are reported. The max abs difference is between
the ``ours`` and ``monai`` logits. Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before the run; on CPU the
peak resident set size of one run above the resident set size before it (the model and
the volume loaded), measured in a fresh subprocess per method (see ``measure_rss``).

The default volume is the real abdominal CT of
``../shared/data/totalsegmentator_example`` (122x101x112 voxels, 3 mm), windowed to
[-175, 250] HU and scaled to [0, 1] as the BTCV recipes do. ``--model dnet``: a small
D-Net (``DNetEncoder`` + ``DFF3DHead``, widths (8, 16, 32, 64, 128), one block per
stage); ``--model dnet-full``: the D-Net of ``configs/dnet`` (widths 48 to 768, two
blocks per stage, 39.3 M parameters; use the configs' ``--patch 96 96 96
--sw-batch-size 4``); ``--model unet``: a small MONAI ``UNet`` (channels (16, 32, 64,
128), one residual unit). Weights are random (seeded): speed and agreement do not
depend on training. The first forward of each shape creates oneDNN primitives (seconds
on CPU): keep ``--warmup`` >= 1 for timings.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.models.segmentors import VolumeEncoderDecoder

DEFAULT_VOLUME = (
    Path(__file__).resolve().parents[2].parent / 'shared' / 'data' /
    'totalsegmentator_example' / 'example_ct.nii.gz')
HU_WINDOW = (-175., 250.)
NUM_CLASSES = 14  # BTCV: background + 13 organs
METHODS = ('ours', 'monai', 'whole')


class MONAINetBackbone(nn.Module):
    """A MONAI network as the segmentor's backbone: returns (logits, )."""

    def __init__(self, network: nn.Module, size_divisor: int) -> None:
        super().__init__()
        self.network = network
        self.size_divisor = size_divisor

    def forward(self, x: torch.Tensor):
        return (self.network(x), )


class PassThroughHead(nn.Module):
    """The head of a backbone that already returns logits (inference only)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, inputs):
        return inputs[0]

    def predict(self, inputs, batch_img_metas, test_cfg):
        return inputs[0]

    def loss(self, inputs, batch_data_samples, train_cfg):
        raise NotImplementedError('PassThroughHead is for inference benchmarks only')


def build_model(name: str, patch: Sequence[int], overlap: float,
                sw_batch_size: int) -> VolumeEncoderDecoder:
    """The benchmarked segmentor, seeded, in eval mode."""
    torch.manual_seed(0)
    test_cfg = dict(
        mode='slide',
        patch_size=tuple(patch),
        overlap=overlap,
        sw_batch_size=sw_batch_size,
        blend_mode='gaussian',
        sigma_scale=0.125)
    if name in ('dnet', 'dnet-full'):
        full = name == 'dnet-full'
        widths = (48, 96, 192, 384, 768) if full else (8, 16, 32, 64, 128)
        depth = 2 if full else 1
        salience_channels = widths[0]
        backbone = dict(
            type='DNetEncoder',
            in_channels=1,
            widths=widths,
            depths=(depth, ) * 5,
            salience_channels=salience_channels)
        decode_head = dict(
            type='DFF3DHead',
            in_channels=(salience_channels, *widths),
            num_classes=NUM_CLASSES,
            depths=(depth, ) * 4)
    else:
        from monai.networks.nets import UNet
        network = UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=NUM_CLASSES,
            channels=(16, 32, 64, 128),
            strides=(2, 2, 2),
            num_res_units=1)
        backbone = dict(type=MONAINetBackbone, network=network, size_divisor=8)
        decode_head = dict(type=PassThroughHead, num_classes=NUM_CLASSES)
    return VolumeEncoderDecoder(
        backbone=backbone, decode_head=decode_head, test_cfg=test_cfg).eval()


def load_volume(path: Optional[str], shape: Optional[Sequence[int]]) -> torch.Tensor:
    """(1, 1, D, H, W) float32: the CT windowed to ``HU_WINDOW`` and scaled to [0, 1],
    or a seeded uniform random volume of ``shape``."""
    if shape is not None:
        generator = torch.Generator().manual_seed(0)
        return torch.rand(1, 1, *shape, generator=generator)
    import nibabel as nib
    hu = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    low, high = HU_WINDOW
    scaled = (np.clip(hu, low, high) - low) / (high - low)
    return torch.from_numpy(scaled)[None, None]


def runner(method: str, model: VolumeEncoderDecoder, volume: torch.Tensor):
    """A no-argument function that runs ``method`` once and returns the logits."""
    metas = [dict(img_shape=tuple(volume.shape[2:]))]
    if method == 'ours':
        return lambda: model.slide_inference(volume, metas)
    if method == 'whole':
        return lambda: model.whole_inference(volume, metas)
    from monai.inferers import sliding_window_inference
    cfg = model.test_cfg
    return lambda: sliding_window_inference(
        volume,
        cfg['patch_size'],
        cfg['sw_batch_size'],
        model._forward,
        overlap=cfg['overlap'],
        mode='gaussian',
        sigma_scale=0.125)


def synchronise(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(runs: Dict[str, Callable], repeat: int, warmup: int,
                     device: torch.device) -> Tuple[dict, dict, dict]:
    """Wall and CPU seconds per run of each method, one run of each per round, the
    order reversed every other round, ``warmup`` untimed rounds first; and each
    method's output of the first round (on the CPU).

    CPU time (``time.process_time``, all threads of this process) is reported beside
    wall time because it hardly moves when other processes share the cores.
    """
    times = {name: [] for name in runs}
    cpu_times = {name: [] for name in runs}
    outputs = {}
    names = list(runs)
    for round_index in range(warmup + repeat):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            synchronise(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            output = runs[name]()
            synchronise(device)
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
            if round_index == 0:
                outputs[name] = output.cpu()
            del output
    return times, cpu_times, outputs


def peak_memory_cuda(run, device: torch.device) -> float:
    """MiB allocated at the peak of one run above the allocation before it."""
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    output = run()
    synchronise(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del output
    return peak / 2**20


def peak_memory_cpu_subprocess(method: str, argv: Sequence[str]) -> float:
    """MiB by which one run of ``method`` raises the peak RSS of a fresh process."""
    command = [
        sys.executable,
        os.path.abspath(__file__), *argv, '--measure-rss', method
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f'memory measurement of {method!r} failed:\n{done.stderr}')
    return float(done.stdout.strip().splitlines()[-1])


def _proc_status_mib(field: str) -> float:
    """A memory field ('VmRSS', 'VmHWM') of /proc/self/status, in MiB."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise OSError(f'/proc/self/status has no {field}')


def measure_rss(method: str, model, volume) -> float:
    """In this (fresh) process: MiB by which the peak RSS of one run exceeds the RSS
    before it.

    On Linux the peak is this process's VmHWM, reset to the current RSS first
    (``echo 5 > /proc/self/clear_refs``). ``ru_maxrss`` would be wrong here: a child
    started by vfork + exec (Python's subprocess) inherits the parent's high-water mark,
    which already exceeds the child's own peak after the parent's runs. Elsewhere the
    growth of ``ru_maxrss`` is the fallback (KiB on Linux, bytes on macOS).
    """
    run = runner(method, model, volume)
    try:
        with open('/proc/self/clear_refs', 'w') as clear_refs:
            clear_refs.write('5')
        before = _proc_status_mib('VmRSS')
        with torch.no_grad():
            run()
        return _proc_status_mib('VmHWM') - before
    except OSError:
        scale = 2**20 if sys.platform == 'darwin' else 2**10
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.no_grad():
            run()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / scale


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Sliding-window inference: VolumeEncoderDecoder against MONAI '
        'sliding_window_inference (same network, volume, patch, overlap, Gaussian)')
    parser.add_argument(
        '--model',
        choices=['dnet', 'dnet-full', 'unet'],
        default='dnet',
        help="small D-Net (DNetEncoder + DFF3DHead), the configs' full-size D-Net, "
        'or a small MONAI UNet')
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        '--volume',
        default=str(DEFAULT_VOLUME),
        help='NIfTI CT in HU (default: the shared real CT)')
    source.add_argument(
        '--shape',
        type=int,
        nargs=3,
        metavar=('D', 'H', 'W'),
        help='use a random volume of this shape instead')
    parser.add_argument(
        '--patch', type=int, nargs=3, default=(64, 64, 64), metavar=('D', 'H', 'W'))
    parser.add_argument('--overlap', type=float, default=0.5)
    parser.add_argument('--sw-batch-size', type=int, default=2)
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed rounds; the median is reported')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU)')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the peak memory measurement')
    parser.add_argument('--json', help='also write the results to this JSON file')
    parser.add_argument('--measure-rss', choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.sw_batch_size < 1:
        parser.error('need --repeat >= 1, --warmup >= 0 and --sw-batch-size >= 1')
    if not 0 <= args.overlap < 1:
        parser.error(f'--overlap must be in [0, 1), got {args.overlap}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    if args.shape is None and not os.path.isfile(args.volume):
        parser.error(f'--volume {args.volume}: no such file (use --shape D H W for a '
                     'random volume)')
    return args


def format_table(result: dict) -> str:
    s = result['settings']
    volume = s['volume'] or 'random'
    lines = [
        f'Sliding-window inference, {s["model"]} ({s["params"]:,} parameters), '
        f'volume {"x".join(map(str, s["shape"]))} ({volume}), patch '
        f'{"x".join(map(str, s["patch"]))}, overlap {s["overlap"]}, Gaussian sigma '
        f'0.125 x patch, {s["sw_batch_size"]} windows per forward, {s["windows"]} '
        f'windows; {s["device"]}; torch {s["torch"]}, monai {s["monai"]}; median of '
        f'{s["repeat"]} interleaved rounds after {s["warmup"]} warm-up.', '',
        '| Method | Median wall time (s) | Median CPU time (s) | Peak memory (MiB) '
        '| Max abs diff vs MONAI |', '|---|---:|---:|---:|---:|'
    ]
    labels = dict(
        ours='ours: VolumeEncoderDecoder.slide_inference',
        monai='MONAI sliding_window_inference (direct)',
        whole='whole volume, one forward (padded to the stride)')
    for name in METHODS:
        r = result['methods'][name]
        peak = 'n/a' if r['peak_mib'] is None else f'{r["peak_mib"]:.0f}'
        diff = 'n/a' if r['max_abs_diff'] is None else f'{r["max_abs_diff"]:.2e}'
        lines.append(f'| {labels[name]} | {r["median_s"]:.3f} | '
                     f'{r["median_cpu_s"]:.3f} | {peak} | {diff} |')
    memory = ('CUDA max_memory_allocated above the allocation before the run'
              if s['device'].startswith('cuda') else
              'peak RSS of one run above the RSS before it (VmHWM), fresh process per '
              'method')
    lines += ['', f'Peak memory: {memory}. CPU time: time.process_time, all threads.']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(args.model, args.patch, args.overlap,
                        args.sw_batch_size).to(device)
    volume = load_volume(None if args.shape else args.volume, args.shape).to(device)
    if args.measure_rss:
        print(measure_rss(args.measure_rss, model, volume))
        return ''
    load = os.getloadavg()[0]
    runs = {name: runner(name, model, volume) for name in METHODS}
    with torch.no_grad():
        times, cpu_times, outputs = time_interleaved(runs, args.repeat, args.warmup,
                                                     device)
        if args.no_memory:
            peaks = dict.fromkeys(METHODS)
        elif device.type == 'cuda':
            peaks = {name: peak_memory_cuda(runs[name], device) for name in METHODS}
        else:
            peaks = {name: peak_memory_cpu_subprocess(name, argv) for name in METHODS}
    from monai.data.utils import dense_patch_slices
    patch, size = args.patch, volume.shape[2:]
    padded = [max(s, p) for s, p in zip(size, patch)]
    scan = [
        p if s == p else max(1, int(p * (1 - args.overlap)))
        for s, p in zip(padded, patch)
    ]
    import monai
    where = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'CPU, {torch.get_num_threads()} threads, load average {load:.2f} at '
        'start')
    result = dict(
        settings=dict(
            model=args.model,
            params=sum(p.numel() for p in model.parameters()),
            volume=None if args.shape else args.volume,
            shape=list(size),
            patch=list(patch),
            overlap=args.overlap,
            sw_batch_size=args.sw_batch_size,
            windows=len(dense_patch_slices(padded, patch, scan)),
            device=where,
            torch=torch.__version__,
            monai=monai.__version__,
            repeat=args.repeat,
            warmup=args.warmup),
        methods={
            name:
            dict(
                median_s=statistics.median(times[name]),
                times_s=times[name],
                median_cpu_s=statistics.median(cpu_times[name]),
                cpu_times_s=cpu_times[name],
                peak_mib=peaks[name],
                max_abs_diff=(outputs['ours'] - outputs['monai']).abs().max().item()
                if name == 'ours' else None)
            for name in METHODS
        })
    table = format_table(result)
    print(table, end='')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return table


if __name__ == '__main__':
    main()
