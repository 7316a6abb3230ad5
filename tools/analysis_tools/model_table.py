"""Parameters, FLOPs and CPU latency (PyTorch and onnxruntime) of every config's model,
and optionally its training throughput and peak memory, as markdown per model family
and JSON.

    python tools/analysis_tools/model_table.py [--configs PATH ...] [--out table.md]
        [--json table.json] [--repeats N] [--warmup N] [--threads N]
        [--max-seconds S] [--max-memory GIB] [--no-onnx] [--train [--train-steps N]]
        [--device {cpu,cuda}]

PATH is a config file or a folder searched recursively (default: every config under
``configs/`` except ``_base_``). Each model is measured in a fresh Python process
(killed after ``--max-seconds`` or above ``--max-memory`` GiB of resident memory, the
row then says ``n/a (timeout)`` / ``n/a (memory)``), with random weights (pretrained
weights dropped, nothing downloaded) and random inputs (no dataset):

- inference, batch 1 at the config's test size: the crop size of 2-D configs (whole
  inference, or the window of a sliding-window test), the sliding-window patch of
  3-D ones (so a whole CT volume costs this times its number of windows):
  parameters (without the auxiliary head), FLOPs (mmengine's count of the
  ``'tensor'`` forward, as ``get_flops.py``: one multiply-add is one FLOP,
  element-wise operations not counted), PyTorch latency of ``encode_decode`` (the
  logits at the input size) in eval mode under ``no_grad``, and the same graph
  exported to ONNX (``tools/deployment/pytorch2onnx.py``'s exporter) and run in
  onnxruntime on CPU, with the largest difference from PyTorch; ``n/a (reason)``
  where the model cannot be exported. Latency is the median of ``--repeats`` runs
  after ``--warmup`` runs (fewer repeats when one run is long: the count is listed).
- ``--train``: training throughput (images or 3-D patches per second) and the
  process's peak resident memory (max RSS; with ``--device cuda`` the peak CUDA
  memory too) of full training steps (data preprocessor, loss, backward, the
  config's optimizer) at the config's batch size and training crop, random images
  and labels, one fresh process per distinct model / batch / crop / optimizer.

Configs that build the same model at the same size (the same network on another
dataset) are measured once; their rows repeat the numbers and name the measured one.
The header records the machine, the threads and the load average (timings taken
while other jobs run are inflated).
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILY_ORDER = ('mcanet', 'dca', 'hff', 'blocks', 'dnet', 'demo')
# Folders whose configs are listed in another family's table.
FAMILY_OF_FOLDER = {'segnext': 'mcanet'}
FAMILY_TITLES = {
    'mcanet': 'MCANet and the SegNeXt baseline (configs/mcanet, configs/segnext)',
    'dca': 'U-Net with and without DCA (configs/dca)',
    'hff': 'HFF (configs/hff)',
    'blocks': 'U-Net with one block (configs/blocks)',
    'dnet': '3-D: D-Net and baselines (configs/dnet)',
    'demo': 'Demos (configs/demo)',
}


# ----------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters, FLOPs, CPU latency (PyTorch, onnxruntime) and '
        'training throughput of configs, as markdown and JSON')
    parser.add_argument(
        '--configs',
        nargs='+',
        metavar='PATH',
        help='config files or folders (default: configs/)')
    parser.add_argument('--out', help='write the markdown here (also printed)')
    parser.add_argument('--json', help='write the JSON here')
    parser.add_argument('--repeats', type=int, default=10, help='timed runs')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed runs before timing')
    parser.add_argument(
        '--threads',
        type=int,
        default=2,
        help='CPU threads of PyTorch and onnxruntime (default: 2)')
    parser.add_argument(
        '--max-seconds',
        type=float,
        default=900,
        help='time limit of one model\'s measurement process (default: 900)')
    parser.add_argument(
        '--max-memory',
        type=float,
        default=12,
        help='resident memory limit (GiB) of one measurement process (default: 12)')
    parser.add_argument(
        '--no-onnx',
        action='store_true',
        help='skip the ONNX export and onnxruntime latency')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    parser.add_argument(
        '--train',
        action='store_true',
        help='also measure training throughput and peak memory')
    parser.add_argument(
        '--train-steps',
        type=int,
        default=3,
        help='timed training steps (after one untimed step)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cpu',
        help='device of the --train measurement (inference: CPU)')
    parser.add_argument('--worker', choices=['infer', 'train'], help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', help=argparse.SUPPRESS)
    parser.add_argument('config', nargs='?', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error('need --repeats >= 1, --warmup >= 0 and --threads >= 1')
    if args.max_seconds <= 0 or args.max_memory <= 0 or args.train_steps < 1:
        parser.error('need --max-seconds > 0, --max-memory > 0, --train-steps >= 1')
    return args


def find_configs(paths: Optional[List[str]]) -> List[str]:
    """Config files of ``paths`` (files, or folders searched recursively, ``_base_``
    skipped), sorted per folder; default: the repository's ``configs/``."""
    from mmseg_fusion.utils import PathNotFoundError
    found = []
    for path in paths or [osp.join(REPO, 'configs')]:
        if osp.isfile(path):
            found.append(path)
        elif osp.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != '_base_')
                found += sorted(osp.join(root, f) for f in files if f.endswith('.py'))
        else:
            raise PathNotFoundError(f'--configs: no such file or folder: {path}')
    return found


