"""A config's segmentor for measuring and exporting: built without pretrained weights
(or from a checkpoint), its test input size (2-D or 3-D), random inputs through its own
data preprocessor, and a module mapping those inputs to the logits."""
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

from .checkpoint_check import check_checkpoint_fits
from .cli import ConfigError, PathNotFoundError, UsageError
from .model_analysis import drop_pretrained

__all__ = [
    'SegmentorLogits', 'build_segmentor', 'input_channels', 'is_volumetric',
    'load_config', 'random_inputs', 'test_input_size'
]

VOLUME_SEGMENTORS = ('VolumeEncoderDecoder', )


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config at ``path`` with ``cfg_options`` merged in."""
    if not osp.isfile(path):
        raise PathNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def is_volumetric(cfg: Config) -> bool:
    """Whether the config's model segments volumes (N, C, D, H, W)."""
    test_cfg = cfg.model.get('test_cfg') or {}
    return (cfg.model.get('type') in VOLUME_SEGMENTORS
            or test_cfg.get('patch_size') is not None
            or len(cfg.get('crop_size') or ()) == 3)


def test_input_size(cfg: Config,
                    shape: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
    """The spatial size one forward pass of the model sees at test time.

    2-D: ``shape`` (H or H W), else the sliding-window ``test_cfg.crop_size`` of a
    'slide' test, else the config's ``crop_size``, else the data preprocessor's
    ``size``, else 512 x 512. 3-D: ``shape`` (D or D H W), else the sliding-window
    ``test_cfg.patch_size``, else a 3-D ``crop_size``.

    Raises:
        UsageError: ``shape`` has the wrong number of sides for the model.
        ConfigError: a 3-D config names no patch size.
    """
    dims = 3 if is_volumetric(cfg) else 2
    if shape:
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (1, dims) or min(shape) < 1:
            names = 'D [H W]' if dims == 3 else 'H [W]'
            raise UsageError(f'--shape takes {names} (positive) for this {dims}-D '
                             f'model, got {list(shape)}')
        return shape * dims if len(shape) == 1 else shape
    test_cfg = cfg.model.get('test_cfg') or {}
    if dims == 3:
        size = test_cfg.get('patch_size') or cfg.get('crop_size')
        if not size:
            raise ConfigError('the config names no test patch size (model.test_cfg.'
                              'patch_size or a 3-D crop_size); give the size')
        size = (size, ) * 3 if isinstance(size, int) else size
        return tuple(int(s) for s in size)
    if test_cfg.get('mode') == 'slide' and test_cfg.get('crop_size'):
        size = test_cfg['crop_size']
    else:
        size = (
            cfg.get('crop_size')
            or (cfg.model.get('data_preprocessor') or {}).get('size') or (512, 512))
    size = (size, size) if isinstance(size, int) else size
    return tuple(int(s) for s in size)


def input_channels(cfg: Config) -> int:
    """Channels of the model's input: the backbone's ``in_channels`` if it names them,
    else the length of the data preprocessor's ``mean``, else 3 (2-D) or 1 (3-D)."""
    channels = cfg.model.get('backbone', {}).get('in_channels')
    if isinstance(channels, int):
        return channels
    mean = (cfg.model.get('data_preprocessor') or {}).get('mean')
    if isinstance(mean, (list, tuple)):
        return len(mean)
    return 1 if is_volumetric(cfg) else 3


def build_segmentor(cfg: Config,
                    checkpoint: Optional[str] = None,
                    auxiliary_head: bool = False) -> nn.Module:
    """The config's segmentor on CPU in eval mode, SyncBN reverted, without the
    auxiliary head (it does not run at inference) unless ``auxiliary_head``. Without
    ``checkpoint`` the weights are random and pretrained weights are dropped from
    the config (nothing is downloaded).

    Raises:
        PathNotFoundError: ``checkpoint`` does not exist.
        CheckpointMismatchError: it holds another model's weights.
    """
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise PathNotFoundError(f'checkpoint file not found: {checkpoint}')
    drop_pretrained(cfg.model)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if not auxiliary_head and getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        check_checkpoint_fits(model, checkpoint)
        load_checkpoint(
            model, checkpoint, map_location='cpu', strict=False, logger='silent')
    return model.eval()


def random_inputs(model: nn.Module,
                  cfg: Config,
                  size: Sequence[int],
                  batch_size: int = 1,
                  seed: int = 0) -> torch.Tensor:
    """A batch of random inputs of spatial ``size`` after the model's data
    preprocessor: uint8 images (2-D) or float volumes in [0, 1] (3-D, the range of
    the CT configs' intensity window)."""
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(seed)
    channels = input_channels(cfg)
    size = tuple(size)
    if len(size) == 3:
        inputs = [
            torch.rand((channels, *size), generator=generator)
            for _ in range(batch_size)
        ]
        return model.data_preprocessor(dict(inputs=inputs), False)['inputs']
    meta = dict(ori_shape=size, img_shape=size, pad_shape=size)
    data = dict(
        inputs=[
            torch.randint(
                0, 256, (channels, *size), dtype=torch.uint8, generator=generator)
            for _ in range(batch_size)
        ],
        data_samples=[SegDataSample(metainfo=meta) for _ in range(batch_size)])
    return model.data_preprocessor(data, False)['inputs']


class SegmentorLogits(nn.Module):
    """A segmentor as a function of its preprocessed input, at a fixed input size.

    ``mode='logits'``: ``encode_decode``, the logits resized to the input (what
    whole-image inference and each sliding window compute before the argmax);
    ``'tensor'``: the segmentor's ``'tensor'`` forward (the decode head's raw output).

    Args:
        segmentor (nn.Module): an mmseg ``EncoderDecoder`` or a
            ``VolumeEncoderDecoder``.
        size (Sequence[int]): the spatial size (H, W) or (D, H, W) of the inputs.
        mode (str): 'logits' or 'tensor'. Default: 'logits'.

    Shape:
        - Input: (N, C, *size) after the data preprocessor.
        - Output ('logits'): (N, K, *size).
    """

    def __init__(self,
                 segmentor: nn.Module,
                 size: Sequence[int],
                 mode: str = 'logits') -> None:
        super().__init__()
        if mode not in ('logits', 'tensor'):
            raise ValueError(f"mode must be 'logits' or 'tensor', got {mode!r}")
        self.segmentor = segmentor
        self.size = tuple(int(s) for s in size)
        self.mode = mode

    def forward(self, inputs: torch.Tensor):
        if self.mode == 'tensor':
            return self.segmentor(inputs, None, mode='tensor')
        meta = dict(img_shape=self.size, ori_shape=self.size, pad_shape=self.size)
        return self.segmentor.encode_decode(inputs, [meta])
