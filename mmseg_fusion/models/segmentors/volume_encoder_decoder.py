"""Volumetric encoder-decoder segmentor: 5-D training and sliding-window inference on
whole volumes, with the prediction returned on the volume's original grid."""
import itertools
import time
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, OptSampleList,
                         SampleList, add_prefix)
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from torch import Tensor

from ...structures import VolumeData, VolumeSegDataSample
from ...utils.checks import check_bool, check_choice, check_positive_int
from ..data_preprocessors import VolumeDataPreProcessor

# test_cfg keys and their defaults (see VolumeEncoderDecoder's docstring).
TEST_CFG_DEFAULTS = dict(
    mode='whole',
    patch_size=None,
    overlap=0.5,
    sw_batch_size=4,
    blend_mode='gaussian',
    sigma_scale=0.125,
    mirror_axes=None,
    stitch_device=None,
    progress=True,
    progress_interval=5.0,
    keep_logits=False)

# Resampling back to the original grid runs in slabs of the original first axis, each
# holding at most this many output scores (about 128 MB of float32).
RESAMPLE_CHUNK_ELEMENTS = 2**25


def _three_numbers(name: str,
                   value,
                   low: float,
                   high: Optional[float] = None,
                   integer: bool = False) -> tuple:
    """``value`` (one number, or three for D, H, W) as a 3-tuple, each in [low, high);
    else a ValueError naming ``test_cfg.<name>``."""
    kind = int if integer else Number
    values = tuple(value) if isinstance(value, (list, tuple)) else (value, ) * 3
    valid = len(values) == 3 and all(
        isinstance(v, kind) and not isinstance(v, bool) and v >= low and
        (high is None or v < high) for v in values)
    if not valid:
        kind_name = 'an int' if integer else 'a number'
        bound = f' and < {high}' if high is not None else ''
        raise ValueError(f'test_cfg.{name} must be {kind_name} >= {low}{bound}, or '
                         f'three of them (D, H, W), got {value!r}')
    return values


def parse_test_cfg(test_cfg: Optional[dict], size_divisor: int = 1) -> dict:
    """Check a segmentor ``test_cfg`` and return it with every default filled in.

    Args:
        test_cfg (dict, optional): the keys of ``TEST_CFG_DEFAULTS``; None for all
            defaults.
        size_divisor (int): the network's total stride; each patch side must be a
            multiple of it.

    Returns:
        dict: every key of ``TEST_CFG_DEFAULTS``; ``patch_size``, ``overlap`` and
        ``sigma_scale`` as 3-tuples, ``mirror_axes`` as a sorted tuple (empty for none).
    """
    given = dict(test_cfg or {})
    unknown = sorted(set(given) - set(TEST_CFG_DEFAULTS))
    if unknown:
        raise ValueError(f'test_cfg has unknown keys {unknown}; allowed keys: '
                         f'{sorted(TEST_CFG_DEFAULTS)}')
    cfg = {**TEST_CFG_DEFAULTS, **given}
    check_choice('test_cfg.mode', cfg['mode'], ('slide', 'whole'))
    if cfg['patch_size'] is None:
        if cfg['mode'] == 'slide':
            raise ValueError('test_cfg.patch_size (D, H, W) is required when mode is '
                             "'slide', got None")
    else:
        cfg['patch_size'] = _three_numbers(
            'patch_size', cfg['patch_size'], 1, integer=True)
        for side in cfg['patch_size']:
            if side % size_divisor:
                raise ValueError(
                    f'test_cfg.patch_size={cfg["patch_size"]}: side {side} is not '
                    f'divisible by the network stride {size_divisor} '
                    '(backbone.size_divisor); use multiples of it')
    cfg['overlap'] = _three_numbers('overlap', cfg['overlap'], 0, 1)
    check_positive_int('test_cfg.sw_batch_size', cfg['sw_batch_size'])
    check_choice('test_cfg.blend_mode', cfg['blend_mode'], ('gaussian', 'constant'))
    cfg['sigma_scale'] = _three_numbers('sigma_scale', cfg['sigma_scale'], 1e-6)
    axes = cfg['mirror_axes']
    axes = () if axes is None else axes
    if (not isinstance(axes, (list, tuple)) or len(set(axes)) != len(axes)
            or not all(a in (0, 1, 2) and not isinstance(a, bool) for a in axes)):
        raise ValueError('test_cfg.mirror_axes must be None or distinct spatial axes '
                         f'from (0, 1, 2) (D, H, W), got {cfg["mirror_axes"]!r}')
    cfg['mirror_axes'] = tuple(sorted(axes))
    if cfg['stitch_device'] is not None:
        try:
            torch.device(cfg['stitch_device'])
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                "test_cfg.stitch_device must be None (the input's device) "
                f"or a device such as 'cpu', got {cfg['stitch_device']!r}") from error
    check_bool('test_cfg.progress', cfg['progress'])
    check_bool('test_cfg.keep_logits', cfg['keep_logits'])
    interval = cfg['progress_interval']
    if not isinstance(interval, Number) or isinstance(interval, bool) or interval < 0:
        raise ValueError('test_cfg.progress_interval must be a number of seconds >= 0, '
                         f'got {interval!r}')
    return cfg


