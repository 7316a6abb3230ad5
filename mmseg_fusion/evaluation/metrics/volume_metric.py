"""Per-case 3-D Dice and HD95 per organ from 2-D slice predictions: Synapse protocol."""
import json
import logging
import math
import os.path as osp
import re
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ...utils.checks import check_bool, check_choice, check_int
from ..functional import dice_score, hd95, mean_skip_nan
from .medical_metric import PredictionWriterMixin, read_label_map


@METRICS.register_module()
class VolumeMetric(PredictionWriterMixin, BaseMetric):
    """Per-case 3-D Dice and HD95 per organ of a 2-D model evaluated slice by slice,
    averaged over cases: the Synapse multi-organ protocol.

    From "TransUNet: Transformers Make Strong Encoders for Medical Image Segmentation"
    (Chen et al., 2021), whose ``test_single_volume`` / ``calculate_metric_percase``
    define the protocol; TransUNet reports DSC 77.48 (%) and HD95 31.69 on Synapse.

    Each data sample is one slice. Its case and slice index are the sample's
    ``case`` and ``slice_index`` metainfo, which :class:`SynapseSliceDataset` sets
    and ``PackSegInputs`` carries when they are in its ``meta_keys`` (as in
    ``configs/_base_/datasets/synapse.py``). A sample without them (e.g. of mmseg's
    ``SynapseDataset``) is placed by ``case_pattern``, matched in full against the
    basename of ``img_path`` without its suffix (``case0001_slice045.png`` -> case
    ``case0001``, index 45). ``process`` keeps every slice's prediction and ground
    truth as (H, W) uint8 arrays (full resolution, about 0.5 MB per 512 x 512 slice);
    ``compute_metrics``, which sees the results of all ranks, groups them by case,
    sorts by index and stacks them along the last axis, so ``volume[..., k]`` is the
    k-th slice in index order (gaps in the indices are not filled and are logged).
    For each case and organ (every class of ``dataset_meta['classes']`` except index
    0, background, and ``ignore_index``; ground truth ``ignore_index`` voxels are
    excluded), with P, G the 3-D masks:

    - ``empty_convention='transunet'`` (default; TransUNet's
      ``calculate_metric_percase``): P and G non-empty -> (Dice, HD95); P non-empty
      and G empty -> (1, 0); otherwise (P empty) -> (0, 0). The last rule gives a
      missed organ HD95 0, and an organ absent from both Dice 0.
    - ``empty_convention='strict'``: P and G non-empty -> (Dice, HD95); both empty ->
      (1, 0); exactly one empty -> Dice 0 and HD95 NaN, left out of the HD95 average
      and counted in ``HD95_skipped``.

    Dice and HD95 follow :mod:`mmseg_fusion.evaluation.functional` (HD95 as medpy's).
    HD95 is in voxels by default, as TransUNet reports it (no spacing). With
    ``use_spacing=True`` it is in mm, with the voxel size (row, column, slice index
    axes of the stacked volume) ``(*spacing, slice_spacing)`` of the samples'
    metainfo (:class:`SynapseSliceDataset` reads it from the converter's
    ``spacing.json``; the slices of a case must agree); samples without it take
    their case's entry of ``spacing_file``, a JSON
    ``{"case0001": [row_mm, col_mm, slice_mm], ...}``.

    The per-organ score is the mean over cases (NaN skipped); ``mDice`` and ``mHD95``
    are the means over organs, as in TransUNet. Returned keys (Dice in percent, 0-100,
    like :class:`MedicalMetric`; HD95 in voxels or mm): ``mDice``, ``mHD95``,
    ``Dice.<organ>``, ``HD95.<organ>`` (e.g. ``Dice.aorta``), and with 'strict'
    ``HD95_skipped`` (number of (case, organ) pairs left out). A table with one row per
    organ and the mean is logged.

    Args:
        case_pattern (str): regular expression with named groups ``case`` and
            ``index`` (digits), for samples without ``case``/``slice_index``
            metainfo. Default: ``r'(?P<case>.+)_slice(?P<index>\\d+)'``.
        spacing_file (str, optional): path of a per-case spacing JSON, for samples
            without ``spacing``/``slice_spacing`` metainfo. Default: None.
        use_spacing (bool): report HD95 in mm, with the samples' spacing (or
            ``spacing_file``). Default: False.
        empty_convention (str): 'transunet' or 'strict'. Default: 'transunet'.
        ignore_index (int): ground-truth label whose voxels are not scored.
            Default: 255.
        collect_device (str): device used to gather results across ranks, 'cpu' or
            'gpu'. Default: 'cpu'.
        output_dir (str, optional): write every slice's prediction as a PNG label
            mask named after its image, e.g. ``case0001_slice045.png``
            (:class:`PredictionWriterMixin`). Default: None.
        format_only (bool): only write the predictions (needs ``output_dir``; no
            ground truth needed, no scores). Default: False.
        keep_results (bool): accepted because mmseg's tools/test.py passes it with
            ``--out``; the files in ``output_dir`` are always kept. Default: False.
        prefix (str, optional): prefix added by mmengine to every key. Default: None.

    Shape:
        - data_sample['pred_sem_seg']['data']: (1, H, W) integer labels of one slice.
        - data_sample['gt_sem_seg']['data']: (1, H, W) integer labels of one slice.
        - data_sample['case'], ['slice_index'] (optional): str, int.
        - data_sample['spacing'] (optional): (2, ) pixel size (row, column) in mm;
          data_sample['slice_spacing'] (optional): float, mm between slices.
        - stacked case volumes: (H, W, S) for S slices.
    """

    def __init__(self,
                 case_pattern: str = r'(?P<case>.+)_slice(?P<index>\d+)',
                 spacing_file: Optional[str] = None,
                 use_spacing: bool = False,
                 empty_convention: str = 'transunet',
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self._init_writer(output_dir, format_only, keep_results)
        try:
            self.case_pattern = re.compile(case_pattern)
        except (re.error, TypeError) as error:
            raise ValueError(f'case_pattern must be a regular expression, got '
                             f'{case_pattern!r} ({error})') from error
        if not {'case', 'index'} <= set(self.case_pattern.groupindex):
            raise ValueError("case_pattern must have the named groups 'case' and "
                             f"'index', got {case_pattern!r}")
        check_bool('use_spacing', use_spacing)
        check_int('ignore_index', ignore_index)
        self.empty_convention = check_choice('empty_convention', empty_convention,
                                             ('transunet', 'strict'))
        self.use_spacing = use_spacing
        self.ignore_index = ignore_index
        self.spacing_file = spacing_file
        self.spacings = (
            self._load_spacings(spacing_file)
            if use_spacing and spacing_file is not None else {})

    @staticmethod
    def _load_spacings(spacing_file: str) -> Dict[str, Tuple[float, float, float]]:
        if not osp.isfile(spacing_file):
            raise ValueError(f'spacing_file must be an existing JSON file, got '
                             f'{spacing_file!r}')
        with open(spacing_file) as f:
            raw = json.load(f)
        spacings = {}
        for case, spacing in raw.items():
            values = tuple(float(s) for s in spacing)
            if len(values) != 3 or min(values) <= 0:
                raise ValueError(f'spacing of {case!r} in {spacing_file} must be 3 '
                                 f'positive numbers (row, col, slice), got {spacing!r}')
            spacings[case] = values
        return spacings

    def organs(self) -> List[Tuple[int, str]]:
        """(class index, name) of the organs scored: all classes but 0 and
        ``ignore_index``."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError("dataset_meta must hold 'classes', got "
                             f'{self.dataset_meta!r}')
        classes = self.dataset_meta['classes']
        if len(classes) > 255:
            raise ValueError(f'at most 255 classes fit the uint8 slice store, got '
                             f'{len(classes)}')
        organs = [(i, name) for i, name in enumerate(classes)
                  if i != 0 and i != self.ignore_index]
        if not organs:
            raise ValueError(f'no organ class to score among {classes} (index 0 is '
                             f'background, ignore_index={self.ignore_index})')
        return organs

    def slice_of(self, data_sample: dict) -> Tuple[str, int]:
        """(case, slice index) of a data sample: its ``case`` and ``slice_index``
        metainfo, else :meth:`parse_slice` of its ``img_path``."""
        case, index = data_sample.get('case'), data_sample.get('slice_index')
        if case is not None and index is not None:
            if not isinstance(case, str) or isinstance(
                    index, bool) or not isinstance(index, (int, np.integer)):
                raise ValueError(
                    f'case must be a str and slice_index an int, got {case!r} and '
                    f'{index!r} ({data_sample.get("img_path", "a data sample")})')
            return case, int(index)
        if 'img_path' not in data_sample:
            raise ValueError('data sample must carry case and slice_index (or img_path '
                             f'to parse them from), got keys {sorted(data_sample)}')
        return self.parse_slice(data_sample['img_path'])

    @staticmethod
    def sample_spacing(data_sample: dict) -> Optional[Tuple[float, float, float]]:
        """(row, col, slice) mm of a data sample's ``spacing`` and ``slice_spacing``
        metainfo, or None when it carries neither."""
        spacing, between = data_sample.get('spacing'), data_sample.get('slice_spacing')
        if spacing is None and between is None:
            return None
        try:
            values = tuple(float(v) for v in np.asarray(spacing, np.float64).ravel())
            values += (float(between), )
        except (TypeError, ValueError):
            values = ()
        if len(values) != 3 or not min(values) > 0:
            raise ValueError(
                f'spacing (row, col mm) and slice_spacing (mm) of '
                f'{data_sample.get("img_path", "a data sample")} must be 2 and 1 '
                f'positive numbers, got {spacing!r} and {between!r}')
        return values

    def parse_slice(self, img_path: str) -> Tuple[str, int]:
        """Case name and slice index of ``img_path`` according to ``case_pattern``."""
        stem = osp.splitext(osp.basename(img_path))[0]
        match = self.case_pattern.fullmatch(stem)
        if match is None:
            raise ValueError(f'case_pattern {self.case_pattern.pattern!r} does not '
                             f'match the file name {stem!r} of img_path {img_path!r}')
        return match.group('case'), int(match.group('index'))

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Append (case, index, pred, gt) of every slice to ``self.results``, the masks
        as (H, W) uint8 arrays."""
        self.organs()
        for data_sample in data_samples:
            pred = read_label_map(data_sample, 'pred_sem_seg')
            self.write_prediction(data_sample, pred)
            if self.format_only:
                self.results.append(dict(img_path=data_sample.get('img_path')))
                continue
            case, index = self.slice_of(data_sample)
            gt = read_label_map(data_sample, 'gt_sem_seg')
            if pred.shape != gt.shape:
                raise ValueError('pred_sem_seg and gt_sem_seg must have the same size, '
                                 f'got {pred.shape} and {gt.shape}')
            spacing = self.sample_spacing(data_sample) if self.use_spacing else None
            self.results.append(
                dict(
                    case=case,
                    index=index,
                    pred=_to_uint8(pred),
                    gt=_to_uint8(gt),
                    spacing=spacing))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Stack the slices of each case, score each organ in 3-D, average over cases.

        Args:
            results (list[dict]): the per-slice dicts of all ranks.

        Returns:
            dict[str, float]: the keys listed in the class docstring (nothing with
            ``format_only``).
        """
        if self.format_only:
            return self.log_format_only(results)
        organs = self.organs()
        logger = MMLogger.get_current_instance()
        by_case = defaultdict(list)
        for result in results:
            by_case[result['case']].append(result)
        dice = {name: [] for _, name in organs}
        hd = {name: [] for _, name in organs}
        for case in sorted(by_case):
            pred, gt = self._stack_case(case, by_case[case], logger)
            spacing = self._case_spacing(case, by_case[case])
            valid = gt != self.ignore_index
            for index, name in organs:
                case_dice, case_hd = self._score_organ((pred == index) & valid,
                                                       gt == index, spacing)
                dice[name].append(case_dice)
                hd[name].append(case_hd)
        metrics = OrderedDict()
        organ_dice = {name: 100.0 * mean_skip_nan(v) for name, v in dice.items()}
        organ_hd = {name: mean_skip_nan(v) for name, v in hd.items()}
        metrics['mDice'] = mean_skip_nan(organ_dice.values())
        metrics['mHD95'] = mean_skip_nan(organ_hd.values())
        for name in organ_dice:
            metrics[f'Dice.{name}'] = organ_dice[name]
        for name in organ_hd:
            metrics[f'HD95.{name}'] = organ_hd[name]
        if self.empty_convention == 'strict':
            metrics['HD95_skipped'] = float(np.isnan(list(hd.values())).sum())
        table = PrettyTable()
        table.field_names = ['Organ', 'Dice', 'HD95']
        for name in organ_dice:
            table.add_row([name, f'{organ_dice[name]:.2f}', f'{organ_hd[name]:.2f}'])
        table.add_row(['mean', f"{metrics['mDice']:.2f}", f"{metrics['mHD95']:.2f}"])
        unit = 'mm' if self.use_spacing else 'voxels'
        print_log(
            f'per case 3-D results over {len(by_case)} cases (Dice in %, HD95 in '
            f'{unit}):', logger)
        print_log('\n' + table.get_string(), logger)
        return dict(metrics)

    @staticmethod
    def _stack_case(case: str, slices: List[dict],
                    logger: MMLogger) -> Tuple[np.ndarray, np.ndarray]:
        """The (H, W, S) prediction and ground-truth volumes of one case, slices in
        ascending index order along the last axis."""
        slices = sorted(slices, key=lambda s: s['index'])
        indices = [s['index'] for s in slices]
        if len(set(indices)) != len(indices):
            repeated = sorted({i for i in indices if indices.count(i) > 1})
            raise ValueError(
                f'case {case!r} has slice indices {repeated} more than once')
        shapes = {s['gt'].shape for s in slices}
        if len(shapes) > 1:
            raise ValueError(f'slices of case {case!r} must have one size, got '
                             f'{sorted(shapes)}')
        if indices[-1] - indices[0] + 1 != len(indices):
            print_log(
                f'case {case!r}: slice indices {indices[0]}..{indices[-1]} have '
                f'gaps ({len(indices)} slices); stacked without filling them',
                logger,
                level=logging.WARNING)
        pred = np.stack([s['pred'] for s in slices], axis=-1)
        gt = np.stack([s['gt'] for s in slices], axis=-1)
        return pred, gt

    def _case_spacing(self, case: str,
                      slices: List[dict]) -> Optional[Tuple[float, float, float]]:
        """The case's voxel size: its slices' (which must agree), else its entry of
        ``spacing_file``; None without ``use_spacing``."""
        if not self.use_spacing:
            return None
        carried = [s.get('spacing') for s in slices]
        known = {spacing for spacing in carried if spacing is not None}
        if known:
            if len(known) > 1 or None in carried:
                raise ValueError(f'the slices of case {case!r} must carry one spacing, '
                                 f'got {sorted(known)} and {carried.count(None)} '
                                 'without')
            return known.pop()
        if case not in self.spacings:
            where = (f'is missing from spacing_file (cases: {sorted(self.spacings)})'
                     if self.spacing_file is not None else 'carries no spacing')
            raise ValueError(
                f'use_spacing=True: case {case!r} {where}; use SynapseSliceDataset '
                "with 'spacing' and 'slice_spacing' in PackSegInputs' meta_keys, or "
                'pass spacing_file')
        return self.spacings[case]

    def _score_organ(
            self, pred: np.ndarray, gt: np.ndarray,
            spacing: Optional[Tuple[float, float, float]]) -> Tuple[float, float]:
        """(Dice fraction, HD95) of one organ in one case under the empty convention."""
        has_pred, has_gt = bool(pred.any()), bool(gt.any())
        if has_pred and has_gt:
            return dice_score(pred, gt), hd95(pred, gt, spacing)
        if self.empty_convention == 'transunet':
            return (1.0, 0.0) if has_pred else (0.0, 0.0)
        return (1.0, 0.0) if not (has_pred or has_gt) else (0.0, math.nan)


def _to_uint8(labels: np.ndarray) -> np.ndarray:
    """``labels`` as a compact uint8 copy; labels outside 0..255 are an error."""
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f'slice labels must lie in 0..255 to be stored as uint8, got '
                         f'{labels.min()}..{labels.max()}')
    return labels.astype(np.uint8)