def family_of(path: str) -> str:
    """The table a config is listed in: its folder's name (SegNeXt beside MCANet)."""
    folder = osp.basename(osp.dirname(osp.abspath(path)))
    return FAMILY_OF_FOLDER.get(folder, folder)


def name_of(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


# ----------------------------------------------------------------------------------
# what to measure
# ----------------------------------------------------------------------------------
def train_input_size(cfg) -> tuple:
    """The spatial size of a training sample: the config's crop size (2-D: else the
    data preprocessor's size), else its test size."""
    from mmseg_fusion.utils.segmentor_io import is_volumetric, test_input_size
    size = cfg.get('crop_size')
    if not size and not is_volumetric(cfg):
        size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if not size:
        return test_input_size(cfg)
    dims = 3 if is_volumetric(cfg) else 2
    size = (size, ) * dims if isinstance(size, int) else size
    return tuple(int(s) for s in size)


def train_batch_size(cfg) -> int:
    return int((cfg.get('train_dataloader') or {}).get('batch_size') or 1)


def signatures(path: str) -> dict:
    """What a measurement depends on: the model (pretrained weights dropped,
    auxiliary head removed) at the test size; for training also the batch, the
    crop and the optimizer."""
    from mmseg_fusion.utils import drop_pretrained
    from mmseg_fusion.utils.segmentor_io import load_config, test_input_size
    cfg = load_config(path)
    model = cfg.model.to_dict()
    drop_pretrained(model)
    model.pop('auxiliary_head', None)
    infer = json.dumps([model, test_input_size(cfg)], sort_keys=True, default=str)
    optim = (cfg.get('optim_wrapper') or {})
    optim = optim.to_dict() if hasattr(optim, 'to_dict') else optim
    train = json.dumps(
        [infer, train_batch_size(cfg),
         train_input_size(cfg), optim],
        sort_keys=True,
        default=str)
    return dict(infer=infer, train=train)


# ----------------------------------------------------------------------------------
# the measurement processes
# ----------------------------------------------------------------------------------
def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Progress:
    """The worker's results, rewritten after each stage (so a killed worker leaves
    what it finished)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data = {}

    def update(self, **values) -> None:
        self.data.update(values)
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)


def time_runs(fn, warmup: int, repeats: int, budget_s: float):
    """Median seconds of ``fn()`` over up to ``repeats`` runs after ``warmup``,
    stopping early once the timed runs took ``budget_s``; (median, runs)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats:
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times), len(times)


