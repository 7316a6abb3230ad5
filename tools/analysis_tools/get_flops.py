"""Parameters and FLOPs of the segmentor a config builds: mmseg's
tools/analysis_tools/get_flops.py, on CPU, with mmseg-fusion's fixes and without
pretrained weights (nothing is downloaded).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
        [--cfg-options k=v ...]

The input is one random image of ``--shape`` (default: the config's ``crop_size``,
else its data preprocessor's ``size``, else 512 x 512), passed through the model's
data preprocessor as mmseg does. FLOPs are mmengine's count (one multiply-add is one
FLOP; element-wise operations are not counted) of ``model(inputs)`` in ``'tensor'``
mode, printed as n/a when the model cannot be traced. As in mmseg's tool, the
auxiliary head is dropped (it does not run at inference) and is not in the params.
"""
import argparse
import os.path as osp

from mmengine.analysis.print_helper import _format_size
from mmengine.config import Config, DictAction

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import (PathNotFoundError, build_inference_model, count_flops,
                                drop_pretrained, image_channels, input_shape,
                                random_batch, run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Get the params and FLOPs of a '
                                     'segmentor')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='input size H [W] (one value: square); default: the config\'s '
        'crop_size, else 512 512')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H or H W, got {args.shape}')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise PathNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = input_shape(cfg, args.shape)
    drop_pretrained(cfg.model)
    model = build_inference_model(cfg)
    inputs = random_batch(model, shape, image_channels(cfg))['inputs']
    result = dict(
        input_shape=tuple(inputs.shape),
        flops=count_flops(model, inputs),
        params=sum(p.numel() for p in model.parameters()))
    flops = ('n/a (the model could not be traced; reason in the log above)'
             if result['flops'] is None else
             f'{_format_size(result["flops"])} ({result["flops"]:,}; one '
             'multiply-add = one FLOP)')
    print(f'Input: random image {shape[0]}x{shape[1]}, model input '
          f'{"x".join(map(str, inputs.shape))} (after the data preprocessor)\n'
          f'FLOPs: {flops}\n'
          f'Params: {_format_size(result["params"])} ({result["params"]:,})')
    return result


if __name__ == '__main__':
    run_cli(main)
