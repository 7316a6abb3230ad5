"""Pack a 3-D pipeline's results into the model's inputs and a VolumeSegDataSample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmseg_fusion.structures import VolumeData, VolumeSegDataSample

DEFAULT_META_KEYS = ('case_id', 'img_path', 'seg_map_path', 'affine', 'spacing',
                     'img_shape', 'original_affine', 'original_spacing',
                     'original_shape', 'transforms')


@TRANSFORMS.register_module()
class PackVolumeInputs(BaseTransform):
    """The last step of a 3-D pipeline: the volumetric counterpart of mmseg's
    ``PackSegInputs``.

    Returns ``dict(inputs=..., data_samples=...)``: ``inputs`` is the image as a
    C-contiguous float32 tensor, ``data_samples`` a :class:`VolumeSegDataSample`
    holding ``gt_sem_seg`` (when the results have ``gt_seg_map``) and the metainfo
    named by ``meta_keys`` (keys absent from the results are left out, as mmseg
    does). ``img_shape`` is always set to the spatial shape of ``inputs``.

    The label may have another shape than the image: test pipelines resample the
    image only and keep the label in the original space for the metric.

    Required keys: ``img``. Optional: ``gt_seg_map`` and the ``meta_keys``.

    Args:
        meta_keys (Sequence[str]): results keys copied to the sample's metainfo.
            Default: ('case_id', 'img_path', 'seg_map_path', 'affine', 'spacing',
            'img_shape', 'original_affine', 'original_spacing', 'original_shape',
            'transforms').

    Shape:
        ``img`` (C, D, H, W) -> ``inputs`` (C, D, H, W) float32;
        ``gt_seg_map`` (D, H, W) integer -> ``gt_sem_seg.data`` (1, D, H, W) int64.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        meta_keys = (meta_keys, ) if isinstance(meta_keys, str) else meta_keys
        if not isinstance(meta_keys, (list, tuple)) or not all(
                isinstance(k, str) for k in meta_keys):
            raise ValueError(f'meta_keys must be a sequence of str, got {meta_keys!r}')
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 4:
            raise ValueError(f'results["img"] must be a (C, D, H, W) volume, got shape '
                             f'{tuple(img.shape)}')
        if isinstance(img, torch.Tensor):
            inputs = img.detach().to(torch.float32).contiguous()
        else:
            inputs = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
        results['img_shape'] = tuple(int(s) for s in inputs.shape[1:])
        sample = VolumeSegDataSample()
        if 'gt_seg_map' in results:
            seg = results['gt_seg_map']
            if seg.ndim != 3:
                raise ValueError(
                    f'results["gt_seg_map"] must be a (D, H, W) label, got '
                    f'shape {tuple(seg.shape)}')
            seg = torch.as_tensor(np.asarray(seg)).to(torch.int64)[None].contiguous()
            sample.gt_sem_seg = VolumeData(data=seg)
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys!r})'