def worker_infer(args) -> None:
    import torch

    import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
    from mmseg_fusion.utils import count_flops
    from mmseg_fusion.utils.segmentor_io import (SegmentorLogits, build_segmentor,
                                                 load_config, random_inputs,
                                                 test_input_size)
    torch.set_num_threads(args.threads)
    progress = Progress(args.worker_out)
    progress.update(load_start=load_average())
    cfg = load_config(args.config)
    size = test_input_size(cfg)
    model = build_segmentor(cfg)
    module = SegmentorLogits(model, size).eval()
    inputs = random_inputs(model, cfg, size, 1)
    progress.update(
        input=list(inputs.shape), params=sum(p.numel() for p in model.parameters()))
    budget = args.max_seconds / 5

    def run_torch():
        with torch.no_grad():
            module(inputs)

    seconds, runs = time_runs(run_torch, args.warmup, args.repeats, budget)
    progress.update(torch_ms=1000 * seconds, torch_runs=runs)
    progress.update(flops=count_flops(model, inputs))
    if args.no_onnx:
        progress.update(onnx='n/a (--no-onnx)')
    else:
        measure_onnx(module, inputs, args, progress, budget)
    progress.update(peak_rss_mib=peak_rss_mib(), load_end=load_average())


def measure_onnx(module, inputs, args, progress: Progress, budget: float) -> None:
    """Export ``module`` at batch 1, check it in onnxruntime and time it there."""
    import numpy as np
    import torch

    from mmseg_fusion.utils.onnx_export import (OnnxExportError, export_onnx,
                                                onnxruntime_failure,
                                                onnxruntime_session)
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'model.onnx')
        start = time.perf_counter()
        try:
            export_onnx(
                module,
                inputs,
                path,
                opset=args.opset,
                dynamic_batch=False,
                input_names=['inputs'],
                relative_to=module.segmentor)
        except OnnxExportError as error:
            progress.update(
                onnx=f'n/a ({error})',
                onnx_block=error.module_path,
                onnx_op=error.operation)
            return
        progress.update(onnx_export_s=time.perf_counter() - start)
        feeds = {'inputs': inputs.numpy()}
        try:
            session = onnxruntime_session(path, args.threads)
            ours = session.run(None, feeds)[0]
        except Exception as error:  # onnxruntime rejects or fails on the graph
            error = onnxruntime_failure(module, error, 'running', module.segmentor)
            progress.update(
                onnx=f'n/a ({error})',
                onnx_block=error.module_path,
                onnx_op=error.operation)
            return
        with torch.no_grad():
            reference = module(inputs).numpy()
            again = module(inputs).numpy()
        progress.update(
            onnx='ok',
            onnx_max_abs_diff=float(np.abs(ours - reference).max()),
            pytorch_repeat_diff=float(np.abs(again - reference).max()))
        seconds, runs = time_runs(lambda: session.run(None, feeds), args.warmup,
                                  args.repeats, budget)
        progress.update(onnx_ms=1000 * seconds, onnx_runs=runs)


