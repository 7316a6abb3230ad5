"""Per-image Dice, IoU and HD95 averaged over images: the polyp protocol."""
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from PIL import Image
from prettytable import PrettyTable

from ...utils.checks import check_bool, check_choice, check_int
from ..functional import dice_score, hd95, iou_score, mean_skip_nan, precision_recall


def read_label_map(data_sample: dict, key: str) -> np.ndarray:
    """Return ``data_sample[key]['data']`` (a (1, H, W) or (H, W) label map, as mmseg's
    ``SegDataSample.to_dict()`` holds it) as an (H, W) numpy array."""
    try:
        data = data_sample[key]['data']
    except (KeyError, TypeError) as error:
        raise ValueError(f"data sample must carry {key}['data'], got keys "
                         f'{sorted(data_sample)}') from error
    array = data.cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{key}['data'] must be a (1, H, W) or (H, W) label map, got "
                         f'shape {array.shape}')
    return array


def read_spacing(data_sample: dict, ndim: int) -> Optional[Tuple[float, ...]]:
    """The data sample's ``spacing`` metainfo (``ndim`` positive numbers) or None."""
    spacing = data_sample.get('spacing')
    if spacing is None:
        return None
    values = tuple(float(s) for s in np.asarray(spacing, dtype=np.float64).ravel())
    if len(values) != ndim or min(values) <= 0:
        raise ValueError(f'spacing of {data_sample.get("img_path", "a data sample")} '
                         f'must be {ndim} positive numbers, got {spacing!r}')
    return values


class PredictionWriterMixin:
    """mmseg's metric contract for writing predictions, as ``IoUMetric`` keeps it:
    ``output_dir``, ``format_only`` and ``keep_results`` (which mmseg's tools/test.py
    sets with ``--out``).

    With ``output_dir``, every prediction is written as a PNG label mask (uint8 class
    ids, plus 1 where the sample has ``reduce_zero_label``, as ``IoUMetric`` does)
    named after its image: ``output_dir/<image name>.png``, or
    ``output_dir/<subset>/<image name>.png`` for samples tagged with a ``subset`` (the
    PraNet test sets share file names). Two samples of one evaluation that would
    write the same file are an error. With ``format_only`` the predictions are only
    written, not scored: the ground truth may be absent and no metric is returned.
    """

    def _init_writer(self, output_dir: Optional[str], format_only: bool,
                     keep_results: bool) -> None:
        if output_dir is not None and (not isinstance(output_dir, str)
                                       or not output_dir):
            raise ValueError(f'output_dir must be None or a folder path, got '
                             f'{output_dir!r}')
        check_bool('format_only', format_only)
        check_bool('keep_results', keep_results)
        if format_only and output_dir is None:
            raise ValueError('format_only=True writes the predictions only: it needs '
                             'an output_dir')
        self.output_dir = output_dir
        self.format_only = format_only
        self.keep_results = keep_results
        self._written = set()

    def write_prediction(self, data_sample: dict, pred: np.ndarray) -> Optional[str]:
        """Write ``pred`` ((H, W) class ids) under ``output_dir``; return the path (or
        None without ``output_dir``)."""
        if self.output_dir is None:
            return None
        if 'img_path' not in data_sample:
            raise ValueError('writing predictions needs the data sample\'s img_path to '
                             f'name the file, got keys {sorted(data_sample)}')
        folder = self.output_dir
        if data_sample.get('subset') is not None:
            folder = osp.join(folder, str(data_sample['subset']))
        stem = osp.splitext(osp.basename(data_sample['img_path']))[0]
        path = osp.join(folder, f'{stem}.png')
        if path in self._written:
            raise ValueError(f'two test images would write the prediction {path}: '
                             'image names must be unique (per subset)')
        labels = pred + 1 if data_sample.get('reduce_zero_label', False) else pred
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError(f'predicted labels must lie in 0..255 to be written as '
                             f'PNG, got {labels.min()}..{labels.max()}')
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(labels.astype(np.uint8)).save(path)
        self._written.add(path)
        return path

    def evaluate(self, size: int) -> dict:
        self._written = set()  # a new evaluation may write the same names again
        return super().evaluate(size)

    def log_format_only(self, results: list) -> dict:
        print_log(
            f'format_only: {len(results)} predictions written to '
            f'{self.output_dir}, not scored', MMLogger.get_current_instance())
        return {}


