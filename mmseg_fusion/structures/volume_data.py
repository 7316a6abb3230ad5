"""Voxel-wise data of one volume (the 3-D counterpart of mmengine's ``PixelData``)."""
from typing import Optional, Tuple

import numpy as np
import torch
from mmengine.structures import BaseDataElement


class VolumeData(BaseDataElement):
    """Voxel-wise fields of one volume, each a (C, D, H, W) tensor or array.

    mmengine's ``PixelData`` accepts (H, W) and (C, H, W) values only; a volume label
    or prediction of shape (1, D, H, W) needs this element instead. Every data field
    must be 4-D and all fields must share the spatial shape (D, H, W); metainfo is
    free-form, as in every ``BaseDataElement``.

    Shape:
        - each data field: (C, D, H, W); C may differ between fields (a (1, D, H, W)
          label beside (K, D, H, W) logits).
    """

    def __setattr__(self, name: str, value) -> None:
        if name in ('_metainfo_fields', '_data_fields'):
            if not hasattr(self, name):
                super().__setattr__(name, value)
                return
            raise AttributeError(f'{name} is used internally by VolumeData and cannot '
                                 'be set')
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            raise TypeError(f'VolumeData field {name!r} must be a tensor or an array, '
                            f'got {type(value).__name__}')
        if value.ndim != 4:
            raise ValueError(
                f'VolumeData field {name!r} must be a (C, D, H, W) volume, '
                f'got shape {tuple(value.shape)}')
        shape = self.shape
        if shape is not None and tuple(value.shape[1:]) != shape:
            raise ValueError(f'VolumeData field {name!r} must have the spatial shape '
                             f'{shape} of the other fields, got {tuple(value.shape)}')
        super().__setattr__(name, value)

    @property
    def shape(self) -> Optional[Tuple[int, int, int]]:
        """The spatial shape (D, H, W) shared by the data fields; None when empty."""
        for value in self.values():
            return tuple(int(s) for s in value.shape[1:])
        return None
