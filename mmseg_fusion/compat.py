"""Make mmsegmentation 1.2.2 run on the current stack.

Importing :mod:`mmseg_fusion` calls :func:`apply_compat_fixes`, which does two things
and nothing else:

* **mmcv-lite.** mmseg 1.2.2 imports ``mmcv.ops`` unconditionally (``utils/
  mask_classification.py``, ``models/utils/point_sample.py``,
  ``models/decode_heads/san_head.py``, ``models/losses/focal_loss.py``), and mmcv-lite's
  ``mmcv.ops`` fails at import because it has no compiled ``mmcv._ext``. When, and only
  when, that extension is missing, ``sys.modules['mmcv.ops']`` becomes a stand-in
  package that offers mmcv's own pure-PyTorch ops (``point_sample`` and its helpers), a
  pure-PyTorch ``sigmoid_focal_loss``, and, for every other name, a placeholder that
  raises :class:`CompiledOpMissingError` when it is used. A compiled mmcv is never
  touched.
* **torch >= 2.6 checkpoints.** ``torch.load`` defaults to ``weights_only=True``,
  which refuses the checkpoints mmengine writes (the message hub holds
  ``HistoryBuffer`` objects and numpy arrays and scalars). The exact types those
  checkpoints hold are added to torch's weights-only allow-list; weights-only loading
  itself stays on.

:func:`configure_cpu_distributed` is the third fix, applied by ``tools/train.py`` and
``tools/test.py``: without CUDA, a distributed run is configured through mmengine's
own settings (gloo backend, DDP wrapper without devices, a registered runner) instead
of failing on nccl and ``torch.cuda.set_device``.
"""
import importlib
import importlib.util
import os
import pickle
import sys
import types
import warnings
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = [
    'CompiledOpMissingError', 'apply_compat_fixes', 'mmcv_ops_are_compiled',
    'sigmoid_focal_loss', 'allow_mmengine_checkpoint_types', 'configure_cpu_distributed'
]

COMPILED_MMCV_HINT = (
    'Install the compiled mmcv 2.1.0 instead of mmcv-lite (README, section '
    '"Compiled mmcv"): pip uninstall -y mmcv-lite && pip install "setuptools<70" && '
    'MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0')


class CompiledOpMissingError(RuntimeError):
    """Raised when a model uses an mmcv op that only the compiled mmcv provides."""


def _require_mmcv() -> None:
    if importlib.util.find_spec('mmcv') is None:
        raise ImportError(
            'mmseg-fusion needs mmcv 2.1.0, which is not installed. Install it with '
            '`pip install mmcv-lite==2.1.0` (pure Python, CPU and GPU, no compiled '
            'ops) or build the compiled mmcv: ' + COMPILED_MMCV_HINT)


def mmcv_ops_are_compiled() -> bool:
    """Whether the installed mmcv carries its compiled extension ``mmcv._ext``."""
    return importlib.util.find_spec('mmcv._ext') is not None