@METRICS.register_module()
class MedicalMetric(PredictionWriterMixin, BaseMetric):
    """Per-image Dice, IoU, HD95 (and optionally precision and recall) averaged over
    images, per class and per test subset: the protocol of polyp-segmentation papers.

    From the evaluation protocol of "PraNet: Parallel Reverse Attention Network for
    Polyp Segmentation" (Fan et al., MICCAI 2020) and the papers that follow it: each
    score is computed on every image, then averaged over images (mDice, mIoU).
    mmseg's ``IoUMetric`` instead sums intersections and unions over the whole set
    before dividing, which weights large objects more; the two differ whenever object
    sizes vary across images.

    Classes are ``dataset_meta['classes']``; every class index except ``ignore_index``
    and, unless ``include_background``, index 0 (background) is scored. Pixels whose
    ground truth is ``ignore_index`` are excluded from both masks.

    Empty-mask conventions, per image and class (P = predicted mask, G = ground truth):

    - P and G both empty: Dice 1, IoU 1, precision 1, recall 1, HD95 0.
    - exactly one empty: Dice 0, IoU 0, precision 0, recall 0, and HD95 the image
      diagonal ``sqrt((H * sy)**2 + (W * sx)**2)`` when ``empty_hd95='diagonal'``, or
      NaN when ``empty_hd95='nan'``: the pair is left out of the HD95 average and
      counted in ``HD95_skipped``.
    - both non-empty: ``dice_score``, ``iou_score``, ``precision_recall`` and ``hd95``
      (medpy's definition) of :mod:`mmseg_fusion.evaluation.functional`.

    HD95 is in pixels, or in mm when the data sample's metainfo carries ``spacing``
    (row, column pixel size).

    Returned keys (Dice, IoU, precision and recall in percent, 0-100, as mmseg reports
    them; HD95 in pixels or mm). Each class score is the mean over images; each ``m``
    score the mean over the scored classes (NaN class values skipped):

    - ``mDice``, ``mIoU``, ``mHD95``; with ``with_precision_recall`` also
      ``mPrecision``, ``mRecall``.
    - ``Dice.<class>``, ``IoU.<class>``, ``HD95.<class>`` (and ``Precision.<class>``,
      ``Recall.<class>``), e.g. ``Dice.polyp``.
    - ``HD95_skipped`` (only with ``empty_hd95='nan'``): number of (image, class) pairs
      left out of the HD95 averages.
    - per subset, when data samples carry a ``subset`` metainfo key (e.g. the PraNet
      test sets 'Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB',
      'CVC-300'): every key above prefixed by ``<subset>/``, e.g. ``Kvasir/mDice``,
      ``Kvasir/Dice.polyp``. The unprefixed keys are over all images.

    A table of the same numbers (plus the image count) is logged.

    Args:
        ignore_index (int): ground-truth label whose pixels are not scored (and which
            is not scored as a class if it is a class index). Default: 255.
        include_background (bool): also score class index 0. Default: False.
        with_precision_recall (bool): also report precision and recall.
            Default: False.
        empty_hd95 (str): HD95 when exactly one of P and G is empty: 'diagonal' or
            'nan'. Default: 'diagonal'.
        collect_device (str): device used to gather results across ranks, 'cpu' or
            'gpu'. Default: 'cpu'.
        output_dir (str, optional): write every prediction as a PNG label mask named
            after its image (:class:`PredictionWriterMixin`). Default: None.
        format_only (bool): only write the predictions (needs ``output_dir``; no
            ground truth needed, no scores). Default: False.
        keep_results (bool): accepted because mmseg's tools/test.py passes it with
            ``--out``; the files in ``output_dir`` are always kept. Default: False.
        prefix (str, optional): prefix added by mmengine to every key. Default: None.

    Shape:
        - data_sample['pred_sem_seg']['data']: (1, H, W) integer labels.
        - data_sample['gt_sem_seg']['data']: (1, H, W) integer labels.
        - data_sample['spacing'] (optional): (2, ) pixel size (row, column).
    """

    def __init__(self,
                 ignore_index: int = 255,
                 include_background: bool = False,
                 with_precision_recall: bool = False,
                 empty_hd95: str = 'diagonal',
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self._init_writer(output_dir, format_only, keep_results)
        check_int('ignore_index', ignore_index)
        check_bool('include_background', include_background)
        check_bool('with_precision_recall', with_precision_recall)
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.with_precision_recall = with_precision_recall
        self.empty_hd95 = check_choice('empty_hd95', empty_hd95, ('diagonal', 'nan'))
        self.score_names = ['Dice', 'IoU', 'HD95']
        if with_precision_recall:
            self.score_names += ['Precision', 'Recall']

    def scored_classes(self) -> List[int]:
        """Indices of the classes of ``dataset_meta`` that this metric scores."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError("dataset_meta must hold 'classes', got "
                             f'{self.dataset_meta!r}')
        indices = [
            index for index in range(len(self.dataset_meta['classes']))
            if index != self.ignore_index and (self.include_background or index != 0)
        ]
        if not indices:
            raise ValueError(
                f"no class left to score among {self.dataset_meta['classes']} with "
                f'ignore_index={self.ignore_index}, '
                f'include_background={self.include_background}')
        return indices

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score every image of the batch; append one small dict per image (subset and
        one score per scored class for each score name) to ``self.results``."""
        classes = self.scored_classes()
        for data_sample in data_samples:
            pred = read_label_map(data_sample, 'pred_sem_seg')
            self.write_prediction(data_sample, pred)
            if self.format_only:
                self.results.append(dict(subset=data_sample.get('subset')))
                continue
            gt = read_label_map(data_sample, 'gt_sem_seg')
            if pred.shape != gt.shape:
                raise ValueError('pred_sem_seg and gt_sem_seg must have the same size, '
                                 f'got {pred.shape} and {gt.shape}')
            spacing = read_spacing(data_sample, 2)
            subset = data_sample.get('subset')
            result = self._score_image(pred, gt, classes, spacing)
            result['subset'] = None if subset is None else str(subset)
            result['in_mm'] = spacing is not None
            self.results.append(result)

    def _score_image(self, pred: np.ndarray, gt: np.ndarray, classes: List[int],
                     spacing: Optional[Tuple[float, ...]]) -> dict:
        valid = gt != self.ignore_index
        pixel = spacing or (1.0, 1.0)
        diagonal = math.hypot(gt.shape[0] * pixel[0], gt.shape[1] * pixel[1])
        one_empty_hd95 = diagonal if self.empty_hd95 == 'diagonal' else math.nan
        scores = {name: [] for name in self.score_names}
        for index in classes:
            pred_mask = (pred == index) & valid
            gt_mask = gt == index
            has_pred, has_gt = bool(pred_mask.any()), bool(gt_mask.any())
            if has_pred and has_gt:
                precision, recall = precision_recall(pred_mask, gt_mask)
                values = dict(
                    Dice=dice_score(pred_mask, gt_mask),
                    IoU=iou_score(pred_mask, gt_mask),
                    HD95=hd95(pred_mask, gt_mask, spacing),
                    Precision=precision,
                    Recall=recall)
            elif has_pred or has_gt:
                values = dict(
                    Dice=0.0, IoU=0.0, HD95=one_empty_hd95, Precision=0.0, Recall=0.0)
            else:
                values = dict(Dice=1.0, IoU=1.0, HD95=0.0, Precision=1.0, Recall=1.0)
            for name in self.score_names:
                scores[name].append(values[name])
        return scores

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Average the per-image scores over all images and over each subset.

        Args:
            results (list[dict]): the per-image dicts of all ranks.

        Returns:
            dict[str, float]: the keys listed in the class docstring (nothing with
            ``format_only``).
        """
        if self.format_only:
            return self.log_format_only(results)
        class_names = [self.dataset_meta['classes'][i] for i in self.scored_classes()]
        subsets = sorted({r['subset'] for r in results if r['subset'] is not None})
        groups = [('', 'all', results)] + [
            (f'{subset}/', subset, [r for r in results if r['subset'] == subset])
            for subset in subsets
        ]
        count_skipped = self.empty_hd95 == 'nan'
        table = PrettyTable()
        table.field_names = ['Subset', 'Class', 'Images'] + self.score_names + (
            ['HD95 skipped'] if count_skipped else [])
        metrics = OrderedDict()
        for key_prefix, label, group in groups:
            scores = {
                name:
                np.asarray([r[name] for r in group],
                           dtype=np.float64).reshape(len(group), len(class_names))
                for name in self.score_names
            }
            per_class = {
                name: [(1.0 if name == 'HD95' else 100.0) * mean_skip_nan(column)
                       for column in values.T]
                for name, values in scores.items()
            }
            means = {name: mean_skip_nan(values) for name, values in per_class.items()}
            skipped = np.isnan(scores['HD95']).sum(axis=0)
            for name in self.score_names:
                metrics[f'{key_prefix}m{name}'] = means[name]
            for name in self.score_names:
                for class_name, value in zip(class_names, per_class[name]):
                    metrics[f'{key_prefix}{name}.{class_name}'] = value
            if count_skipped:
                metrics[f'{key_prefix}HD95_skipped'] = float(skipped.sum())
            rows = [[class_name] + [per_class[name][i]
                                    for name in self.score_names] + [skipped[i]]
                    for i, class_name in enumerate(class_names)]
            if len(class_names) > 1:
                rows.append(['mean'] + [means[name]
                                        for name in self.score_names] + [skipped.sum()])
            for row in rows:
                table.add_row([label, row[0], len(group)] +
                              [f'{v:.2f}' for v in row[1:-1]] +
                              ([int(row[-1])] if count_skipped else []))
        logger = MMLogger.get_current_instance()
        in_mm = {r.get('in_mm', False) for r in results}
        unit = 'mm' if in_mm == {True} else 'pixels' if in_mm == {False} else \
            'mm or pixels'
        percent = ', '.join(n for n in self.score_names if n != 'HD95')
        print_log(
            f'per image {", ".join(self.score_names)} averaged over images '
            f'({percent} in %, HD95 in {unit}):', logger)
        print_log('\n' + table.get_string(), logger)
        return dict(metrics)
