"""ONNX export of PyTorch modules for deployment: export with a dynamic batch axis,
exact adaptive pooling at a fixed spatial size, onnxruntime sessions, and an error that
names the block (module path and type) and the operation the exporter cannot convert.

``onnx`` and ``onnxruntime`` (``requirements/optional.txt``) are imported only when
used; the ``'dynamo'`` exporter also needs ``onnxscript``.
"""
import contextlib
import inspect
import io
import math
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from .cli import ToolError

__all__ = [
    'EXPORTERS', 'OnnxExportError', 'ExportFriendlyOps', 'export_onnx',
    'locate_export_failure', 'module_for_node', 'onnxruntime_failure',
    'onnxruntime_session', 'random_onnx_nodes'
]

EXPORTERS = ('torchscript', 'dynamo')

# ONNX operators whose output is drawn at random on every run.
RANDOM_OPS = ('RandomUniform', 'RandomUniformLike', 'RandomNormal', 'RandomNormalLike',
              'Multinomial', 'Bernoulli', 'Dropout')


class OnnxExportError(ToolError, RuntimeError):
    """A model the ONNX exporter cannot convert.

    Attributes:
        module_path (str | None): the block's path in the exported module ('' for the
            exported module itself), None when it could not be located.
        module_type (str | None): the block's class (``module.Class``).
        operation (str | None): the operation the exporter failed on, as its message
            names it (e.g. ``aten::cummax``).
    """

    def __init__(self,
                 message: str,
                 module_path: Optional[str] = None,
                 module_type: Optional[str] = None,
                 operation: Optional[str] = None) -> None:
        super().__init__(message)
        self.module_path = module_path
        self.module_type = module_type
        self.operation = operation


def _import(name: str):
    try:
        return __import__(name)
    except ImportError as error:
        raise ToolError(f'{name} is not installed: pip install {name} (or '
                        "pip install -e '.[optional]')") from error


@contextlib.contextmanager
def quiet_output():
    """Silence stdout and stderr at the file-descriptor level (the TorchScript
    exporter prints whole graphs from C++ when it fails) and Python warnings."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _pool_fn(kind: str, dims: int):
    return getattr(F, f'{kind}_pool{dims}d')


def _adaptive_pool(kind: str, x: torch.Tensor, output_size) -> torch.Tensor:
    """Adaptive ``kind`` ('avg' or 'max') pooling of the last ``len(output_size)``
    axes with fixed, static sizes: each axis whose size divides the input's is pooled
    with kernel = stride = input / output, any other axis by slicing PyTorch's cells
    ``[floor(i * in / out), ceil((i + 1) * in / out))`` and reducing each. Equal to
    PyTorch's adaptive pooling (both reductions are separable over the cells)."""
    dims = len(output_size)
    sizes = [int(s) for s in x.shape[-dims:]]
    outs = [sizes[i] if o is None else int(o) for i, o in enumerate(output_size)]
    for axis, (size, out) in enumerate(zip(sizes, outs)):
        dim = x.dim() - dims + axis
        if size == out:
            continue
        if size % out == 0:
            kernel = [1] * dims
            kernel[axis] = size // out
            x = _pool_fn(kind, dims)(x, kernel, kernel)
            continue
        cells = []
        for i in range(out):
            start, stop = (i * size) // out, math.ceil((i + 1) * size / out)
            cell = x.narrow(dim, start, stop - start)
            cells.append(
                cell.mean(dim, keepdim=True) if kind ==
                'avg' else cell.amax(dim, keepdim=True))
        x = torch.cat(cells, dim=dim)
    return x


_ADAPTIVE = {
    F.adaptive_avg_pool1d: ('avg', 1),
    F.adaptive_avg_pool2d: ('avg', 2),
    F.adaptive_avg_pool3d: ('avg', 3),
    F.adaptive_max_pool1d: ('max', 1),
    F.adaptive_max_pool2d: ('max', 2),
    F.adaptive_max_pool3d: ('max', 3),
    torch._C._nn.adaptive_avg_pool2d: ('avg', 2),
    torch._C._nn.adaptive_avg_pool3d: ('avg', 3),
    torch.adaptive_avg_pool1d: ('avg', 1)
}