def random_training_batch(cfg, model, batch: int, size: tuple, seed: int = 0) -> dict:
    """Random images (uint8) or volumes (float in [0, 1]) and labels of every class
    the head predicts, as a dataloader would collate them."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmseg_fusion.structures import VolumeData, VolumeSegDataSample
    from mmseg_fusion.utils.segmentor_io import input_channels
    generator = torch.Generator().manual_seed(seed)
    head = model.decode_head
    classes = 2 if getattr(head, 'out_channels', None) == 1 else head.num_classes
    channels = input_channels(cfg)
    inputs, samples = [], []
    for _ in range(batch):
        label = torch.randint(0, classes, (1, *size), generator=generator)
        if len(size) == 3:
            inputs.append(torch.rand((channels, *size), generator=generator))
            sample = VolumeSegDataSample()
            sample.gt_sem_seg = VolumeData(data=label)
        else:
            inputs.append(
                torch.randint(
                    0, 256, (channels, *size), dtype=torch.uint8, generator=generator))
            sample = SegDataSample(
                metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def worker_train(args) -> None:
    import torch
    from mmengine.optim import build_optim_wrapper

    import mmseg_fusion  # noqa: F401  (compat fixes, registers our modules)
    from mmseg_fusion.utils.segmentor_io import build_segmentor, load_config
    torch.set_num_threads(args.threads)
    progress = Progress(args.worker_out)
    progress.update(load_start=load_average())
    cfg = load_config(args.config)
    batch, size = train_batch_size(cfg), train_input_size(cfg)
    model = build_segmentor(cfg, auxiliary_head=True)
    device = torch.device(args.device)
    model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = random_training_batch(cfg, model, batch, size)
    progress.update(
        train_batch=batch, train_size=list(size), rss_before_mib=peak_rss_mib())
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        model.train_step(data, optim_wrapper)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    seconds, runs = time_runs(step, 1, args.train_steps, args.max_seconds / 2)
    result = dict(
        train_step_s=seconds,
        train_steps=runs,
        train_per_s=batch / seconds,
        train_peak_rss_mib=peak_rss_mib(),
        load_end=load_average())
    if device.type == 'cuda':
        result.update(
            train_peak_cuda_mib=torch.cuda.max_memory_allocated(device) / 2**20,
            gpu=torch.cuda.get_device_name(device))
    progress.update(**result)


def process_rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), 0 when it is gone."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def measure(kind: str, config: str, args) -> dict:
    """Run one measurement process; its results, with ``status`` 'ok', 'timeout',
    'memory' or 'error: ...'."""
    with tempfile.TemporaryDirectory() as tmp:
        out, log = osp.join(tmp, 'result.json'), osp.join(tmp, 'log.txt')
        command = [
            sys.executable,
            osp.abspath(__file__), '--worker', kind, '--worker-out', out, '--threads',
            str(args.threads), '--repeats',
            str(args.repeats), '--warmup',
            str(args.warmup), '--max-seconds',
            str(args.max_seconds), '--opset',
            str(args.opset), '--train-steps',
            str(args.train_steps), '--device', args.device, config
        ] + (['--no-onnx'] if args.no_onnx else [])
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(args.threads),
            PYTHONPATH=os.pathsep.join([REPO] +
                                       [p
                                        for p in [os.environ.get('PYTHONPATH')] if p]))
        start = time.monotonic()
        peak = 0.0
        status = 'ok'
        with open(log, 'w') as log_file:
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True)
            while process.poll() is None:
                peak = max(peak, process_rss_mib(process.pid))
                if time.monotonic() - start > args.max_seconds:
                    status = 'timeout'
                elif peak > args.max_memory * 1024:
                    status = 'memory'
                if status != 'ok':
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    break
                time.sleep(0.2)
        if status == 'ok' and process.returncode != 0:
            with open(log) as f:
                lines = [line.strip() for line in f if line.strip()]
            status = f'error: {lines[-1][:300] if lines else process.returncode}'
        result = {}
        if osp.isfile(out):
            with open(out) as f:
                result = json.load(f)
    result.update(status=status, seconds=round(time.monotonic() - start, 1))
    if status == 'timeout':
        result['reason'] = f'timeout after {args.max_seconds:g} s'
    elif status == 'memory':
        result['reason'] = f'memory above {args.max_memory:g} GiB'
    elif status != 'ok':
        result['reason'] = status
    return result


# ----------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------
def fmt_count(value, unit: float, suffix: str) -> str:
    return f'{value / unit:.2f} {suffix}' if isinstance(value, (int, float)) else value


def fmt_ms(value, runs=None) -> str:
    if not isinstance(value, (int, float)):
        return value
    text = f'{value:.1f}' if value >= 10 else f'{value:.2f}'
    return text if runs is None else f'{text} ({runs})'


def na(row: dict, what: str) -> str:
    return f'n/a ({row.get("reason", what)})'


def cell(row: dict, key: str, formatter, *extra) -> str:
    if row.get(key) is None:
        if key == 'flops' and 'flops' in row:
            return 'n/a (not traceable)'
        return na(row, 'not measured')
    return formatter(row[key], *extra)


def onnx_cells(row: dict) -> List[str]:
    onnx = row.get('onnx')
    if onnx == 'ok' and row.get('onnx_ms') is not None:
        diff = f'{row["onnx_max_abs_diff"]:.1e}'
        if row.get('pytorch_repeat_diff'):
            diff += f' (PyTorch alone: {row["pytorch_repeat_diff"]:.1e}, random)'
        return [fmt_ms(row['onnx_ms'], row.get('onnx_runs')), diff]
    if onnx is None or onnx == 'ok':
        return [na(row, 'not measured'), '']
    return [onnx, '']


def input_text(row: dict) -> str:
    shape = row.get('input')
    return 'x'.join(map(str, shape)) if shape else 'n/a'


def infer_row(row: dict) -> List[str]:
    note = f'same model as `{row["same_as"]}`' if row.get('same_as') else ''
    return [
        f'`{row["name"]}`',
        input_text(row),
        cell(row, 'params', fmt_count, 1e6, 'M'),
        cell(row, 'flops', fmt_count, 1e9, 'G'),
        cell(row, 'torch_ms', lambda v: fmt_ms(v, row.get('torch_runs')))
    ] + onnx_cells(row) + [note]


INFER_HEADER = [
    'config', 'input', 'params', 'FLOPs', 'PyTorch ms (runs)', 'onnxruntime ms (runs)',
    'ORT max abs diff', 'note'
]


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|'
    ]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def mcanet_order(row: dict):
    """MCANet rows beside the SegNeXt row of the same backbone and dataset."""
    name = row['name']
    algorithm, backbone = name.split('_')[:2]
    dataset = name.split('_')[-1]
    return (dataset, backbone, algorithm != 'mcanet', name)


def dca_order(row: dict):
    """U-Net beside U-Net + DCA on the same dataset."""
    name = row['name']
    return (name.split('_')[-1], not name.startswith('unet'), name)


def comparison(rows: List[dict], base_prefix: str, other_prefix: str,
               title: str) -> str:
    """Pairs (base, other) of configs that differ only in the algorithm prefix."""
    by_name = {row['name']: row for row in rows}
    pairs = []
    for name, row in by_name.items():
        if not name.startswith(other_prefix):
            continue
        base = by_name.get(base_prefix + name[len(other_prefix):])
        if base is None:
            continue
        cells = [f'`{name[len(other_prefix):].lstrip("_")}`']
        for key, unit in (('params', 1e6), ('flops', 1e9), ('torch_ms', 1), ('onnx_ms',
                                                                             1)):
            a, b = base.get(key), row.get(key)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                cells.append(f'{a / unit:.2f} → {b / unit:.2f} ({b / a:.2f}x)')
            else:
                cells.append('n/a')
        pairs.append(cells)
    if not pairs:
        return ''
    header = ['rest of the name', 'params M', 'GFLOPs', 'PyTorch ms', 'onnxruntime ms']
    return (f'{title}\n\n' + markdown_table(header, sorted(pairs)))


def train_rows(rows: List[dict]) -> str:
    measured = [r for r in rows if r.get('train') is not None]
    if not measured:
        return ''
    cuda = any(r['train'].get('train_peak_cuda_mib') is not None for r in measured)
    header = [
        'config', 'batch x input', 'step s (steps)', 'images or patches / s',
        'peak RSS MiB'
    ] + (['peak CUDA MiB'] if cuda else []) + ['note']
    body = []
    for row in measured:
        t = row['train']
        size = 'x'.join(map(str, t.get('train_size', []))) or 'n/a'
        note = f'same as `{row["train_same_as"]}`' if row.get('train_same_as') else ''
        if t.get('train_per_s') is None:
            cells = [na(t, 'not measured')] * 2 + [
                f'{t["train_peak_rss_mib"]:.0f}' if t.get('train_peak_rss_mib') else na(
                    t, 'not measured')
            ]
        else:
            cells = [
                f'{t["train_step_s"]:.2f} ({t["train_steps"]})',
                f'{t["train_per_s"]:.2f}', f'{t["train_peak_rss_mib"]:.0f}'
            ]
        if cuda:
            cells.append(f'{t["train_peak_cuda_mib"]:.0f}' if t.
                         get('train_peak_cuda_mib') is not None else 'n/a')
        body.append([f'`{row["name"]}`', f'{t.get("train_batch", "?")} x {size}'] +
                    cells + [note])
    return markdown_table(header, body)


def markdown(rows: List[dict], meta: dict) -> str:
    load = meta['load_average']
    others = max(load['before'], load['max_during'] - meta['threads'])
    busy = others > 0.5 * meta['cpus']
    lines = [
        '# Model tables', '',
        f'Made with `{meta["command"]}` on {meta["date"]}: {meta["machine"]}, '
        f'{meta["cpus"]} CPUs, {meta["threads"]} threads, PyTorch {meta["torch"]}, '
        f'onnxruntime {meta["onnxruntime"]}. Random weights and inputs, batch 1, eval '
        'mode; latency = median of the listed number of runs after '
        f'{meta["warmup"]} warm-up runs; FLOPs: one multiply-add = one FLOP, '
        'element-wise operations not counted; 3-D inputs are one sliding-window patch.',
        '', f'Load average (1 min): {load["before"]} before the run, up to '
        f'{load["max_during"]} during it (this tool adds about {meta["threads"]}).' +
        (' **Other jobs were running: the timings are inflated and only roughly '
         'comparable.**' if busy else ''), ''
    ]
    families = sorted({r['family']
                       for r in rows},
                      key=lambda f: (FAMILY_ORDER.index(f)
                                     if f in FAMILY_ORDER else len(FAMILY_ORDER), f))
    for family in families:
        group = [r for r in rows if r['family'] == family]
        if family == 'mcanet':
            group.sort(key=mcanet_order)
        elif family == 'dca':
            group.sort(key=dca_order)
        lines += [
            f'## {FAMILY_TITLES.get(family, family)}', '',
            markdown_table(INFER_HEADER, [infer_row(r) for r in group]), ''
        ]
        if family == 'mcanet':
            text = comparison(
                group, 'segnext', 'mcanet',
                'SegNeXt (LightHamHead) → MCANet (MCAHead), same '
                'MSCAN-T backbone:')
            lines += [text, ''] if text else []
        if family == 'dca':
            text = comparison(group, 'unet', 'dca', 'U-Net → U-Net + DCA:')
            lines += [text, ''] if text else []
        train = train_rows(group)
        if train:
            lines += [
                'Training (full steps at the config\'s batch and crop, random '
                f'data, {meta.get("train_device", "cpu")}):', '', train, ''
            ]
    return '\n'.join(lines).rstrip() + '\n'


def machine_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except FileNotFoundError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        (worker_infer if args.worker == 'infer' else worker_train)(args)
        return {}
    import torch

    from mmseg_fusion.utils import UsageError
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise UsageError('--device cuda: CUDA is not available')
    configs = find_configs(args.configs)
    if not configs:
        raise UsageError('no config files found')
    load_before = load_average()
    max_load = load_before
    rows, measured_infer, measured_train = [], {}, {}
    for config in configs:
        row = dict(
            config=osp.relpath(config, REPO) if config.startswith(REPO) else config,
            name=name_of(config),
            family=family_of(config))
        try:
            keys = signatures(config)
        except Exception as error:  # a config that cannot even be parsed
            row.update(
                status='error',
                reason=f'config: {type(error).__name__}: '
                f'{str(error).splitlines()[0][:200]}')
            rows.append(row)
            continue
        if keys['infer'] in measured_infer:
            first = measured_infer[keys['infer']]
            row.update({
                k: v
                for k, v in first.items()
                if k not in ('config', 'name', 'family', 'train', 'train_same_as',
                             'same_as')
            })
            row['same_as'] = first['name']
        else:
            print(
                f'[model_table] {row["name"]}: inference ...',
                file=sys.stderr,
                flush=True)
            row.update(measure('infer', config, args))
            measured_infer[keys['infer']] = row
        if args.train:
            if keys['train'] in measured_train:
                row['train'] = measured_train[keys['train']]['train']
                row['train_same_as'] = measured_train[keys['train']]['name']
            else:
                print(
                    f'[model_table] {row["name"]}: training ...',
                    file=sys.stderr,
                    flush=True)
                row['train'] = measure('train', config, args)
                measured_train[keys['train']] = row
        for part in (row, row.get('train') or {}):
            max_load = max([max_load] + [
                part[k] for k in ('load_start', 'load_end')
                if isinstance(part.get(k), (int, float))
            ])
        rows.append(row)
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = 'not installed'
    meta = dict(
        command='python tools/analysis_tools/model_table.py ' +
        ' '.join(argv if argv is not None else sys.argv[1:]),
        date=datetime.date.today().isoformat(),
        machine=machine_name(),
        cpus=os.cpu_count(),
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        torch=torch.__version__,
        onnxruntime=ort_version,
        train_device=args.device if args.train else None,
        load_average=dict(before=load_before, max_during=max(max_load, load_average())))
    text = markdown(rows, meta)
    print(text, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    result = dict(meta=meta, rows=rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=str)
    return result


if __name__ == '__main__':
    from mmseg_fusion.utils import run_cli
    run_cli(main)
