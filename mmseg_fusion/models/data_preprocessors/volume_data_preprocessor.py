"""Batches volumes for the 3-D segmentor: cast, move to the device, stack, normalise."""
from numbers import Number
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS


def _channel_values(name: str, value: Union[Number, Sequence[Number]]) -> torch.Tensor:
    """``value`` (a number or one number per channel) as a (C, 1, 1, 1) float tensor."""
    values = [value] if isinstance(value, Number) else list(value)
    if not values or not all(
            isinstance(v, Number) and not isinstance(v, bool) for v in values):
        raise ValueError(f'{name} must be a number or a sequence of numbers (one per '
                         f'channel), got {value!r}')
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1)


@MODELS.register_module()
class VolumeDataPreProcessor(BaseDataPreprocessor):
    """Data preprocessor of volumetric segmentation: the 3-D counterpart of mmseg's
    ``SegDataPreProcessor``.

    Moves the collated data to the model's device, casts every volume to float32,
    stacks the (C, D, H, W) volumes of a batch into one (N, C, D, H, W) tensor and,
    when ``mean`` and ``std`` are given, normalises each channel as
    ``(x - mean) / std``. Volumes are never padded or resized here: the pipeline crops
    training patches to one size, and a test batch must hold volumes of one shape
    (``batch_size=1`` for whole CT volumes), otherwise a ``ValueError`` lists the
    shapes. CT intensity windowing belongs in the pipeline (MONAI's
    ``ScaleIntensityRanged``); ``mean``/``std`` serve z-scored or multi-modal inputs.

    Args:
        mean (float | Sequence[float], optional): per-channel mean (one number for
            every channel, or one per channel). Default: None (no normalisation).
        std (float | Sequence[float], optional): per-channel standard deviation, > 0;
            required together with ``mean``. Default: None.
        non_blocking (bool): copy to the device without blocking. Default: False.

    Shape:
        - data['inputs']: a list of N (C, D, H, W) tensors (or an (N, C, D, H, W)
          tensor).
        - returned inputs: (N, C, D, H, W) float32.
    """

    def __init__(self,
                 mean: Optional[Union[Number, Sequence[Number]]] = None,
                 std: Optional[Union[Number, Sequence[Number]]] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('mean and std must be given together (or neither), got '
                             f'mean={mean!r}, std={std!r}')
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            mean_t = _channel_values('mean', mean)
            std_t = _channel_values('std', std)
            if len(mean_t) != len(std_t) and 1 not in (len(mean_t), len(std_t)):
                raise ValueError('mean and std must have one value per channel (the '
                                 f'same count), got mean={mean!r}, std={std!r}')
            if (std_t <= 0).any():
                raise ValueError(f'std must be > 0 for every channel, got {std!r}')
            self.register_buffer('mean', mean_t, persistent=False)
            self.register_buffer('std', std_t, persistent=False)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Cast, stack and normalise a collated batch.

        Args:
            data (dict): ``inputs`` (list of (C, D, H, W) tensors) and optionally
                ``data_samples`` (list of ``VolumeSegDataSample``), from the dataloader.
            training (bool): in training, each sample's ``gt_sem_seg`` must have the
                spatial shape of its input (at test time the label stays on the
                original grid and is not checked).

        Returns:
            dict: ``inputs`` (N, C, D, H, W) float32 on the model's device and
            ``data_samples`` (moved to the device).
        """
        data = self.cast_data(data)
        inputs = self._stack(data['inputs'])
        data_samples = data.get('data_samples', None)
        if self._enable_normalize:
            channels = inputs.shape[1]
            if {len(self.mean), len(self.std)} - {1, channels}:
                raise ValueError(
                    f'mean and std have {len(self.mean)} and {len(self.std)} values, '
                    f'but the inputs have {channels} channels (shape '
                    f'{tuple(inputs.shape)})')
            inputs = (inputs - self.mean) / self.std
        if training and data_samples is not None:
            spatial = tuple(inputs.shape[2:])
            for index, sample in enumerate(data_samples):
                if 'gt_sem_seg' in sample and sample.gt_sem_seg.shape != spatial:
                    raise ValueError(
                        f'data_samples[{index}].gt_sem_seg has the spatial shape '
                        f'{sample.gt_sem_seg.shape}, but its input has {spatial}: '
                        'training labels must lie on the grid of the input')
        return dict(inputs=inputs, data_samples=data_samples)

    @staticmethod
    def _stack(inputs) -> torch.Tensor:
        """(C, D, H, W) volumes -> one (N, C, D, H, W) float32 tensor."""
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 5:
                raise ValueError('inputs must be a list of (C, D, H, W) volumes or an '
                                 '(N, C, D, H, W) tensor, got shape '
                                 f'{tuple(inputs.shape)}')
            return inputs.float()
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError('inputs must be a non-empty list of (C, D, H, W) volumes, '
                             f'got {type(inputs).__name__}')
        shapes = []
        for index, volume in enumerate(inputs):
            if not isinstance(volume, torch.Tensor) or volume.dim() != 4:
                got = (
                    tuple(volume.shape)
                    if isinstance(volume, torch.Tensor) else type(volume).__name__)
                raise ValueError(f'inputs[{index}] must be a (C, D, H, W) tensor, '
                                 f'got {got}')
            shapes.append(tuple(volume.shape))
        if len(set(shapes)) > 1:
            raise ValueError(
                'inputs of one batch must have one shape to be stacked, got shapes '
                f'{shapes}: crop or pad them to one size in the pipeline, or test '
                'with batch_size=1')
        return torch.stack(list(inputs)).float()
