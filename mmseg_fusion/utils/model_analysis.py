"""Helpers for measuring models: pretrained weights out of a config, FLOP counts, the
inference model and random input batch of a config (shared by
``tools/analysis_tools/get_flops.py`` and ``benchmark.py``)."""
import logging
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def drop_pretrained(cfg) -> None:
    """Remove pretrained weights from a (model) config, in place: every ``pretrained``
    path and every ``init_cfg`` of type 'Pretrained' (alone or in a list) become None,
    so building the model needs no download."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'pretrained' and isinstance(value, str):
                cfg[key] = None
            elif key == 'init_cfg' and _is_pretrained(value):
                cfg[key] = None
            elif key == 'init_cfg' and isinstance(value, (list, tuple)):
                cfg[key] = [v for v in value if not _is_pretrained(v)] or None
            else:
                drop_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_pretrained(value)


def _is_pretrained(init_cfg) -> bool:
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'


def attention_flop_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention``, which FlopAnalyzer lacks:
    q (.., L, d) @ k^T (.., d, S) and attn (.., L, S) @ v (.., S, d_v), one
    multiply-add counted as one FLOP as FlopAnalyzer does."""
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    batch = 1
    for size in q_shape[:-2]:
        batch *= size
    queries, dim = q_shape[-2:]
    keys = k_shape[-2]
    return batch * queries * keys * (dim + v_shape[-1])


def count_flops(model: torch.nn.Module, inputs: Union[torch.Tensor,
                                                      Sequence]) -> Optional[int]:
    """mmengine's FLOP count of ``model(*inputs)`` (fused attention included), or None
    (with the reason logged as a warning) if the model cannot be traced."""
    inputs = inputs if isinstance(
        inputs, tuple) else (tuple(inputs) if isinstance(inputs, list) else inputs)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter('ignore')
            analyzer = FlopAnalyzer(model, inputs)
            analyzer.set_op_handle('aten::scaled_dot_product_attention',
                                   attention_flop_handle)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            return analyzer.total()
    except Exception as error:  # any tracing failure means the count is n/a
        print_log(
            f'FLOPs of {type(model).__name__} not counted: '
            f'{type(error).__name__}: {str(error)[:300]}',
            logger='current',
            level=logging.WARNING)
        return None


def input_shape(cfg, shape: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """(H, W): ``shape`` if given, else the config's crop size, else 512 x 512."""
    if shape:
        return (shape[0], shape[-1])
    size = cfg.get('crop_size') or cfg.model.get('data_preprocessor', {}).get('size')
    return tuple(size) if size else (512, 512)


def build_inference_model(cfg) -> torch.nn.Module:
    """The config's model on CPU in eval mode, without SyncBN or auxiliary head."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    return revert_sync_batchnorm(model).eval()


def image_channels(cfg) -> int:
    """Channels of the raw image: the length of the data preprocessor's ``mean``
    (3 when it has none)."""
    mean = cfg.model.get('data_preprocessor', {}).get('mean')
    return len(mean) if mean else 3


def random_batch(model,
                 shape: Tuple[int, int],
                 channels: int = 3,
                 batch_size: int = 1) -> dict:
    """Random uint8 images of ``shape`` through the model's data preprocessor."""
    meta = dict(ori_shape=shape, img_shape=shape, pad_shape=shape)
    data = dict(
        inputs=[
            torch.randint(0, 256, (channels, *shape), dtype=torch.uint8)
            for _ in range(batch_size)
        ],
        data_samples=[SegDataSample(metainfo=meta) for _ in range(batch_size)])
    return model.data_preprocessor(data, False)