class _ProgressLog:
    """Logs windows done of ``total`` and the elapsed time through mmengine's current
    logger, at most every ``interval`` seconds and once at the end."""

    def __init__(self, total: int, interval: float, enabled: bool) -> None:
        self.total = total
        self.interval = interval
        self.enabled = enabled
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, windows: int) -> None:
        self.done += windows
        now = time.monotonic()
        if self.enabled and (self.done >= self.total
                             or now - self.last >= self.interval):
            self.last = now
            MMLogger.get_current_instance().info(
                f'sliding-window inference: {self.done}/{self.total} windows, '
                f'{now - self.start:.1f} s elapsed')


def original_voxel_to_processed_voxel(meta: dict) -> Optional[np.ndarray]:
    """The 4x4 map from the original grid's voxels to the processed grid's voxels,
    ``inv(affine) @ original_affine``, or None if ``meta`` lacks ``affine``,
    ``original_affine`` or ``original_shape`` (then the prediction stays on the
    processed grid)."""
    if not all(key in meta for key in ('affine', 'original_affine', 'original_shape')):
        return None
    processed = np.asarray(meta['affine'], dtype=np.float64)
    original = np.asarray(meta['original_affine'], dtype=np.float64)
    for key, affine in (('affine', processed), ('original_affine', original)):
        if affine.shape != (4, 4):
            raise ValueError(f'metainfo {key} must be a 4x4 voxel-to-world matrix, got '
                             f'shape {affine.shape}')
    return np.linalg.solve(processed, original)