_MOVEDIM = (torch.movedim, torch.moveaxis, torch.Tensor.movedim, torch.Tensor.moveaxis)


def _non_negative(dims, rank: int):
    if isinstance(dims, int):
        return dims % rank
    return type(dims)(d % rank for d in dims)


class ExportFriendlyOps(TorchFunctionMode):
    """Within this mode two operations run in forms every ONNX exporter converts
    correctly, with the same values:

    - adaptive average and max pooling (``F.adaptive_*_pool{1,2,3}d`` and
      ``nn.Adaptive*Pool*``) as fixed-size pooling or slices and reductions
      (:func:`_adaptive_pool`), at the spatial size of the traced input. ONNX has no
      adaptive pooling; the TorchScript exporter refuses output sizes that do not
      divide the input, and any computed output size when the batch axis is dynamic.
    - ``movedim``/``moveaxis`` with negative axes made non-negative: the TorchScript
      exporter writes negative axes into Transpose's ``perm``, which onnxruntime
      rejects (D-Net's channels-first LayerNorm).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _MOVEDIM and len(args) == 3 and not kwargs:
            x, source, destination = args
            return func(x, _non_negative(source, x.dim()),
                        _non_negative(destination, x.dim()))
        spec = _ADAPTIVE.get(func)
        if spec is not None and not kwargs.get('return_indices', False):
            kind, dims = spec
            x = args[0]
            output_size = args[1] if len(args) > 1 else kwargs.get('output_size')
            if isinstance(output_size, (int, torch.SymInt)) or output_size is None:
                output_size = (output_size, ) * dims
            if (isinstance(x, torch.Tensor) and len(output_size) == dims
                    and len(args) <= 3):
                return _adaptive_pool(kind, x, tuple(output_size))
        return func(*args, **kwargs)


class _Call(nn.Module):
    """``module(*args, **kwargs)`` as a module of the tensors among its arguments only
    (other values fixed), returning the tensors of its output as a tuple."""

    def __init__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.module = module
        self.leaves, self.spec = tree_flatten((args, kwargs))
        self.positions = [
            i for i, leaf in enumerate(self.leaves) if isinstance(leaf, torch.Tensor)
        ]

    def tensors(self) -> Tuple[torch.Tensor, ...]:
        return tuple(self.leaves[i] for i in self.positions)

    def forward(self, *tensors):
        leaves = list(self.leaves)
        for position, tensor in zip(self.positions, tensors):
            leaves[position] = tensor
        args, kwargs = tree_unflatten(leaves, self.spec)
        outputs, _ = tree_flatten(self.module(*args, **kwargs))
        return tuple(t for t in outputs if isinstance(t, torch.Tensor))


def _export_kwargs(exporter: str) -> dict:
    """``dynamo=`` where ``torch.onnx.export`` has it (torch >= 2.5)."""
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        return dict(dynamo=exporter == 'dynamo')
    if exporter == 'dynamo':
        raise ToolError(f'the dynamo ONNX exporter needs torch >= 2.5, this is '
                        f'{torch.__version__}')
    return {}


def _export(module: nn.Module,
            inputs: Tuple[torch.Tensor, ...],
            f,
            opset: int,
            dynamic_batch: bool,
            exporter: str,
            input_names: Optional[Sequence[str]] = None,
            output_names: Optional[Sequence[str]] = None) -> None:
    """One call of ``torch.onnx.export`` (quiet, exact adaptive pooling, eval mode);
    the first axis of every input and output is dynamic with ``dynamic_batch``."""
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    input_names = list(input_names or [f'input{i}' for i in range(len(inputs))])
    kwargs = dict(
        opset_version=opset, input_names=input_names, **_export_kwargs(exporter))
    if output_names:
        kwargs['output_names'] = list(output_names)
    if dynamic_batch and exporter == 'dynamo':
        batch = torch.export.Dim('batch', min=1, max=1024)
        kwargs['dynamic_shapes'] = tuple({0: batch} for _ in inputs)
    elif dynamic_batch:
        axes = {name: {0: 'batch'} for name in input_names}
        axes.update({name: {0: 'batch'} for name in (output_names or [])})
        kwargs['dynamic_axes'] = axes
    if exporter == 'dynamo':
        _import('onnxscript')
        kwargs.update(verbose=False, report=False)
    with quiet_output(), torch.no_grad(), ExportFriendlyOps():
        if exporter != 'dynamo':
            torch.onnx.export(module, tuple(inputs), f, **kwargs)
            return
        program = torch.onnx.export(module, tuple(inputs), None, **kwargs)
        if dynamic_batch:
            _check_dynamic_batch(program.model_proto)
        if isinstance(f, (str, os.PathLike)):
            program.save(f, external_data=False)
        else:
            f.write(program.model_proto.SerializeToString())


def _check_dynamic_batch(proto) -> None:
    """Raise unless every graph input has a symbolic first axis (the dynamo exporter
    falls back to a fixed batch when the model specialises it)."""
    for graph_input in proto.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims and not dims[0].dim_param:
            raise OnnxExportError(
                f'the dynamo exporter fixed the batch axis of input {graph_input.name} '
                f'to {dims[0].dim_value}: the model specialises it (e.g. a shape check '
                'that converts the batch size to a Python int); export with a fixed '
                'batch (--no-dynamic-batch) or with the torchscript exporter')


def operation_name(error: BaseException) -> Optional[str]:
    """The operation an exporter's error message names, e.g. ``aten::cummax`` or
    ``adaptive_max_pool2d``; None if it names none."""
    text = str(error)
    for pattern in (r"operator '([\w:.]+)'", r'ONNX export of operator ([\w ]+?)[,.]',
                    r'\b(aten[.:]{1,2}[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?)'):
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return None


def _first_line(error: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _record_frontier_calls(root: nn.Module, inputs: tuple,
                           node: nn.Module) -> Dict[str, Tuple[nn.Module, tuple, dict]]:
    """The topmost submodules of ``node`` that are called as modules during
    ``root(*inputs)`` (a block run through another method, e.g. a decode head's
    ``predict``, is passed through to its called children), in call order, with
    the arguments of their first call: {path below node: (module, args, kwargs)}."""
    calls = {}
    running = []
    handles = []
    for name, module in node.named_modules():
        if not name:
            continue

        def enter(module, args, kwargs, name=name):
            if not running:
                calls.setdefault(name, (module, args, kwargs))
            running.append(name)

        def leave(module, args, output):
            running.pop()

        handles.append(module.register_forward_pre_hook(enter, with_kwargs=True))
        handles.append(module.register_forward_hook(leave))
    try:
        with quiet_output(), torch.no_grad(), ExportFriendlyOps():
            root(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def locate_export_failure(root: nn.Module,
                          inputs: Tuple[torch.Tensor, ...],
                          error: BaseException,
                          opset: int = 17,
                          dynamic_batch: bool = True,
                          exporter: str = 'torchscript',
                          relative_to: Optional[nn.Module] = None) -> OnnxExportError:
    """The deepest block of ``root`` that fails to export on its own, with the
    operation its exporter error names.

    Starting at ``root`` (whose export raised ``error``), each topmost submodule
    called during the forward pass is exported alone with the arguments it gets
    there; the first that fails is descended into, until no submodule of the current
    block fails (the failing operation is in that block's own forward code).

    Returns:
        OnnxExportError: naming the module path (relative to ``relative_to``, a
        submodule of ``root``; default ``root``), its type and the operation, with
        the exporter's message.
    """
    path, node = '', root
    while True:
        failed = None
        for name, (child, args, kwargs) in _record_frontier_calls(root, inputs,
                                                                  node).items():
            call = _Call(child, args, kwargs)
            tensors = call.tensors()
            if not tensors:
                continue
            try:
                with quiet_output(), torch.no_grad():
                    outputs = call(*tensors)
                if not outputs:
                    continue
                _export(call, tensors, io.BytesIO(), opset, dynamic_batch
                        and _same_batch(tensors), exporter)
            except Exception as child_error:  # any exporter failure
                failed = (name, child, child_error)
                break
        if failed is None:
            break
        name, node, error = failed
        path = f'{path}.{name}' if path else name
    module_type = f'{type(node).__module__}.{type(node).__qualname__}'
    operation = operation_name(error)
    path = _relative(path, root, relative_to)
    where = _describe(path, node)
    what = f'operation {operation}' if operation else 'an operation'
    message = (f'ONNX export failed ({exporter} exporter, opset {opset}): {where} '
               f'uses {what} that cannot be exported: {type(error).__name__}: '
               f'{_first_line(error)}')
    return OnnxExportError(message, path, module_type, operation)


def _same_batch(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every tensor has a first axis of one size (so it can be the batch)."""
    sizes = {t.shape[0] if t.dim() else None for t in tensors}
    return len(sizes) == 1 and None not in sizes


def export_onnx(module: nn.Module,
                inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
                f: Union[str, io.BytesIO],
                opset: int = 17,
                dynamic_batch: bool = True,
                exporter: str = 'torchscript',
                input_names: Optional[Sequence[str]] = None,
                output_names: Optional[Sequence[str]] = None,
                locate: bool = True,
                relative_to: Optional[nn.Module] = None) -> None:
    """Export ``module(*inputs)`` to ONNX at the inputs' shapes.

    Adaptive pooling runs as :class:`ExportFriendlyOps` (so the graph holds the
    input's spatial size, as any graph of such a block must); with ``dynamic_batch``
    the first axis of the inputs and outputs is dynamic.

    Args:
        module (nn.Module): in eval mode.
        inputs (Tensor | Sequence[Tensor]): example inputs.
        f (str | BytesIO): the output file (written by the exporter) or a buffer.
        opset (int): ONNX opset version. Default: 17.
        dynamic_batch (bool): a dynamic first axis. Default: True.
        exporter (str): 'torchscript' (``torch.onnx.export(dynamo=False)``) or
            'dynamo' (``torch.export`` based; needs onnxscript). Default:
            'torchscript'.
        input_names, output_names (Sequence[str], optional): graph names.
        locate (bool): on failure, find the failing block
            (:func:`locate_export_failure`). Default: True.
        relative_to (nn.Module, optional): name blocks by their path in this
            submodule of ``module`` (e.g. the segmentor inside a wrapper).

    Raises:
        OnnxExportError: the exporter failed; the message names the block (module
            path and type) and the operation.
    """
    inputs = (inputs, ) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    try:
        _export(module, inputs, f, opset, dynamic_batch, exporter, input_names,
                output_names)
    except ToolError:
        raise
    except Exception as error:  # every exporter failure is reported the same way
        if not locate:
            raise OnnxExportError(
                f'ONNX export failed ({exporter} exporter, opset {opset}): '
                f'{type(error).__name__}: {_first_line(error)}',
                operation=operation_name(error)) from error
        located = locate_export_failure(module, inputs, error, opset, dynamic_batch,
                                        exporter, relative_to)
        raise located from error


def module_for_node(root: nn.Module, node_name: str) -> Tuple[str, nn.Module]:
    """The module of ``root`` an ONNX node name such as
    ``/backbone/stages.0/stages.0.0/norm1/Transpose`` (the exporter's module scopes,
    then the op) was exported from: (path, module); ('', root) if none matches."""
    modules = dict(root.named_modules())
    scopes = [part for part in node_name.strip('/').split('/')[:-1] if part]
    best, best_matched = '', 0
    # The exporter may leave out outer scopes: start below any module, the root
    # first; the first start that places every scope wins, else the deepest match.
    for start in modules:
        path, matched = start, 0
        for scope in scopes:
            parts = path.split('.') if path else []
            # A scope is the module's name under some ancestor (containers repeat
            # the prefix: stages.0 then stages.0.0): the longest match below path.
            for keep in range(len(parts), -1, -1):
                candidate = '.'.join(parts[:keep] + [scope])
                if candidate in modules and candidate.startswith(path):
                    path, matched = candidate, matched + 1
                    break
            else:
                break
        if matched > best_matched:
            best, best_matched = path, matched
        if scopes and matched == len(scopes):
            break
    return best, modules[best]


def _relative(path: str, root: nn.Module, relative_to: Optional[nn.Module]) -> str:
    """``path`` (in ``root``) relative to its submodule ``relative_to``."""
    if relative_to is None or relative_to is root:
        return path
    for name, module in root.named_modules():
        if module is relative_to and name and (path == name
                                               or path.startswith(name + '.')):
            return path[len(name) + 1:]
    return path


def _describe(path: str, module: nn.Module) -> str:
    module_type = f'{type(module).__module__}.{type(module).__qualname__}'
    if not path:
        return f'the model itself ({type(module).__name__}, {module_type})'
    return f'block {path} ({type(module).__name__}, {module_type})'


def onnxruntime_failure(root: nn.Module,
                        error: BaseException,
                        stage: str,
                        relative_to: Optional[nn.Module] = None) -> OnnxExportError:
    """An onnxruntime error (at ``stage``: 'loading' or 'running' the graph exported
    from ``root``) as an :class:`OnnxExportError` naming the node's block (its path
    relative to ``relative_to``, default ``root``) and operation."""
    text = str(error)
    node = re.search(r"Node \(([^)]+)\)|[Nn]ame:\s*'([^']+)'", text)
    op = re.search(r'Op \((\w+)\)|running (\w+) node', text)
    operation = next((g for g in op.groups() if g), None) if op else None
    path, module_type, where = None, None, 'a node of the graph'
    if node:
        name = next(g for g in node.groups() if g)
        path, module = module_for_node(root, name)
        path = _relative(path, root, relative_to)
        module_type = f'{type(module).__module__}.{type(module).__qualname__}'
        where = f'{_describe(path, module)}, node {name},'
    what = f'operation {operation}' if operation else 'an operation'
    return OnnxExportError(
        f'the exported graph fails in onnxruntime when {stage} it: {where} has {what} '
        f'that onnxruntime rejects: {_first_line(error)}', path, module_type, operation)


def onnxruntime_session(model: Union[str, bytes], threads: Optional[int] = None):
    """An onnxruntime CPU session of an ONNX file (or its bytes) with ``threads``
    intra-op threads (None: onnxruntime's default) and one inter-op thread."""
    ort = _import('onnxruntime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])


def random_onnx_nodes(model: Union[str, bytes]) -> List[str]:
    """Names (with op type) of the graph's nodes that draw random numbers at every
    run (e.g. mmseg's Hamburger, whose NMF bases are random in eval mode too)."""
    onnx = _import('onnx')
    proto = (
        onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(
            model, load_external_data=False))
    nodes = []

    def visit(graph):
        for node in graph.node:
            if node.op_type in RANDOM_OPS:
                nodes.append(f'{node.name or "?"} ({node.op_type})')
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g)

    visit(proto.graph)
    return nodes


def as_numpy(tensors: Any) -> list:
    """The tensors of a (nested) output as float32/int numpy arrays."""
    leaves, _ = tree_flatten(tensors)
    return [t.detach().cpu().numpy() for t in leaves if isinstance(t, torch.Tensor)]
