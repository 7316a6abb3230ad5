"""Export a config's segmentor to ONNX and check the graph in onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT]
        [--shape H [W] | D [H W]] [--out FILE] [--opset 17]
        [--dynamic-batch | --no-dynamic-batch] [--mode {logits,tensor}]
        [--exporter {torchscript,dynamo}] [--threads N] [--atol 1e-3]
        [--cfg-options k=v ...]

The graph maps the model's input *after its data preprocessor* (2-D: the
normalised, RGB-ordered image; 3-D: the windowed volume), (N, C, *size), to the
logits at that size, (N, K, *size): ``encode_decode`` of the segmentor, what
whole-image inference and every sliding window compute before the argmax
(``--mode tensor``: the decode head's raw output instead). The spatial size is fixed
(default: the config's test size: the crop size of 2-D configs, the sliding-window
patch of 3-D ones); the batch axis is dynamic unless ``--no-dynamic-batch``.
Adaptive pooling (HFF's and UPerHead's pyramid pooling, SAFM) is exported as fixed
pooling or slices and reductions with the same values, which fixes the spatial size.

Without CHECKPOINT the weights are random and pretrained weights are dropped from the
config (nothing is downloaded). The tool then runs the graph in onnxruntime (CPU) on
random inputs at the traced batch and, with a dynamic batch, at batch 1, and prints
the largest absolute difference from PyTorch. A model whose PyTorch output differs
between two runs (random operations at inference, e.g. mmseg's Hamburger in SegNeXt)
is reported as such, with the graph's random nodes, instead of as a mismatch.

Errors (one ``error: ...`` line, exit status 1): an existing ``--out`` file (never
overwritten), a model the exporter cannot convert (the message names the block:
module path and type, and the operation), and a difference above ``--atol`` for a
deterministic model (the file is kept for inspection).
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import numpy as np
import torch
from mmengine.config import DictAction

import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
from mmseg_fusion.utils import OutputExistsError, ToolError, run_cli
from mmseg_fusion.utils.onnx_export import (EXPORTERS, export_onnx, onnxruntime_failure,
                                            onnxruntime_session, random_onnx_nodes)
from mmseg_fusion.utils.segmentor_io import (SegmentorLogits, build_segmentor,
                                             load_config, random_inputs,
                                             test_input_size)


class OnnxMismatchError(ToolError, ValueError):
    """onnxruntime's output differs from PyTorch's by more than the tolerance."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX and compare onnxruntime with PyTorch')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint (optional; without it the weights are random)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='input size: H [W] for 2-D models, D [H W] for 3-D ones (one value: '
        "square / cube); default: the config's test size")
    parser.add_argument(
        '--out',
        help='ONNX file to write (never overwritten); default: '
        'work_dirs/onnx/{config name}.onnx')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    parser.add_argument(
        '--dynamic-batch',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='dynamic batch axis (default: on)')
    parser.add_argument(
        '--mode',
        choices=['logits', 'tensor'],
        default='logits',
        help="'logits': encode_decode, logits at the input size (default); "
        "'tensor': the decode head's raw output")
    parser.add_argument(
        '--exporter',
        choices=EXPORTERS,
        default='torchscript',
        help="torch.onnx exporter: 'torchscript' (default) or "
        "'dynamo' (needs onnxscript)")
    parser.add_argument(
        '--threads', type=int, help='CPU threads of PyTorch and onnxruntime')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-3,
        help='largest accepted |onnxruntime - PyTorch| (default: 1e-3)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1')
    return args


def default_out(config: str) -> str:
    name = osp.splitext(osp.basename(config))[0]
    return osp.join('work_dirs', 'onnx', f'{name}.onnx')


def check_out(path: str) -> None:
    if osp.lexists(path):
        raise OutputExistsError(f'--out {path} exists; it is never overwritten '
                                '(remove it or choose another --out)')


def preprocessing(cfg) -> str:
    """What the data preprocessor does before the graph, in words."""
    pre = cfg.model.get('data_preprocessor') or {}
    parts = []
    if pre.get('bgr_to_rgb') or pre.get('rgb_to_bgr'):
        parts.append('BGR -> RGB' if pre.get('bgr_to_rgb') else 'RGB -> BGR')
    if pre.get('mean') is not None:
        parts.append(f'(x - {list(pre["mean"])}) / {list(pre["std"])} per channel')
    return ', '.join(parts) or 'none (float32 as loaded)'


