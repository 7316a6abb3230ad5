"""Per-case, per-organ Dice, HD95 (mm) and NSD of 3-D predictions, in the original
image space; optional NIfTI export of the predictions."""
import csv
import logging
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import nibabel as nib
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, MMLogger, print_log
from mmengine.structures import BaseDataElement
from mmseg.registry import METRICS
from prettytable import PrettyTable
from scipy.ndimage import find_objects

from ...utils.checks import check_bool, check_choice, check_int
from ..functional import (HD95_METHODS, _check_tolerance, dice_score,
                          hd95_from_distances, mean_skip_nan, nsd_from_distances,
                          surface_distances)

EMPTY_CONVENTIONS = ('nnunet', 'transunet', 'monai')
SCORE_NAMES = ('Dice', 'HD95', 'NSD')
NAN = float('nan')


@METRICS.register_module()
class Volume3DMetric(BaseMetric):
    """Dice, HD95 (mm) and normalised surface Dice per organ of every case of a
    volumetric (3-D) model, averaged over cases; optionally the predictions written
    as NIfTI files aligned with the input images.

    Each data sample is one whole case, scored in the original image space: the
    segmentor returns ``pred_sem_seg`` at the image's ``original_shape`` and the label
    is never resampled at test time, so voxel sizes are ``original_spacing`` (mm).
    ``process`` scores the case at once and keeps only its numbers (a few floats per
    organ), so memory stays flat over a test set of whole CT volumes.

    Organs are the classes of ``dataset_meta['classes']`` except index 0
    (background) and ``ignore_index``; ground-truth ``ignore_index`` voxels are taken
    out of the prediction masks. For each case and organ, with P and G the predicted
    and ground-truth masks, when both are non-empty:

    - Dice: :func:`~mmseg_fusion.evaluation.functional.dice_score`;
    - HD95 in mm: the 95th percentile Hausdorff distance of the surfaces, pooled as
      medpy computes it (``hd95_method='medpy'``, the Synapse/TransUNet literature)
      or the larger directed percentile as MONAI computes it (``'monai'``);
    - NSD: normalised surface Dice at ``nsd_tolerance`` mm, the share of both
      surfaces within the tolerance of the other, counted per surface voxel as
      ``monai.metrics.compute_surface_dice`` (default ``use_subvoxels=False``)
      counts it (:func:`~mmseg_fusion.evaluation.functional.normalized_surface_dice`).

    When P or G is empty, ``empty_convention`` decides (NaN scores are left out of
    every mean):

    ========================  ==============  ==============  ==============
    case                      'nnunet'        'monai'         'transunet'
    ========================  ==============  ==============  ==============
    P and G empty             NaN, NaN, NaN   NaN, NaN, NaN   0, 0, 0
    P non-empty, G empty      0, NaN, 0       NaN, NaN, NaN   1, 0, 1
    P empty, G non-empty      0, NaN, 0       0, NaN, 0       0, 0, 0
    ========================  ==============  ==============  ==============

    (Dice, HD95, NSD per cell.) 'nnunet': nnU-Net v2's ``compute_metrics`` (Dice NaN
    when ``tp + fp + fn == 0``, i.e. both empty; 0 when exactly one is empty).
    'monai': MONAI's ``DiceMetric`` default ``ignore_empty=True`` (NaN whenever G is
    empty), applied to all three scores (MONAI's own ``compute_surface_dice`` gives
    0 when only P is non-empty). 'transunet': TransUNet's ``calculate_metric_percase``
    ((1, 0) when only P is non-empty, else (0, 0)); NSD, which TransUNet does not
    report, takes the Dice value. HD95 of exactly one empty mask is undefined:
    nnU-Net reports no HD95 and MONAI's ``compute_hausdorff_distance`` returns NaN
    with a warning; here it is NaN and the pair is counted in ``HD95_skipped``.

    Results (Dice and NSD in percent, HD95 in mm; each organ's score is the mean over
    the cases where it is not NaN, each ``m`` score the mean over organs):
    ``mDice``, ``mHD95``, ``mNSD``, ``Dice.<organ>``, ``HD95.<organ>``,
    ``NSD.<organ>`` (e.g. ``Dice.liver``), and, except with 'transunet',
    ``HD95_skipped``: the (case, organ) pairs with a Dice but no HD95 (exactly one
    of P and G empty). A table of the same numbers is logged, and a per-case CSV is
    written: one row per case (sorted by ``case_id``), columns ``case_id`` then
    ``Dice.<organ>``, ``HD95.<organ>``, ``NSD.<organ>`` for every organ, same
    units, ``nan`` where a score is undefined. The CSV goes to ``csv_dir``, by
    default the runner's log folder (``<work_dir>/<timestamp>/``, the folder of the
    current ``MMLogger``'s log file, beside the run's log and JSON scalars); its name
    is ``per_case_test.csv`` for ``tools/test.py``, ``per_case_val_iter<N>.csv`` for
    a validation after N training iterations, ``per_case.csv`` outside a runner. An
    existing file is never overwritten: the name gets ``_1``, ``_2``, ... instead.
    Without ``csv_dir`` and without a runner log file, no CSV is written (logged).

    With ``output_dir`` (``tools/test.py --out DIR`` sets it), every case's
    prediction is written to ``<output_dir>/<case_id>.nii.gz``: uint8 labels of
    shape ``original_shape`` with ``original_affine`` as both qform and sform (code
    1, scanner), so it opens aligned over the input CT in any viewer. An existing
    file is an error naming it (predictions of another run are never replaced). With
    ``format_only=True`` the files are written and nothing is scored (no label
    needed) and ``compute_metrics`` returns an empty dict.

    Args:
        nsd_tolerance (float | dict[str, float]): NSD tolerance in mm, one value for
            every organ or ``{organ name: mm}`` covering every scored organ.
            Default: 1.0, the tolerance of the FLARE 2021 abdominal-organ challenge
            (JunMa11/FLARE, ``Evaluation/DSC_NSD_eval.py``, "NSD-1mm"); FLARE 2022
            uses per-organ tolerances (liver 5, kidneys 3, spleen 3, pancreas 5,
            aorta 2, IVC 2, adrenal glands 2, gallbladder 2, esophagus 3, stomach 5,
            duodenum 7 mm), which the dict form reproduces.
        empty_convention (str): 'nnunet', 'monai' or 'transunet', see the table.
            Default: 'nnunet'.
        hd95_method (str): 'medpy' or 'monai'. Default: 'medpy'.
        ignore_index (int): ground-truth label whose voxels are not scored.
            Default: 255.
        csv_dir (str, optional): folder of the per-case CSV (created if missing).
            Default: None (the runner's log folder).
        output_dir (str, optional): folder of the NIfTI predictions (created if
            missing). Default: None (nothing written).
        format_only (bool): only write the predictions, score nothing; needs
            ``output_dir``. Default: False.
        keep_results (bool): set by ``tools/test.py --out`` for mmseg's
            ``IoUMetric``; the NIfTI files written here are always kept, so the
            value changes nothing. Default: False.
        collect_device (str): device used to gather results across ranks, 'cpu' or
            'gpu'. Default: 'cpu'.
        prefix (str, optional): prefix added by mmengine to every key. Default: None.

    Shape and metainfo of a data sample (a dict, as mmengine's evaluator passes
    ``VolumeSegDataSample.to_dict()``, or the data sample itself):
        - ``pred_sem_seg['data']``: (1, D, H, W) or (D, H, W) integer labels at
          ``original_shape``.
        - ``gt_sem_seg['data']``: the same shape (not needed with ``format_only``).
        - ``case_id`` (str; else the name of ``img_path`` without its suffix),
          ``original_spacing`` (3 mm values, needed to score), ``original_affine``
          (4 x 4, needed with ``output_dir``), ``original_shape`` (checked against
          the prediction when present).
    """

    def __init__(self,
                 nsd_tolerance: Union[float, Dict[str, float]] = 1.0,
                 empty_convention: str = 'nnunet',
                 hd95_method: str = 'medpy',
                 ignore_index: int = 255,
                 csv_dir: Optional[str] = None,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(nsd_tolerance, dict):
            for organ, value in nsd_tolerance.items():
                _check_tolerance(value, f'nsd_tolerance[{organ!r}]')
            self.nsd_tolerance = {str(k): float(v) for k, v in nsd_tolerance.items()}
        else:
            self.nsd_tolerance = _check_tolerance(nsd_tolerance, 'nsd_tolerance')
        check_choice('empty_convention', empty_convention, EMPTY_CONVENTIONS)
        check_choice('hd95_method', hd95_method, HD95_METHODS)
        check_int('ignore_index', ignore_index)
        check_bool('format_only', format_only)
        check_bool('keep_results', keep_results)
        for name, value in (('csv_dir', csv_dir), ('output_dir', output_dir)):
            if value is not None and not (isinstance(value, str) and value):
                raise ValueError(f'{name} must be a folder path or None, got {value!r}')
        if format_only and output_dir is None:
            raise ValueError('format_only=True writes the predictions only: it needs '
                             'an output_dir, got None')
        self.empty_convention = empty_convention
        self.hd95_method = hd95_method
        self.ignore_index = ignore_index
        self.csv_dir = csv_dir
        self.output_dir = output_dir
        self.format_only = format_only
        if output_dir is not None:
            os.makedirs(output_dir, exist_ok=True)

    def organs(self) -> List[Tuple[int, str]]:
        """(class index, name) of the organs scored: all classes of ``dataset_meta``
        but 0 (background) and ``ignore_index``."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError("dataset_meta must hold 'classes', got "
                             f'{self.dataset_meta!r}')
        classes = self.dataset_meta['classes']
        organs = [(i, str(name)) for i, name in enumerate(classes)
                  if i != 0 and i != self.ignore_index]
        if not organs:
            raise ValueError(f'no organ class to score among {classes} (index 0 is '
                             f'background, ignore_index={self.ignore_index})')
        if isinstance(self.nsd_tolerance, dict):
            names = [name for _, name in organs]
            missing = [name for name in names if name not in self.nsd_tolerance]
            unknown = sorted(set(self.nsd_tolerance) - set(names))
            if missing or unknown:
                raise ValueError(f'nsd_tolerance must give one tolerance (mm) per '
                                 f'organ {names}; missing {missing}, unknown '
                                 f'{unknown}')
        return organs

    def tolerance(self, organ: str) -> float:
        """The NSD tolerance (mm) of ``organ``."""
        if isinstance(self.nsd_tolerance, dict):
            return self.nsd_tolerance[organ]
        return self.nsd_tolerance

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score every case of the batch (and write its prediction when
        ``output_dir`` is set); append one small dict of numbers per case to
        ``self.results``."""
        organs = None if self.format_only else self.organs()
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            case_id = _case_id(data_sample)
            pred = _read_volume(data_sample, 'pred_sem_seg', case_id)
            if not self.format_only:
                gt = _read_volume(data_sample, 'gt_sem_seg', case_id)
                if pred.shape != gt.shape:
                    raise ValueError(f'case {case_id!r}: pred_sem_seg and gt_sem_seg '
                                     f'must have the same shape, got {pred.shape} and '
                                     f'{gt.shape}')
                spacing = _read_spacing(data_sample, case_id)
            if self.output_dir is not None:
                self._write_prediction(case_id, pred, data_sample)
            if self.format_only:
                self.results.append(dict(case_id=case_id))
                continue
            result = dict(case_id=case_id)
            result.update(self._score_case(pred, gt, spacing, organs))
            self.results.append(result)

    def _score_case(self, pred: np.ndarray, gt: np.ndarray, spacing: Tuple[float, float,
                                                                           float],
                    organs: List[Tuple[int, str]]) -> Dict[str, List[float]]:
        """Dice (fraction), HD95 (mm) and NSD (fraction) of every organ of one case.

        Each organ is scored inside the bounding box of its predicted and true
        voxels (``find_objects``), which holds both masks and so both surfaces."""
        max_label = max(index for index, _ in organs)
        pred_boxes = find_objects(pred, max_label)
        gt_boxes = find_objects(gt, max_label)
        scores = {name: [] for name in SCORE_NAMES}
        for index, name in organs:
            boxes = [b for b in (pred_boxes[index - 1], gt_boxes[index - 1]) if b]
            if boxes:
                box = tuple(
                    slice(
                        min(b[axis].start
                            for b in boxes), max(b[axis].stop for b in boxes))
                    for axis in range(3))
                gt_box = gt[box]
                pred_mask = (pred[box] == index) & (gt_box != self.ignore_index)
                gt_mask = gt_box == index
                has_pred, has_gt = bool(pred_mask.any()), bool(gt_mask.any())
            else:
                has_pred = has_gt = False
            if has_pred and has_gt:
                distances = surface_distances(pred_mask, gt_mask, spacing)
                values = (dice_score(pred_mask, gt_mask),
                          hd95_from_distances(*distances, method=self.hd95_method),
                          nsd_from_distances(*distances, self.tolerance(name)))
            else:
                values = self._empty_scores(has_pred, has_gt)
            for score_name, value in zip(SCORE_NAMES, values):
                scores[score_name].append(float(value))
        return scores

    def _empty_scores(self, has_pred: bool, has_gt: bool) -> Tuple[float, float, float]:
        """(Dice, HD95, NSD) of an organ with an empty P or G (the class table)."""
        if self.empty_convention == 'transunet':
            return (1.0, 0.0, 1.0) if has_pred else (0.0, 0.0, 0.0)
        if not has_gt and (self.empty_convention == 'monai' or not has_pred):
            return NAN, NAN, NAN
        return 0.0, NAN, 0.0

    def _write_prediction(self, case_id: str, pred: np.ndarray,
                          data_sample: dict) -> None:
        """Write ``pred`` to ``<output_dir>/<case_id>.nii.gz`` with the original
        affine; refuse to replace an existing file."""
        affine = data_sample.get('original_affine')
        if affine is None:
            raise ValueError(f'case {case_id!r} has no original_affine: writing its '
                             'prediction as NIfTI needs the affine of the image file '
                             '(set by LoadVolumeFromFile)')
        affine = np.asarray(
            affine.cpu() if isinstance(affine, torch.Tensor) else affine,
            dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f'original_affine of case {case_id!r} must be a finite '
                             f'4 x 4 matrix, got shape {affine.shape}')
        original_shape = data_sample.get('original_shape')
        if original_shape is not None and tuple(pred.shape) != tuple(
                int(s) for s in original_shape):
            raise ValueError(f'case {case_id!r}: the prediction must have the '
                             f'original_shape {tuple(original_shape)} to be written '
                             f'with the original affine, got {pred.shape}')
        if pred.size and (pred.min() < 0 or pred.max() > 255):
            raise ValueError(f'case {case_id!r}: labels must lie in 0..255 to be '
                             f'written as uint8, got {pred.min()}..{pred.max()}')
        path = osp.join(self.output_dir, f'{case_id}.nii.gz')
        if osp.exists(path):
            raise FileExistsError(f'{path} already exists: Volume3DMetric never '
                                  'overwrites a prediction; choose another '
                                  'output_dir or remove the file')
        image = nib.Nifti1Image(pred.astype(np.uint8), affine)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        image.header.set_xyzt_units('mm')
        nib.save(image, path)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Average the per-case scores per organ and over organs; log a table and
        write the per-case CSV.

        Args:
            results (list[dict]): the per-case dicts of all ranks.

        Returns:
            dict[str, float]: the keys listed in the class docstring (empty with
            ``format_only``).
        """
        logger = MMLogger.get_current_instance()
        if self.format_only:
            print_log(
                f'{len(results)} predictions written to {self.output_dir} '
                '(format_only: nothing scored)', logger)
            return {}
        names = [name for _, name in self.organs()]
        case_ids = [r['case_id'] for r in results]
        repeated = sorted({c for c in case_ids if case_ids.count(c) > 1})
        if repeated:
            raise ValueError(f'case ids must be unique, got {repeated} more than once')
        results = sorted(results, key=lambda r: r['case_id'])
        scale = dict(Dice=100.0, HD95=1.0, NSD=100.0)
        tables = {
            score:
            scale[score] * np.asarray([r[score]
                                       for r in results], dtype=np.float64).reshape(
                                           len(results), len(names))
            for score in SCORE_NAMES
        }
        per_organ = {
            score: [mean_skip_nan(column) for column in values.T]
            for score, values in tables.items()
        }
        metrics = OrderedDict()
        for score in SCORE_NAMES:
            metrics[f'm{score}'] = mean_skip_nan(per_organ[score])
        for score in SCORE_NAMES:
            for name, value in zip(names, per_organ[score]):
                metrics[f'{score}.{name}'] = value
        if self.empty_convention != 'transunet':
            skipped = ~np.isnan(tables['Dice']) & np.isnan(tables['HD95'])
            metrics['HD95_skipped'] = float(skipped.sum())
        self._log_table(names, tables, per_organ, metrics, len(results), logger)
        self._write_csv(names, results, tables, logger)
        return dict(metrics)

    def _log_table(self, names: List[str], tables: Dict[str, np.ndarray],
                   per_organ: Dict[str, List[float]], metrics: dict, num_cases: int,
                   logger: MMLogger) -> None:
        uniform = not isinstance(self.nsd_tolerance, dict)
        nsd_header = (f'NSD@{self.nsd_tolerance:g}mm (%)' if uniform else 'NSD (%)')
        table = PrettyTable()
        table.field_names = (['Organ', 'Cases', 'Dice (%)', 'HD95 (mm)', nsd_header] +
                             ([] if uniform else ['NSD tolerance (mm)']))
        counts = (~np.isnan(tables['Dice'])).sum(axis=0)
        for i, name in enumerate(names):
            table.add_row([name, int(counts[i])] +
                          [f'{per_organ[s][i]:.2f}' for s in SCORE_NAMES] +
                          ([] if uniform else [f'{self.tolerance(name):g}']))
        table.add_row(['mean', ''] + [f"{metrics[f'm{s}']:.2f}"
                                      for s in SCORE_NAMES] + ([] if uniform else ['']))
        print_log(
            f'per case 3-D results over {num_cases} case{"s" * (num_cases != 1)}, '
            'original image space '
            f"(empty_convention='{self.empty_convention}', "
            f"hd95_method='{self.hd95_method}'; Cases: cases with a Dice):", logger)
        print_log('\n' + table.get_string(), logger)

    def _write_csv(self, names: List[str], results: List[dict],
                   tables: Dict[str, np.ndarray], logger: MMLogger) -> None:
        path = self._csv_path()
        if path is None:
            print_log(
                'no per-case CSV written: no csv_dir given and no runner log '
                'folder found',
                logger,
                level=logging.WARNING)
            return
        header = ['case_id'] + [f'{s}.{n}' for s in SCORE_NAMES for n in names]
        with open(path, 'x', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row, result in enumerate(results):
                writer.writerow([result['case_id']] + [
                    _format_number(tables[s][row, i]) for s in SCORE_NAMES
                    for i in range(len(names))
                ])
        print_log(
            f'per-case scores (Dice and NSD in %, HD95 in mm) written to '
            f'{path}', logger)

    def _csv_path(self) -> Optional[str]:
        """A new file path for the per-case CSV (see the class docstring)."""
        folder = self.csv_dir
        if folder is None:
            log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
            if not log_file:
                return None
            folder = osp.dirname(osp.abspath(log_file))
        os.makedirs(folder, exist_ok=True)
        hub = MessageHub.get_current_instance()
        stage = hub.get_info('loop_stage')
        stem = 'per_case'
        if stage is not None:
            stem += f'_{stage}'
            done = hub.get_info('iter')
            if stage == 'val' and done is not None:
                # RuntimeInfoHook stores the index of the last training iteration
                stem += f'_iter{done + 1}'
        path = osp.join(folder, f'{stem}.csv')
        count = 0
        while osp.exists(path):
            count += 1
            path = osp.join(folder, f'{stem}_{count}.csv')
        return path


def _case_id(data_sample: dict) -> str:
    """``case_id`` of the data sample, else its ``img_path`` name without suffix."""
    case_id = data_sample.get('case_id')
    if case_id is None:
        img_path = data_sample.get('img_path')
        if not img_path:
            raise ValueError('data sample must carry case_id or img_path, got keys '
                             f'{sorted(data_sample)}')
        case_id = osp.basename(img_path)
        for suffix in ('.nii.gz', '.nii'):
            if case_id.endswith(suffix):
                case_id = case_id[:-len(suffix)]
                break
        else:
            case_id = osp.splitext(case_id)[0]
    case_id = str(case_id)
    if not case_id or '/' in case_id or '\\' in case_id or case_id in ('.', '..'):
        raise ValueError(f'case_id must be a file name without folders, got '
                         f'{case_id!r}')
    return case_id


def _read_volume(data_sample: dict, key: str, case_id: str) -> np.ndarray:
    """``data_sample[key]['data']`` as a (D, H, W) integer numpy array."""
    try:
        data = data_sample[key]['data']
    except (KeyError, TypeError) as error:
        raise ValueError(f"case {case_id!r}: data sample must carry {key}['data'], "
                         f'got keys {sorted(data_sample)}') from error
    array = data.cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"case {case_id!r}: {key}['data'] must be a (1, D, H, W) or "
                         f'(D, H, W) label volume, got shape {array.shape}')
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"case {case_id!r}: {key}['data'] must hold integer class "
                         f'ids, got dtype {array.dtype}')
    return array


def _read_spacing(data_sample: dict, case_id: str) -> Tuple[float, float, float]:
    """``original_spacing`` of the case: 3 positive finite numbers (mm)."""
    spacing = data_sample.get('original_spacing')
    if spacing is None:
        raise ValueError(f'case {case_id!r} has no original_spacing: HD95 and NSD in '
                         'mm need the voxel size of the original image (set by '
                         'LoadVolumeFromFile)')
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.cpu()
    values = np.asarray(spacing, dtype=np.float64).ravel()
    if values.shape != (3, ) or not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f'original_spacing of case {case_id!r} must be 3 positive '
                         f'numbers (mm), got {spacing!r}')
    return tuple(float(v) for v in values)


def _format_number(value: float) -> str:
    return 'nan' if math.isnan(value) else f'{value:.4f}'
