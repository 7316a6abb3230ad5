"""Peak memory and time of one training step of a 3-D config, on the CPU.

    python tools/analysis_tools/train_step_memory.py CONFIG [--batch N]
        [--patch D H W] [--steps N] [--threads N] [--cfg-options k=v ...]

Builds the config's segmentor (pretrained weights dropped, nothing downloaded) and
its optimizer (mmengine's optim wrapper constructor, as the runner builds it), then
runs ``--steps`` training steps (``model.loss`` on random (N, C, D, H, W) volumes in
[0, 1] with random labels of the config's classes, backward, optimizer step) and
prints:

- the parameter count and their float32 size;
- the peak resident set size (``ru_maxrss``) of this process before the first step
  (interpreter, libraries, model, optimizer, inputs) and after the last;
- the growth between the two: what the steps needed on top (activations kept for
  the backward pass, gradients, the optimizer's state, temporary buffers);
- the wall time and the CPU time (this process, all its threads) of each step; the
  first includes creating oneDNN primitives. On a shared machine the CPU time is the
  figure to quote: it is what the step costs, however many other jobs are running.

Without a GPU this is the measurement to estimate GPU memory from: a CUDA training
step holds about the same tensors (weights + growth), plus the CUDA context and
cuDNN workspaces, which the CPU run does not have. Run each measurement in its own
process (ru_maxrss never decreases). ``--patch`` defaults to the config's
``test_cfg.patch_size`` (the training patch of the 3-D configs).
"""
import argparse
import resource
import sys
import time
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
from mmseg_fusion.utils import drop_pretrained

GIB = 1024**3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak memory (RSS) and time of training steps of a 3-D config '
        'on the CPU')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--batch', type=int, default=1, help='volumes per step (default: %(default)s)')
    parser.add_argument(
        '--patch',
        type=int,
        nargs=3,
        metavar=('D', 'H', 'W'),
        help="patch size (default: the config's test_cfg.patch_size)")
    parser.add_argument(
        '--steps',
        type=int,
        default=2,
        help='training steps to run (default: %(default)s)')
    parser.add_argument(
        '--threads', type=int, help="torch threads (default: PyTorch's choice)")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    for name in ('batch', 'steps', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name} must be a positive int, got {value}')
    if args.patch is not None and min(args.patch) < 1:
        parser.error(f'--patch sides must be positive, got {args.patch}')
    return args


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def random_batch(batch: int, channels: int, patch: Sequence[int], num_classes: int):
    """Random inputs (N, C, D, H, W) in [0, 1] and N samples with random labels."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand((batch, channels, *patch), generator=generator)
    samples = []
    for _ in range(batch):
        sample = VolumeSegDataSample()
        sample.gt_sem_seg = VolumeData(
            data=torch.randint(0, num_classes, (1, *patch), generator=generator))
        samples.append(sample)
    return inputs, samples


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    drop_pretrained(cfg.model)
    patch = tuple(args.patch or cfg.model.test_cfg.patch_size)

    model = MODELS.build(cfg.model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    channels = getattr(model.backbone, 'in_channels', 1) or 1
    inputs, samples = random_batch(args.batch, channels, patch,
                                   model.decode_head.num_classes)
    params = sum(p.numel() for p in model.parameters())
    before = peak_rss_bytes()

    times, cpu_times = [], []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    after = peak_rss_bytes()

    result = dict(
        config=args.config,
        batch=args.batch,
        patch=patch,
        params=params,
        params_gib=params * 4 / GIB,
        rss_before_gib=before / GIB,
        rss_peak_gib=after / GIB,
        growth_gib=(after - before) / GIB,
        step_seconds=times,
        step_cpu_seconds=cpu_times,
        threads=torch.get_num_threads())
    print(
        f'{args.config}\n'
        f'  patch {"x".join(map(str, patch))}, batch {args.batch}, '
        f'{torch.get_num_threads()} threads\n'
        f'  params {params:,} ({result["params_gib"]:.3f} GiB float32)\n'
        f'  peak RSS before the steps {result["rss_before_gib"]:.2f} GiB, after '
        f'{result["rss_peak_gib"]:.2f} GiB, growth {result["growth_gib"]:.2f} GiB\n'
        f'  step times {", ".join(f"{t:.1f}" for t in times)} s wall, '
        f'{", ".join(f"{t:.1f}" for t in cpu_times)} s CPU',
        flush=True)
    return result


if __name__ == '__main__':
    main()
