"""Run any MONAI dictionary transform inside an mmseg pipeline."""
import difflib
import inspect
from typing import Sequence, Tuple, Union

import monai.transforms
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from .load_volume import spacing_of


def dictionary_transform_names() -> Tuple[str, ...]:
    """Names of the dictionary transforms ``monai.transforms`` exports."""
    return tuple(
        sorted(name for name, obj in vars(monai.transforms).items()
               if inspect.isclass(obj) and issubclass(obj, MapTransform)
               and obj is not MapTransform))


def find_dictionary_transform(name: str) -> type:
    """The class of ``monai.transforms.<name>``; ValueError with close names when it is
    missing or not a dictionary transform."""
    obj = getattr(monai.transforms, name, None)
    if inspect.isclass(obj) and issubclass(obj, MapTransform):
        return obj
    names = dictionary_transform_names()
    if inspect.isclass(obj) and f'{name}d' in names:
        raise ValueError(f'transform {name!r} is a MONAI array transform: use its '
                         f'dictionary version {name + "d"!r}')
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    if name.lower() in lower and lower[name.lower()] not in close:
        close.insert(0, lower[name.lower()])
    hint = f'; did you mean {", ".join(repr(c) for c in close)}?' if close else ''
    raise ValueError(f'transform {name!r} is not a dictionary transform of '
                     f'monai.transforms (MONAI {monai.__version__}){hint}')


def _key_arguments(kwargs: dict) -> Tuple[str, ...]:
    """Keys of the data dict named by other arguments (``label_key='gt_seg_map'``,
    ``source_key='img'``): the transform reads them too."""
    named = []
    for arg, value in kwargs.items():
        if arg.endswith('_key') and isinstance(value, str):
            named.append(value)
        elif arg.endswith('_keys') and isinstance(value, (list, tuple)):
            named.extend(v for v in value if isinstance(v, str))
    return tuple(named)


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = ', '.join(_short(v) for v in value)
        return f'({inner})' if isinstance(value, tuple) else f'[{inner}]'
    if callable(value):
        return getattr(value, '__qualname__', type(value).__name__)
    return repr(value)


