"""Run the deterministic prefix of a 3-D pipeline once per case and reuse its result:
the preprocessing cache of nnU-Net, inside an mmseg pipeline."""
import hashlib
import json
import logging
import os
import os.path as osp
import re
import uuid
from typing import Callable, List, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS
from monai.transforms import Randomizable

CACHE_FORMAT = 1
SOURCE_KEYS = ('img_path', 'seg_map_path')
_ABSENT = object()


def _stable(value):
    """A JSON-able, run-independent description of a transform config value."""
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, type) or callable(value) and hasattr(value, '__qualname__'):
        name = f'{getattr(value, "__module__", "")}.{value.__qualname__}'
        if '<lambda>' in name or '<locals>' in name:
            raise ValueError(f'CachedPipeline cannot key its cache on {name}: give '
                             'the inner transforms a named, module-level function')
        return name
    text = repr(value)
    if re.search(r' at 0x[0-9a-fA-F]+', text):
        raise ValueError(f'CachedPipeline cannot key its cache on {text}: its repr '
                         'changes from run to run; give the inner transforms as config '
                         'dicts')
    return text


def _is_random(transform) -> bool:
    """A MONAI Randomizable (directly or behind the MONAI bridge), an mmcv transform
    with ``cache_randomness`` methods, or one named Random*/Rand*."""
    inner = getattr(transform, 'monai_transform', transform)
    if isinstance(inner, Randomizable) or isinstance(transform, Randomizable):
        return True
    if getattr(type(transform), '_methods_with_randomness', None):
        return True
    name = type(transform).__name__
    return bool(re.match(r'Rand(om)?[A-Z]', name))