def compare(module, session, inputs: torch.Tensor, repeat: bool = True) -> dict:
    """PyTorch and onnxruntime outputs of ``inputs``: largest absolute difference,
    largest |PyTorch output| and (``repeat``) the difference between two PyTorch
    runs (0 for a deterministic model)."""
    with torch.no_grad():
        first = [t.numpy() for t in _tensors(module(inputs))]
        second = [t.numpy() for t in _tensors(module(inputs))] if repeat else first
    feeds = {session.get_inputs()[0].name: inputs.numpy()}
    outputs = session.run(None, feeds)
    if len(outputs) != len(first) or any(o.shape != f.shape
                                         for o, f in zip(outputs, first)):
        raise OnnxMismatchError(
            f'onnxruntime returned shapes {[o.shape for o in outputs]} at batch '
            f'{len(inputs)}, PyTorch {[f.shape for f in first]}')
    return dict(
        batch=len(inputs),
        output_shapes=[tuple(f.shape) for f in first],
        max_abs_diff=max(float(np.abs(o - f).max()) for o, f in zip(outputs, first)),
        max_abs_output=max(float(np.abs(f).max()) for f in first),
        pytorch_repeat_diff=max(
            float(np.abs(a - b).max()) for a, b in zip(first, second)))


def _tensors(output):
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for t in output if isinstance(t, torch.Tensor)]


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = args.out or default_out(args.config)
    check_out(out)
    cfg = load_config(args.config, args.cfg_options)
    size = test_input_size(cfg, args.shape)
    model = build_segmentor(cfg, args.checkpoint)
    module = SegmentorLogits(model, size, args.mode).eval()
    batch = 2 if args.dynamic_batch else 1
    inputs = random_inputs(model, cfg, size, batch, seed=0)
    output_names = ['logits'] if args.mode == 'logits' else None

    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = osp.join(tmp, osp.basename(out))
        export_onnx(
            module,
            inputs,
            staged,
            opset=args.opset,
            dynamic_batch=args.dynamic_batch,
            exporter=args.exporter,
            input_names=['inputs'],
            output_names=output_names,
            relative_to=model)
        check_out(out)
        os.link(staged, out)  # fails rather than replaces a file made meanwhile
    export_s = time.perf_counter() - start

    try:
        session = onnxruntime_session(out, args.threads)
    except ToolError:
        raise
    except Exception as error:  # onnxruntime rejects the graph
        raise onnxruntime_failure(module, error, 'loading', model) from error
    try:
        checks = [compare(module, session, inputs)]
        if args.dynamic_batch:
            checks.append(
                compare(module, session, random_inputs(model, cfg, size, 1, 1), False))
    except ToolError:
        raise
    except Exception as error:  # onnxruntime fails on the graph
        raise onnxruntime_failure(module, error, 'running', model) from error
    worst = max(c['max_abs_diff'] for c in checks)
    spread = max(c['pytorch_repeat_diff'] for c in checks)
    random_nodes = random_onnx_nodes(out) if spread > 0 else []

    import onnxruntime
    sides = 'x'.join(map(str, size))
    channels = inputs.shape[1]
    lead = 'batch' if args.dynamic_batch else '1'
    graph_out = session.get_outputs()
    weights = args.checkpoint or 'random weights, no checkpoint'
    print(f'Exported {args.config} ({weights})\n  -> {out} '
          f'({osp.getsize(out) / 2**20:.1f} MiB, opset {args.opset}, '
          f'{args.exporter} exporter, {export_s:.1f} s)')
    print(f'Input  {session.get_inputs()[0].name}: {lead}x{channels}x{sides} float32 '
          f'(after the data preprocessor: {preprocessing(cfg)}); spatial size fixed, '
          f'batch {"dynamic" if args.dynamic_batch else "fixed"}')
    for item, shape in zip(graph_out, checks[0]['output_shapes']):
        shape = 'x'.join([lead] + [str(s) for s in shape[1:]])
        what = ('logits at the input size (encode_decode)' if args.mode == 'logits' else
                "the decode head's output ('tensor' mode)")
        print(f'Output {item.name}: {shape} {what}')
    checked = ', '.join(f'{c["max_abs_diff"]:.3g} at batch {c["batch"]}'
                        for c in checks)
    print(f'onnxruntime {onnxruntime.__version__} (CPU) vs PyTorch '
          f'{torch.__version__}, random inputs: max |diff| {checked} (largest |output| '
          f'{max(c["max_abs_output"] for c in checks):.3g})')
    result = dict(
        out=out,
        input_size=tuple(size),
        checks=checks,
        max_abs_diff=worst,
        pytorch_repeat_diff=spread,
        random_nodes=random_nodes,
        export_seconds=export_s)
    if spread > 0:
        shown = ', '.join(random_nodes[:4]) + (', ...' if len(random_nodes) > 4 else '')
        print(f'Note: PyTorch itself is not deterministic here: two runs on the same '
              f'input differ by {spread:.3g} (random operations at inference; graph '
              f'nodes: {shown or "none found"}), so the difference above is not a '
              'conversion error.')
    elif worst > args.atol:
        raise OnnxMismatchError(
            f'onnxruntime differs from PyTorch by {worst:.3g} > --atol {args.atol} '
            f'(the graph is kept in {out} for inspection)')
    return result


if __name__ == '__main__':
    run_cli(main)