def sigmoid_focal_loss(input: torch.Tensor,
                       target: torch.Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       weight: Optional[torch.Tensor] = None,
                       reduction: str = 'mean') -> torch.Tensor:
    """Pure-PyTorch twin of ``mmcv.ops.sigmoid_focal_loss`` (same arguments, values).

    Args:
        input (Tensor): logits, shape (N, C).
        target (Tensor): class indices, shape (N,), int64; an index outside [0, C)
            means "no positive class" for that row (mmcv's background convention).
        gamma (float): focusing exponent.
        alpha (float): weight of the positive term; negatives get ``1 - alpha``.
        weight (Tensor, optional): per-class weights, shape (C,), indexed by each
            row's target as mmcv does.
        reduction (str): 'none' (N, C), 'mean' (sum / N, as mmcv) or 'sum'.

    Returns:
        Tensor: the loss, reduced as asked.
    """
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(
            f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    num_classes = input.size(1)
    classes = torch.arange(num_classes, device=input.device)
    positive = (target.unsqueeze(1) == classes).to(input.dtype)
    prob = input.sigmoid()
    log_p = F.logsigmoid(input)
    log_not_p = F.logsigmoid(-input)
    loss = -(
        alpha * (1 - prob).pow(gamma) * log_p * positive +
        (1 - alpha) * prob.pow(gamma) * log_not_p * (1 - positive))
    if weight is not None:
        in_range = (target >= 0) & (target < num_classes)
        row_weight = torch.where(in_range, weight[target.clamp(0, num_classes - 1)],
                                 torch.zeros_like(target, dtype=input.dtype))
        loss = loss * row_weight.unsqueeze(1)
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    return loss


class _MissingCompiledOp:
    """Placeholder for an op of compiled mmcv; using it raises with install advice."""

    op_name = ''

    def __new__(cls, *args, **kwargs):
        raise CompiledOpMissingError(
            f'mmcv.ops.{cls.op_name} needs the compiled mmcv, but the installed mmcv '
            f'has no compiled ops (mmcv-lite). {COMPILED_MMCV_HINT}')


class _LiteOpsPackage(types.ModuleType):
    """Stand-in for ``mmcv.ops`` when mmcv has no compiled extension."""

    is_mmseg_fusion_fallback = True

    def __init__(self, real_path: list):
        super().__init__('mmcv.ops')
        self.__path__ = real_path
        self.__package__ = 'mmcv.ops'
        self._placeholders = {}

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        if name not in self._placeholders:
            self._placeholders[name] = type(name, (_MissingCompiledOp, ),
                                            {'op_name': name})
        return self._placeholders[name]


def _silence_lite_warnings() -> None:
    """Without compiled ops, hide mmcv's import-time warning that
    ``MultiScaleDeformableAttention`` cannot be imported (``mmcv/cnn/bricks/
    transformer.py``, on every command): the stand-in ``mmcv.ops`` already raises
    :class:`CompiledOpMissingError` with install advice if a model uses the op."""
    warnings.filterwarnings(
        'ignore',
        message=r'Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning,
        module=r'mmcv\.cnn\.bricks\.transformer')


def _install_mmcv_ops_fallback() -> None:
    existing = sys.modules.get('mmcv.ops')
    if existing is not None or mmcv_ops_are_compiled():
        return
    _silence_lite_warnings()
    import mmcv
    package = _LiteOpsPackage([os.path.join(os.path.dirname(mmcv.__file__), 'ops')])
    sys.modules['mmcv.ops'] = package
    # mmcv's own point_sample module is pure PyTorch: load it through the stand-in.
    point_sample_module = importlib.import_module('mmcv.ops.point_sample')
    package.point_sample = point_sample_module.point_sample
    package.bilinear_grid_sample = point_sample_module.bilinear_grid_sample
    package.rel_roi_point_to_rel_img_point = (
        point_sample_module.rel_roi_point_to_rel_img_point)
    package.sigmoid_focal_loss = sigmoid_focal_loss
    mmcv.ops = package


HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner, name: str):
    """Resolve ``getattr(HistoryBuffer, name)`` for HistoryBuffer's statistics only.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (``min``, ``max``,
    ``current``, ``mean``, ...) as ``getattr(HistoryBuffer, 'min')``. This function
    stands in for ``builtins.getattr`` in torch's weights-only unpickler and refuses any
    other lookup, so allowing mmengine checkpoints does not allow ``getattr`` at large.
    """
    from mmengine.logging import HistoryBuffer
    statistics = HISTORY_BUFFER_STATISTICS.union(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in statistics:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights-only load refused getattr({owner!r}, {name!r}): mmseg-fusion only '
        'allows the HistoryBuffer statistics that mmengine checkpoints hold')


def allow_mmengine_checkpoint_types() -> None:
    """Add what mmengine checkpoints hold to torch's weights-only allow-list.

    A checkpoint saved by mmengine's Runner holds, besides tensors and plain containers,
    ``HistoryBuffer`` objects and their statistics methods (message hub), numpy arrays
    (their reconstruct function, ``ndarray`` and dtype classes) and numpy scalars.
    Exactly these are allowed; weights-only loading stays on for everything else.
    """
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 has no weights-only default to satisfy
    import numpy as np
    from mmengine.logging import HistoryBuffer
    numpy_core = np._core if hasattr(np, '_core') else np.core
    dtype_classes = {type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUSO'}
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        (_history_buffer_statistic, 'builtins.getattr'),
        numpy_core.multiarray._reconstruct,
        numpy_core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ])


def configure_cpu_distributed(cfg, launcher: str) -> None:
    """Point a distributed run without CUDA at mmengine's CPU-capable settings.

    Only mmengine's own configuration points are set, in place, and only when
    ``launcher`` is not 'none' and CUDA is absent (with CUDA nothing changes):

    * ``env_cfg.dist_cfg.backend = 'gloo'`` (the configs ask for nccl, GPU only);
    * ``model_wrapper_cfg``: mmengine's default wrapper (``MMDistributedDataParallel``,
      ``broadcast_buffers=False``, the config's ``find_unused_parameters``), or the
      config's own, with ``device_ids=None``: mmengine passes ``[LOCAL_RANK]``, which
      DDP refuses for a module on the CPU;
    * ``runner_type = 'CPUDistributedRunner'`` (unless the config names a runner),
      which lets mmengine start the group without ``torch.cuda.set_device`` and ends
      it at exit (:class:`mmseg_fusion.engine.CPUDistributedRunner`).

    SyncBN (``sync_bn``, or ``SyncBN`` layers) is left to the runner: torch's
    ``SyncBatchNorm`` refuses CPU tensors, and ``CPUDistributedRunner`` replaces it
    by :class:`mmseg_fusion.engine.CPUSyncBatchNorm`, which synchronises over gloo.

    Args:
        cfg (mmengine.Config): the run's config, changed in place.
        launcher (str): the ``--launcher`` flag: 'none', 'pytorch', 'slurm' or 'mpi'.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg
    cfg.setdefault('runner_type', 'CPUDistributedRunner')


def apply_compat_fixes() -> None:
    """Apply the import-time fixes; safe to call more than once."""
    _require_mmcv()
    _install_mmcv_ops_fallback()
    allow_mmengine_checkpoint_types()