def resample_to_original(scores: Tensor,
                         voxel_map: np.ndarray,
                         original_shape: Sequence[int],
                         keep_scores: bool,
                         threshold: float = 0.5) -> Tuple[Tensor, Optional[Tensor]]:
    """Class scores on the processed grid -> labels (and scores) on the original grid.

    Each original voxel v is sampled at ``voxel_map @ v`` in the processed grid
    (trilinear on the scores, border values beyond the edge), then the argmax is taken
    (for one score channel: ``sigmoid > threshold``). Runs in slabs of the original
    first axis, so the full set of resampled scores exists only when ``keep_scores``.

    Args:
        scores (Tensor): (K, D, H, W) class scores on the processed grid.
        voxel_map (ndarray): 4x4, original voxel -> processed voxel.
        original_shape (Sequence[int]): (D0, H0, W0).
        keep_scores (bool): also return the resampled (K, D0, H0, W0) scores.
        threshold (float): the probability threshold when K is 1.

    Returns:
        tuple: labels (1, D0, H0, W0) int64 and the scores or None.
    """
    num_classes, *size = scores.shape
    d0, h0, w0 = (int(s) for s in original_shape)
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    # Fold grid_sample's normalisation (align_corners=True: index 0 -> -1, last -> 1)
    # into the map, and reorder its rows to grid_sample's (x, y, z) = (W, H, D).
    normalise = np.eye(4)
    for axis, side in enumerate(size):
        normalise[axis, axis] = 2.0 / (side - 1) if side > 1 else 0.0
        normalise[axis, 3] = -1.0 if side > 1 else 0.0
    to_grid = torch.as_tensor(
        (normalise @ voxel_map)[[2, 1, 0]], dtype=scores.dtype, device=scores.device)
    rows = torch.arange(h0, dtype=scores.dtype, device=scores.device)
    cols = torch.arange(w0, dtype=scores.dtype, device=scores.device)
    plane = (
        rows[:, None, None] * to_grid[:, 1] + cols[None, :, None] * to_grid[:, 2] +
        to_grid[:, 3])
    labels = torch.empty((1, d0, h0, w0), dtype=torch.long, device=scores.device)
    kept = scores.new_empty((num_classes, d0, h0, w0)) if keep_scores else None
    step = max(1, RESAMPLE_CHUNK_ELEMENTS // (h0 * w0 * (num_classes + 3)))
    for start in range(0, d0, step):
        stop = min(start + step, d0)
        slabs = torch.arange(start, stop, dtype=scores.dtype, device=scores.device)
        grid = plane[None] + slabs[:, None, None, None] * to_grid[:, 0]
        chunk = F.grid_sample(
            scores[None],
            grid[None],
            mode='bilinear',
            padding_mode='border',
            align_corners=True)[0]
        labels[:, start:stop] = _labels(chunk, threshold)
        if keep_scores:
            kept[:, start:stop] = chunk
    return labels, kept


def _labels(scores: Tensor, threshold: float) -> Tensor:
    """(K, ...) scores -> (1, ...) int64 labels: argmax, or sigmoid > threshold."""
    if scores.shape[0] == 1:
        return (scores.sigmoid() > threshold).long()
    return scores.argmax(dim=0, keepdim=True)


@MODELS.register_module()
class VolumeEncoderDecoder(BaseSegmentor):
    """Encoder-decoder segmentor for volumes (N, C, D, H, W): the 3-D counterpart of
    mmseg's ``EncoderDecoder``.

    mmseg 1.x segmentors are 2-D (``slide_inference`` tiles (H, W) with uniform
    weights). This one trains on 5-D patches and predicts whole volumes:

    - ``loss``: backbone -> neck -> ``decode_head.loss`` (the head computes the deep
      supervision loss); every spatial side must be a multiple of the backbone's
      ``size_divisor``.
    - ``predict``: ``test_cfg.mode='slide'`` runs MONAI's ``sliding_window_inference``
      (the anchor implementation, reused): step ``patch * (1 - overlap)``, the last
      window shifted back inside, volumes smaller than the patch padded with zeros
      and cropped back, ``sw_batch_size`` windows per forward, Gaussian importance
      weights (sigma ``sigma_scale`` x patch, 1/8 as in nnU-Net) or uniform, and the
      scores stitched on the input's device or on ``stitch_device``. ``mode='whole'``
      runs the network once on the volume, zero-padded to a multiple of
      ``size_divisor``. Mirroring test-time augmentation (nnU-Net v2) averages the
      logits of each window and of its flips over every non-empty subset of
      ``mirror_axes``. Progress (windows done of total, elapsed time) goes to
      mmengine's current logger.
    - ``postprocess_result``: each sample's scores are taken from the processed grid
      (metainfo ``affine``, ``img_shape``) back onto the original grid
      (``original_affine``, ``original_shape``) before the argmax: original voxel ->
      world -> processed voxel, trilinear on the scores. When the two grids agree
      (to 1e-3 voxel) the scores are used as they are. A sample without this
      metainfo keeps the processed grid. So ``pred_sem_seg`` comes back at the
      image file's shape, spacing and orientation, where the label and the NIfTI
      writer live.

    Args:
        backbone (dict): the encoder config; its ``size_divisor`` attribute (if any)
            is the network's total stride.
        decode_head (dict): a 3-D head with ``loss(inputs, data_samples, train_cfg)``,
            ``predict(inputs, batch_img_metas, test_cfg)`` -> (N, K, D, H, W) logits
            at the input's size, ``forward(inputs)`` and ``num_classes``.
        neck (dict, optional): a neck between backbone and head. Default: None.
        train_cfg (dict, optional): passed to ``decode_head.loss``. Default: None.
        test_cfg (dict, optional): inference settings (defaults in brackets):
            ``mode`` ('whole') 'slide' or 'whole'; ``patch_size`` (None; required
            for 'slide') window (D, H, W), each side a multiple of ``size_divisor``;
            ``overlap`` (0.5) fraction of the window shared by neighbours, in [0, 1);
            ``sw_batch_size`` (4) windows per forward; ``blend_mode`` ('gaussian')
            or 'constant'; ``sigma_scale`` (0.125) Gaussian sigma / window side;
            ``mirror_axes`` (None) spatial axes from (0, 1, 2) to mirror;
            ``stitch_device`` (None: the input's device) e.g. 'cpu' to stitch large
            volumes in host memory; ``progress`` (True) log progress;
            ``progress_interval`` (5.0) seconds between progress lines;
            ``keep_logits`` (False) also store ``seg_logits`` (K, D0, H0, W0).
        data_preprocessor (dict, optional): Default: ``VolumeDataPreProcessor()``.
        init_cfg (dict, optional): initialisation config. Default: None.

    Shape:
        - inputs: (N, C, D, H, W).
        - predict: N ``VolumeSegDataSample`` with ``pred_sem_seg`` (1, D0, H0, W0)
          int64 on the original grid.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        # Built here through mmseg's registry: mmengine's BaseModel would look the
        # type up in its root registry, which lacks ours outside an mmseg-scoped runner.
        if data_preprocessor is None:
            data_preprocessor = VolumeDataPreProcessor()
        elif isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.decode_head = MODELS.build(decode_head)
        self.num_classes = self.decode_head.num_classes
        self.out_channels = getattr(self.decode_head, 'out_channels', self.num_classes)
        self.size_divisor = check_positive_int(
            'backbone.size_divisor', getattr(self.backbone, 'size_divisor', 1))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        parse_test_cfg(test_cfg, self.size_divisor)

    def _check_inputs(self, inputs: Tensor) -> None:
        if not isinstance(inputs, Tensor) or inputs.dim() != 5:
            got = (
                tuple(inputs.shape)
                if isinstance(inputs, Tensor) else type(inputs).__name__)
            raise ValueError('inputs must be an (N, C, D, H, W) tensor (this segmentor '
                             f'is 3-D; 2-D images need EncoderDecoder), got {got}')

    def extract_feat(self, inputs: Tensor) -> Sequence[Tensor]:
        """Backbone (and neck) features of (N, C, D, H, W) inputs."""
        x = self.backbone(inputs)
        if self.with_neck:
            x = self.neck(x)
        return x

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """(N, C, D, H, W) inputs -> (N, K, D, H, W) logits, one network pass."""
        return self.decode_head.predict(
            self.extract_feat(inputs), batch_img_metas, self.test_cfg)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """The decode head's losses (prefixed 'decode.') on (N, C, D, H, W) patches."""
        self._check_inputs(inputs)
        sides = tuple(int(s) for s in inputs.shape[2:])
        if any(side % self.size_divisor for side in sides):
            raise ValueError(
                f'inputs of spatial shape {sides} cannot pass the network: every side '
                f'must be a multiple of its stride {self.size_divisor} '
                '(backbone.size_divisor); crop training patches to such sizes')
        losses = self.decode_head.loss(
            self.extract_feat(inputs), data_samples, self.train_cfg)
        return add_prefix(losses, 'decode')

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        """The head's raw forward output (no inference, no post-processing)."""
        self._check_inputs(inputs)
        return self.decode_head.forward(self.extract_feat(inputs))

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Inference on whole volumes, prediction on each one's original grid.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes on the processed grid.
            data_samples (list[VolumeSegDataSample], optional): metainfo with the
                geometry (see ``postprocess_result``).

        Returns:
            list[VolumeSegDataSample]: ``pred_sem_seg`` (1, D0, H0, W0) int64 and,
            with ``keep_logits``, ``seg_logits`` (K, D0, H0, W0).
        """
        self._check_inputs(inputs)
        if data_samples is not None:
            batch_img_metas = [sample.metainfo for sample in data_samples]
        else:
            batch_img_metas = [dict(img_shape=tuple(inputs.shape[2:]))] * len(inputs)
        return self.postprocess_result(
            self.inference(inputs, batch_img_metas), data_samples)

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """(N, C, D, H, W) -> (N, K, D, H, W) logits by ``test_cfg.mode``."""
        cfg = parse_test_cfg(self.test_cfg, self.size_divisor)
        if cfg['mode'] == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.whole_inference(inputs, batch_img_metas)

    def _mirrored_logits(self, inputs: Tensor, mirror_axes: Tuple[int, ...]) -> Tensor:
        """Logits of ``inputs``, averaged with those of its flips over every non-empty
        subset of ``mirror_axes`` (nnU-Net v2's mirroring; no subsets: one pass)."""
        metas = [dict(img_shape=tuple(inputs.shape[2:]))] * len(inputs)
        logits = self.encode_decode(inputs, metas)
        subsets = [
            subset for size in range(1,
                                     len(mirror_axes) + 1)
            for subset in itertools.combinations(mirror_axes, size)
        ]
        for subset in subsets:
            dims = [axis + 2 for axis in subset]
            logits = logits + self.encode_decode(inputs.flip(dims), metas).flip(dims)
        return logits / (len(subsets) + 1) if subsets else logits

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window logits through MONAI's ``sliding_window_inference``.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            batch_img_metas (list[dict]): per-sample metainfo (the windows are passed
                to the head with their own ``img_shape``).

        Returns:
            Tensor: (N, K, D, H, W) logits, on ``test_cfg.stitch_device`` if set.
        """
        self._check_inputs(inputs)
        cfg = parse_test_cfg(self.test_cfg, self.size_divisor)
        if cfg['patch_size'] is None:
            raise ValueError('test_cfg.patch_size (D, H, W) is required for sliding-'
                             'window inference, got None')
        patch = cfg['patch_size']
        size = [max(s, p) for s, p in zip(inputs.shape[2:], patch)]
        scan = [
            p if s == p else max(1, int(p * (1 - o)))
            for s, p, o in zip(size, patch, cfg['overlap'])
        ]
        progress = _ProgressLog(
            len(dense_patch_slices(size, patch, scan)) * len(inputs),
            cfg['progress_interval'], cfg['progress'])

        def predictor(windows: Tensor) -> Tensor:
            logits = self._mirrored_logits(windows, cfg['mirror_axes'])
            progress.update(len(windows))
            return logits

        return sliding_window_inference(
            inputs,
            roi_size=patch,
            sw_batch_size=cfg['sw_batch_size'],
            predictor=predictor,
            overlap=cfg['overlap'],
            mode=cfg['blend_mode'],
            sigma_scale=cfg['sigma_scale'],
            device=cfg['stitch_device'])

    def whole_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits of the whole volume in one pass, zero-padded (centred) to a multiple
        of ``size_divisor`` and cropped back: (N, C, D, H, W) -> (N, K, D, H, W)."""
        self._check_inputs(inputs)
        cfg = parse_test_cfg(self.test_cfg, self.size_divisor)
        sides = inputs.shape[2:]
        extra = [-side % self.size_divisor for side in sides]
        pad = []
        for more in reversed(extra):
            pad += [more // 2, more - more // 2]
        logits = self._mirrored_logits(F.pad(inputs, pad), cfg['mirror_axes'])
        crop = [slice(more // 2, more // 2 + side) for more, side in zip(extra, sides)]
        logits = logits[(slice(None), slice(None), *crop)]
        if cfg['stitch_device'] is not None:
            logits = logits.to(cfg['stitch_device'])
        return logits

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """(N, K, D, H, W) processed-grid logits -> per-sample predictions on the
        original grid.

        For each sample whose metainfo holds ``affine`` (processed grid),
        ``original_affine`` and ``original_shape``, the scores are resampled by
        ``inv(affine) @ original_affine`` (original voxel -> world -> processed voxel,
        trilinear) onto the original grid, then the argmax is taken (K = 1:
        ``sigmoid > decode_head.threshold``, default 0.5); if the two grids are the
        same (map within 1e-3 voxel of the identity, same shape) no resampling is
        done. Samples without that metainfo keep the processed grid.

        Args:
            seg_logits (Tensor): (N, K, D, H, W) logits.
            data_samples (list[VolumeSegDataSample], optional): None makes new ones.

        Returns:
            list[VolumeSegDataSample]: with ``pred_sem_seg`` (1, D0, H0, W0) int64
            and, if ``test_cfg.keep_logits``, ``seg_logits`` (K, D0, H0, W0).
        """
        cfg = parse_test_cfg(self.test_cfg, self.size_divisor)
        threshold = getattr(self.decode_head, 'threshold', None) or 0.5
        if data_samples is None:
            data_samples = [VolumeSegDataSample() for _ in range(len(seg_logits))]
        for scores, sample in zip(seg_logits, data_samples):
            meta = sample.metainfo
            grid = tuple(int(s) for s in scores.shape[1:])
            if 'img_shape' in meta and tuple(int(s) for s in meta['img_shape']) != grid:
                raise ValueError(f'metainfo img_shape {tuple(meta["img_shape"])} must '
                                 f'be the spatial shape of the inputs, {grid}')
            voxel_map = original_voxel_to_processed_voxel(meta)
            if voxel_map is not None:
                shape = tuple(int(s) for s in meta['original_shape'])
                if shape == grid and np.allclose(voxel_map, np.eye(4), atol=1e-3):
                    voxel_map = None
            if voxel_map is None:
                labels, kept = _labels(scores, threshold), scores
            else:
                labels, kept = resample_to_original(scores, voxel_map, shape,
                                                    cfg['keep_logits'], threshold)
            sample.pred_sem_seg = VolumeData(data=labels)
            if cfg['keep_logits']:
                sample.seg_logits = VolumeData(data=kept)
        return data_samples
