"""Synapse multi-organ CT slices with their case, slice index and voxel spacing."""
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import mmengine.fileio as fileio
from mmseg.datasets import SynapseDataset
from mmseg.registry import DATASETS

from .slice_checks import check_data_list

CONVERTER = 'tools/dataset_converters/synapse.py'


@DATASETS.register_module()
class SynapseSliceDataset(SynapseDataset):
    """Axial slices of the Synapse multi-organ CT cases (8 organs + background), each
    carrying the facts of the volume it comes from.

    The layout is that of ``tools/dataset_converters/synapse.py`` (TransUNet protocol,
    "TransUNet: Transformers Make Strong Encoders for Medical Image Segmentation",
    Chen et al., 2021)::

        {data_root}/img_dir/{split}/case0001_slice045.png   CT slice, uint8 PNG
        {data_root}/ann_dir/{split}/case0001_slice045.png   labels 0..8
        {data_root}/spacing.json    {"case0001": [row_mm, col_mm, slice_mm], ...}

    Classes and palette are mmseg's :class:`SynapseDataset`'s. Beyond it, every data
    info (and, through ``PackSegInputs``' ``meta_keys``, every data sample) carries:

    - ``case`` (str): the case the slice belongs to, e.g. ``'case0001'``;
    - ``slice_index`` (int): its index along the case's slice axis (45);
    - ``spacing`` (tuple[float, float]): the (row, column) pixel size of the
      original slice in mm, as :class:`MedicalMetric` reads a 2-D sample's spacing;
    - ``slice_spacing`` (float): the distance between consecutive slices in mm.

    :class:`VolumeMetric` stacks the slices of each case by ``case`` and
    ``slice_index`` and, with ``use_spacing=True``, scores HD95 in mm with
    ``(*spacing, slice_spacing)``. Case and index come from the converter's file
    names (``{case}_slice{index}``, :attr:`SLICE_NAME`); the spacings from
    ``spacing_file``, read when the data list is loaded, relative to ``data_root``,
    so a dataset moved with ``--cfg-options data_root=...`` reads its own file.

    Args:
        img_suffix (str): image file suffix; the converter writes PNG.
            Default: '.png'.
        seg_map_suffix (str): label file suffix. Default: '.png'.
        spacing_file (str, optional): the per-case spacing JSON, relative to
            ``data_root`` unless absolute; None leaves ``spacing`` and
            ``slice_spacing`` out (HD95 can then only be scored in voxels).
            Default: 'spacing.json'.
        check_files (bool): when the dataset is built, open every slice and decode
            every label (:func:`~.slice_checks.check_slice_pair`), so an unreadable
            or truncated file, a label of another size than its slice or ids outside
            0..8 are an error naming the file before training starts. Default: True.
        **kwargs: the arguments of mmseg's ``SynapseDataset`` / ``BaseSegDataset``
            (data_root, data_prefix, ann_file, pipeline, ...).

    Shape:
        image: (H, W, 3) uint8 (the grey slice as three channels);
        label: (H, W) uint8 with values in 0..8.

    Raises:
        FileNotFoundError: ``spacing_file`` is missing (the message names the
            converter that writes it).
        ValueError: a file name is not ``{case}_slice{index}``, or a case is missing
            from ``spacing_file`` or has a spacing that is not 3 positive numbers.
            With ``check_files``: a bad slice or label (see above).
    """
    SLICE_NAME = re.compile(r'(?P<case>.+)_slice(?P<index>\d+)')

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 spacing_file: Optional[str] = 'spacing.json',
                 check_files: bool = True,
                 **kwargs) -> None:
        if spacing_file is not None and (not isinstance(spacing_file, str)
                                         or not spacing_file):
            raise ValueError(f'spacing_file must be None or a non-empty str, got '
                             f'{spacing_file!r}')
        self.spacing_file = spacing_file
        self.check_files = check_files
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def spacing_path(self) -> Optional[str]:
        """Where the spacing JSON is read from: ``spacing_file`` joined to
        ``data_root`` (unless absolute or a URL), or None without one."""
        if self.spacing_file is None:
            return None
        if self.data_root and not (osp.isabs(self.spacing_file)
                                   or '://' in self.spacing_file):
            return osp.join(self.data_root, self.spacing_file)
        return self.spacing_file

    def load_spacings(self) -> Dict[str, Tuple[float, float, float]]:
        """{case: (row_mm, col_mm, slice_mm)} from :meth:`spacing_path`."""
        path = self.spacing_path()
        if path is None:
            return {}
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'spacing file {path} does not exist: {CONVERTER} writes it beside '
                'img_dir/ (or pass spacing_file=None to score HD95 in voxels only)')
        raw = json.loads(fileio.get_text(path, backend_args=self.backend_args))
        if not isinstance(raw, dict):
            raise ValueError(f'{path} must hold {{case: [row_mm, col_mm, slice_mm]}}, '
                             f'got {type(raw).__name__}')
        spacings = {}
        for case, spacing in raw.items():
            try:
                values = tuple(float(s) for s in spacing)
            except (TypeError, ValueError):
                values = ()
            if len(values) != 3 or min(values) <= 0:
                raise ValueError(f'spacing of {case!r} in {path} must be 3 positive '
                                 f'numbers (row, col, slice mm), got {spacing!r}')
            spacings[case] = values
        return spacings

    def parse_slice_name(self, img_path: str) -> Tuple[str, int]:
        """(case, slice index) of an image file named ``{case}_slice{index}``."""
        stem = osp.basename(img_path)
        if stem.endswith(self.img_suffix):
            stem = stem[:-len(self.img_suffix)]
        match = self.SLICE_NAME.fullmatch(stem)
        if match is None:
            raise ValueError(
                f'image {img_path} is not named {{case}}_slice{{index}} as {CONVERTER} '
                'names slices (e.g. case0001_slice045.png)')
        return match.group('case'), int(match.group('index'))

    def load_data_list(self) -> List[dict]:
        """mmseg's data list, each info with ``case``, ``slice_index`` and (with a
        spacing file) ``spacing`` and ``slice_spacing``."""
        data_list = super().load_data_list()
        spacings = self.load_spacings()
        for info in data_list:
            case, index = self.parse_slice_name(info['img_path'])
            info['case'] = case
            info['slice_index'] = index
            if self.spacing_file is None:
                continue
            if case not in spacings:
                raise ValueError(f'case {case!r} of {info["img_path"]} is missing from '
                                 f'{self.spacing_path()} (cases: {sorted(spacings)})')
            row, col, between = spacings[case]
            info['spacing'] = (row, col)
            info['slice_spacing'] = between
        if self.check_files:
            check_data_list(data_list, len(self.metainfo['classes']), self.pipeline,
                            self.backend_args)
        return data_list