def _encode(key: str, value):
    """A results value -> JSON (arrays of 3 or more dimensions go to npy instead)."""
    if isinstance(value, np.ndarray):
        return {'__ndarray__': value.tolist(), 'dtype': str(value.dtype)}
    if isinstance(value, tuple):
        return {'__tuple__': [_encode(key, v) for v in value]}
    if isinstance(value, list):
        return [_encode(key, v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f'CachedPipeline cannot store results[{key!r}]: a dict '
                             'with non-str keys')
        return {'__dict__': {k: _encode(key, v) for k, v in value.items()}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise ValueError(f'CachedPipeline cannot store results[{key!r}] of type '
                     f'{type(value).__name__}: expected numpy arrays and JSON values')


def _decode(value):
    if isinstance(value, dict):
        if '__ndarray__' in value:
            return np.asarray(value['__ndarray__'], dtype=value['dtype'])
        if '__tuple__' in value:
            return tuple(_decode(v) for v in value['__tuple__'])
        return {k: _decode(v) for k, v in value['__dict__'].items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _atomic_write(path: str, write: Callable) -> None:
    """Write to a unique temporary name beside ``path``, then rename it into place:
    readers (other dataloader workers) see the old file or the whole new one, and a
    killed run leaves at most a stray temporary file, never a half file."""
    tmp = osp.join(
        osp.dirname(path),
        f'.{osp.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(tmp, 'wb') as fileobj:
            write(fileobj)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


@TRANSFORMS.register_module()
class CachedPipeline(BaseTransform):
    """Run deterministic transforms once per case, store the result on disk and load it
    afterwards: the preprocessing cache of nnU-Net ("nnU-Net: a self-configuring
    method for deep learning-based biomedical image segmentation", 2021), which
    resamples and normalises every case once instead of at every iteration.

    Resampling a CT volume to a target spacing takes about a second of CPU per case;
    a training iteration crops a small patch from it. Wrapping the loading and the
    deterministic transforms (orientation, spacing, intensity window) in a
    ``CachedPipeline`` makes later epochs read the preprocessed arrays from
    ``cache_dir`` instead::

        train_pipeline = [
            dict(type='CachedPipeline', cache_dir='data/btcv/cache', transforms=[
                dict(type='LoadVolumeFromFile'),
                dict(type='MONAITransform', transform='Orientationd', axcodes='RAS'),
                dict(type='MONAITransform', transform='Spacingd',
                     pixdim=(1.5, 1.5, 2.0), mode=('bilinear', 'nearest')),
            ]),
            dict(type='MONAITransform', transform='RandCropByPosNegLabeld', ...),
            ...
        ]

    A cache entry is ``{cache_dir}/{case_id}_{key}.json`` (metainfo, written last)
    plus one ``{case_id}_{key}.{results key}.npy`` per array of 3 or more dimensions
    (``img``, ``gt_seg_map``). ``key`` is a short hash of the inner transforms'
    config, the cache format, and the path, size and modification time of the source
    files (``img_path``, ``seg_map_path``): changing a transform's argument or
    replacing a file makes a new entry; stale entries stay on disk until removed.
    Every file is written under a temporary name and renamed into place, so
    concurrent dataloader workers and a killed run never leave a half-written entry;
    an unreadable entry is recomputed. Only the keys the inner transforms added or
    replaced are stored; a cached load restores them over the incoming results.

    Only deterministic transforms may go inside: a random one (a MONAI
    ``Randomizable``, an mmcv transform with ``cache_randomness`` methods, or a
    transform class named ``Rand*``/``Random*``) is refused when the pipeline is built,
    because its first draw would be frozen into the cache.

    Required keys: ``case_id`` and those of the inner transforms.
    Modified keys: those of the inner transforms.

    Args:
        transforms (Sequence[dict | callable]): the inner transforms (config dicts
            built from mmseg's TRANSFORMS, or transform objects with a deterministic
            ``repr``).
        cache_dir (str): folder of the cache entries (created when missing).
    """

    def __init__(self, transforms: Sequence[Union[dict, Callable]],
                 cache_dir: str) -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ValueError(f'transforms must be a non-empty list of transforms, got '
                             f'{transforms!r}')
        if not isinstance(cache_dir, (str, os.PathLike)) or not str(cache_dir):
            raise ValueError(f'cache_dir must be a folder path, got {cache_dir!r}')
        self.transforms: List[Callable] = []
        for index, cfg in enumerate(transforms):
            transform = TRANSFORMS.build(cfg) if isinstance(cfg, dict) else cfg
            if not callable(transform):
                raise ValueError(f'transforms[{index}] must be a config dict or a '
                                 f'callable, got {cfg!r}')
            if _is_random(transform):
                raise ValueError(
                    f'transforms[{index}] ({transform!r}) is random: CachedPipeline '
                    'would store its first draw and replay it every epoch; put it '
                    'after the CachedPipeline')
            self.transforms.append(transform)
        description = [_stable(cfg) for cfg in transforms]
        text = json.dumps([CACHE_FORMAT, description], sort_keys=True)
        self.config_hash = hashlib.sha1(text.encode()).hexdigest()
        self.cache_dir = str(cache_dir)
        os.makedirs(self.cache_dir, exist_ok=True)

    def entry_stem(self, results: dict) -> str:
        """``{cache_dir}/{case_id}_{key}``: the common prefix of a case's files."""
        if 'case_id' not in results:
            raise KeyError('CachedPipeline needs results["case_id"] (set by the 3-D '
                           'datasets) to name its cache entries')
        sources = []
        for key in SOURCE_KEYS:
            path = results.get(key)
            if path is not None:
                stat = os.stat(path)
                sources.append(
                    [key, osp.abspath(str(path)), stat.st_size, stat.st_mtime_ns])
        text = json.dumps([self.config_hash, sources])
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        case_id = re.sub(r'[^A-Za-z0-9._-]', '_', str(results['case_id']))
        return osp.join(self.cache_dir, f'{case_id}_{digest}')

    def transform(self, results: dict) -> dict:
        stem = self.entry_stem(results)
        if osp.isfile(stem + '.json'):
            try:
                return self._load(stem, results)
            except Exception as error:  # a damaged or removed entry: recompute it
                print_log(
                    f'cache entry {stem}.json is unreadable ({error}); '
                    'recomputing it',
                    logger='current',
                    level=logging.WARNING)
        before = dict(results)  # references, to find the keys the transforms set
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        changed = [k for k, v in results.items() if before.get(k, _ABSENT) is not v]
        self._save(stem, results, changed)
        return results

    def _save(self, stem: str, results: dict, keys: List[str]) -> None:
        """Arrays of 3+ dimensions to npy, the other keys to the json (last)."""
        arrays, values = {}, {}
        for key in keys:
            value = results[key]
            if isinstance(value, np.ndarray) and value.ndim >= 3:
                name = f'{osp.basename(stem)}.{key}.npy'
                array = np.ascontiguousarray(value)
                _atomic_write(
                    osp.join(self.cache_dir, name),
                    lambda f, a=array: np.save(f, a, allow_pickle=False))
                arrays[key] = dict(
                    file=name, shape=list(array.shape), dtype=str(array.dtype))
            else:
                values[key] = _encode(key, value)
        meta = dict(
            format=CACHE_FORMAT,
            case_id=str(results['case_id']),
            arrays=arrays,
            values=values)
        text = json.dumps(meta, indent=1).encode()
        _atomic_write(stem + '.json', lambda f: f.write(text))

    def _load(self, stem: str, results: dict) -> dict:
        with open(stem + '.json', encoding='utf-8') as fileobj:
            meta = json.load(fileobj)
        if meta.get('format') != CACHE_FORMAT:
            raise ValueError(f'format {meta.get("format")}, expected {CACHE_FORMAT}')
        loaded = {}
        for key, info in meta['arrays'].items():
            array = np.load(osp.join(self.cache_dir, info['file']), allow_pickle=False)
            if list(array.shape) != info['shape'] or str(array.dtype) != info['dtype']:
                raise ValueError(f'{info["file"]} holds {array.shape} {array.dtype}, '
                                 f'expected {info["shape"]} {info["dtype"]}')
            loaded[key] = array
        for key, value in meta['values'].items():
            loaded[key] = _decode(value)
        results.update(loaded)
        return results

    def __repr__(self) -> str:
        inner = ', '.join(repr(t) for t in self.transforms)
        return (f'{self.__class__.__name__}(transforms=[{inner}], '
                f'cache_dir={self.cache_dir!r})')
