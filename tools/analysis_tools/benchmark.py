"""Inference speed of the segmentor a config builds, on random images (no dataset).

    python tools/analysis_tools/benchmark.py CONFIG [--checkpoint FILE]
        [--shape H [W]] [--batch-size N] [--repeat N] [--warmup N]
        [--device {cpu,cuda}] [--threads N] [--cfg-options k=v ...]

Unlike mmseg's tools/analysis_tools/benchmark.py, which reads the test set and needs
CUDA, this times ``model(inputs, data_samples, mode='predict')`` (the config's
``test_cfg``: whole or sliding-window inference, resized logits, argmax) on random
images of ``--shape`` (default: the config's crop size), on CPU or CUDA. The data
preprocessor runs once, outside the timing. The time is the median of ``--repeat``
runs after ``--warmup`` runs. Without ``--checkpoint`` the weights are random and
pretrained weights are dropped from the config, so nothing is downloaded.
"""
import argparse
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import load_checkpoint

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import (PathNotFoundError, build_inference_model,
                                drop_pretrained, image_channels, input_shape,
                                random_batch, run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Inference speed of a segmentor on random images')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--checkpoint', help='checkpoint to load (optional)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='image size H [W] (one value: square); default: the config\'s '
        'crop_size, else 512 512')
    parser.add_argument('--batch-size', type=int, default=1, help='images per run')
    parser.add_argument('--repeat', type=int, default=50, help='timed runs')
    parser.add_argument(
        '--warmup', type=int, default=5, help='untimed runs before timing')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H or H W, got {args.shape}')
    if args.repeat < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('need --repeat >= 1, --warmup >= 0 and --batch-size >= 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not osp.isfile(args.config):
        raise PathNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.checkpoint is None:
        drop_pretrained(cfg.model)
    shape = input_shape(cfg, args.shape)
    model = build_inference_model(cfg)
    if args.checkpoint is not None:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(device)

    batch = random_batch(model, shape, image_channels(cfg), args.batch_size)
    inputs, data_samples = batch['inputs'], batch['data_samples']

    def run():
        with torch.no_grad():
            model(inputs, data_samples, mode='predict')
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    ms_per_batch = 1000 * statistics.median(times)
    result = dict(
        params=sum(p.numel() for p in model.parameters()),
        ms_per_img=ms_per_batch / args.batch_size,
        img_per_s=1000 * args.batch_size / ms_per_batch)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads')
    print(f'Input: {args.batch_size} random image(s) of {shape[0]}x{shape[1]} (not a '
          f'dataset), model input {"x".join(map(str, inputs.shape))}\n'
          f'Weights: {args.checkpoint or "random (no checkpoint)"}\n'
          f'Params: {result["params"]:,}\n'
          f'Device: {where}; median of {args.repeat} runs after {args.warmup} '
          'warm-up runs\n'
          f'Speed: {result["ms_per_img"]:.2f} ms/img, {result["img_per_s"]:.2f} img/s')
    return result


if __name__ == '__main__':
    run_cli(main)