@TRANSFORMS.register_module()
class MONAITransform(BaseTransform):
    """One generic bridge from an mmseg pipeline to any MONAI dictionary transform.

    ``dict(type='MONAITransform', transform='Spacingd', pixdim=(1.5, 1.5, 2.0),
    mode=('bilinear', 'nearest'))`` builds ``monai.transforms.Spacingd(keys=['img',
    'gt_seg_map'], pixdim=..., mode=...)`` and runs it on the pipeline's results:
    MONAI ("MONAI: An open-source framework for deep learning in healthcare", 2022)
    provides the volumetric transforms (orientation, resampling, intensity windows,
    foreground-balanced crops, flips, rotations, affine and intensity augmentation),
    so mmseg users write them in their usual ``pipeline = [...]`` lists.

    What the bridge does around the call:

    - each key in ``keys`` (and each key named by a ``*_key`` argument, e.g.
      ``label_key``) becomes a ``MetaTensor`` carrying ``results['affine']``; a
      (D, H, W) array (the label) gets a channel axis, removed again afterwards;
    - a list of outputs (``RandCropByPosNegLabeld`` and other sample-producing
      transforms) must have one element: ``num_samples`` other than 1 is refused;
    - outputs are written back as C-contiguous numpy arrays of the input's dtype;
      an integer key (the label) whose output is not integral (interpolated with
      'bilinear' instead of 'nearest') is refused, so label ids stay exact;
    - when ``'img'`` is in ``keys`` and its grid changed (affine or shape), the new
      ``affine`` and ``spacing`` are stored and a short record is appended to
      ``results['transforms']``;
    - random transforms draw their seed from numpy's global generator at every call,
      so mmengine's ``randomness=dict(seed=...)`` (which seeds numpy in the main
      process and in each dataloader worker) makes them reproducible.

    Required keys: ``keys`` (unless ``allow_missing_keys=True``), ``affine``.
    Modified keys: ``keys``, ``affine``, ``spacing``, ``transforms``.

    Args:
        transform (str): name of a dictionary transform in ``monai.transforms``
            (e.g. 'Orientationd', 'Spacingd', 'ScaleIntensityRanged',
            'RandCropByPosNegLabeld', 'RandFlipd', 'RandRotate90d', 'RandAffined').
        keys (str | Sequence[str]): the results keys it transforms. Default:
            ('img', 'gt_seg_map'); test pipelines pass ('img',) to spatial transforms
            (the label stays in the original space for the metric).
        **kwargs: the transform's own arguments (``keys`` excluded).

    Shape:
        ``img``: (C, D, H, W) float; ``gt_seg_map``: (D, H, W) integer; shapes after
        the transform as MONAI computes them.

    Attributes:
        monai_transform (monai.transforms.MapTransform): the wrapped transform.
    """

    def __init__(self,
                 transform: str,
                 keys: Union[str, Sequence[str]] = ('img', 'gt_seg_map'),
                 **kwargs) -> None:
        if not isinstance(transform, str) or not transform:
            raise ValueError(f'transform must be the name of a MONAI dictionary '
                             f'transform (str), got {transform!r}')
        keys = (keys, ) if isinstance(keys, str) else keys
        if (not isinstance(keys, (list, tuple)) or not keys
                or not all(isinstance(k, str) and k for k in keys)):
            raise ValueError(f'keys must be a non-empty str or sequence of str, got '
                             f'{keys!r}')
        if kwargs.get('num_samples', 1) != 1:
            raise ValueError(
                f'num_samples must be 1 for {transform} inside an mmseg pipeline (one '
                f'results dict in, one out), got {kwargs["num_samples"]!r}; sample '
                'more crops per volume by repeating the dataset or with more '
                'iterations')
        cls = find_dictionary_transform(transform)
        self.transform_name = transform
        self.keys = tuple(keys)
        self.kwargs = dict(kwargs)
        try:
            self.monai_transform = cls(keys=list(self.keys), **kwargs)
        except TypeError as error:
            raise TypeError(f'monai.transforms.{transform} rejected the arguments '
                            f'{kwargs}: {error}') from error
        self.allow_missing_keys = bool(kwargs.get('allow_missing_keys', False))
        self.read_keys = tuple(dict.fromkeys(self.keys + _key_arguments(kwargs)))

    @property
    def is_random(self) -> bool:
        """True for a MONAI ``Randomizable`` transform."""
        return isinstance(self.monai_transform, Randomizable)

    def transform_record(self, old_shape: tuple, new_shape: tuple) -> str:
        """The entry appended to ``results['transforms']``: the transform, its
        arguments and the image's spatial shape before and after."""
        args = ', '.join(f'{k}={_short(v)}' for k, v in self.kwargs.items())
        return f'{self.transform_name}({args}): {old_shape}->{new_shape}'

    def transform(self, results: dict) -> dict:
        missing = [k for k in self.read_keys if k not in results]
        if missing and not self.allow_missing_keys:
            raise KeyError(f'{self.transform_name} needs the keys {missing} that the '
                           f'results lack (it has {sorted(results)}); load them first '
                           'or change keys')
        if 'affine' not in results:
            raise KeyError(f'{self.transform_name} needs results["affine"] (set by '
                           'LoadVolumeFromFile)')
        affine = torch.as_tensor(np.asarray(results['affine'], dtype=np.float64))
        data, had_channel = {}, {}
        for key in self.read_keys:
            if key not in results:
                continue
            array = results[key]
            if not isinstance(array, np.ndarray) or array.ndim not in (3, 4):
                got = getattr(array, 'shape', type(array).__name__)
                raise ValueError(f'results[{key!r}] must be a (D, H, W) or (C, D, H, '
                                 f'W) numpy array for {self.transform_name}, got {got}')
            had_channel[key] = array.ndim == 4
            tensor = torch.as_tensor(array if array.ndim == 4 else array[None])
            data[key] = MetaTensor(tensor, affine=affine.clone())
        old_shape = tuple(data['img'].shape[1:]) if 'img' in data else None

        if self.is_random:  # follow numpy's global state (seeded by mmengine)
            seed = int(np.random.randint(0, 2**31 - 1))
            self.monai_transform.set_random_state(seed=seed)
        out = self.monai_transform(data)
        if isinstance(out, (list, tuple)):
            if len(out) != 1:
                raise ValueError(f'{self.transform_name} returned {len(out)} samples: '
                                 'an mmseg pipeline carries one; set num_samples=1')
            out = out[0]

        for key in self.keys:
            if key in data:
                results[key] = self._write_back(key, out[key], results[key],
                                                had_channel[key])
        if 'img' in data and 'img' in self.keys:
            new_img = out['img']
            new_shape = tuple(int(s) for s in new_img.shape[1:])
            new_affine = (
                new_img.affine.detach().cpu().numpy().astype(np.float64) if isinstance(
                    new_img, MetaTensor) else affine.numpy())
            if new_shape != old_shape or not np.allclose(
                    new_affine, affine.numpy(), rtol=0, atol=1e-6):
                record = self.transform_record(old_shape, new_shape)
                results['affine'] = new_affine
                results['spacing'] = spacing_of(new_affine)
                results['transforms'] = list(results.get('transforms', [])) + [record]
        return results

    def _write_back(self, key: str, value, original: np.ndarray,
                    had_channel: bool) -> np.ndarray:
        """The transformed ``value`` as a numpy array of ``original``'s dtype and
        rank; integer keys must come back integral."""
        array = (
            value.detach().cpu().numpy()
            if isinstance(value, torch.Tensor) else np.asarray(value))
        if not had_channel:
            if array.shape[0] != 1:
                raise ValueError(f'{self.transform_name} turned results[{key!r}] into '
                                 f'{array.shape[0]} channels: expected 1')
            array = array[0]
        dtype = original.dtype
        integral = np.issubdtype(array.dtype, np.integer)
        if np.issubdtype(dtype, np.integer) and not integral:
            rounded = np.rint(array)
            if not np.allclose(array, rounded, rtol=0, atol=1e-3):
                raise ValueError(
                    f'{self.transform_name} interpolated the integer results[{key!r}] '
                    f'into non-integer values: use mode="nearest" for label keys')
            array = rounded
        return np.ascontiguousarray(array, dtype=dtype)

    def __repr__(self) -> str:
        args = ''.join(f', {k}={v!r}' for k, v in self.kwargs.items())
        return (f'{self.__class__.__name__}(transform={self.transform_name!r}, '
                f'keys={self.keys!r}{args})')
