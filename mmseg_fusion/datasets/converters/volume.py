"""Shared logic of the volumetric (NIfTI) converters: BTCV and AMOS.

Both write one layout, read by ``BTCVDataset`` and ``AMOSDataset``::

    {out}/imagesTr/{case}.nii.gz    image, the source file's bytes (geometry untouched)
    {out}/labelsTr/{case}.nii.gz    labels, uint8 ids of the dataset, written with the
                                    image's header (same shape, affine, qform, sform)
    {out}/imagesTs/{case}.nii.gz    unlabelled images, when the source has them
    {out}/dataset.json              labels, splits (and folds), where it came from

Nothing is written until every case's layout and header geometry are checked; the
conversion then writes into a temporary folder beside the output and moves the entries
in at the end (:mod:`.staging`), so a failure found while converting (a label id out
of range, a truncated image or label) leaves the output folder as it was.
"""
import gzip
import json
import os
import os.path as osp
import shutil
import sys
import zlib
from typing import Callable, ContextManager, Dict, List, NamedTuple, Optional, Sequence

import nibabel as nib
import numpy as np
from mmengine.utils import track_iter_progress

from .staging import output_is_taken as entries_taken
from .staging import staged_output as staged_entries

OUTPUT_ENTRIES = ('imagesTr', 'labelsTr', 'imagesTs', 'dataset.json')
NIFTI_SUFFIXES = ('.nii.gz', '.nii')
# Largest difference allowed between an image's and its label's affine (mm, or the
# unit-free direction cosines): header float noise, not a different grid.
AFFINE_TOLERANCE = 1e-3


class Case(NamedTuple):
    """One source case: its output id, image file and label file (None: unlabelled)."""
    case_id: str
    image: str
    label: Optional[str]


def nifti_stem(filename: str) -> Optional[str]:
    """``filename`` without ``.nii.gz`` or ``.nii``; None for any other file."""
    for suffix in NIFTI_SUFFIXES:
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[:-len(suffix)]
    return None


def load_header(path: str) -> nib.spatialimages.SpatialImage:
    """Open a NIfTI file (header only; the voxels are read on demand) as a 3-D volume.

    Raises:
        ValueError: the file cannot be read as NIfTI, or is not 3-D.
    """
    try:
        volume = nib.load(path)
    except Exception as error:  # nibabel raises several types for unreadable files
        raise ValueError(f'cannot read {path} as NIfTI: {error}') from None
    if len(volume.shape) != 3:
        raise ValueError(f'{path} has shape {volume.shape}: expected a 3-D volume')
    return volume


def check_geometry(image_path: str,
                   label_path: str,
                   atol: float = AFFINE_TOLERANCE) -> None:
    """Check that a label lies on its image's grid: same 3-D shape, affines within
    ``atol``.

    Raises:
        ValueError: naming both files, the two shapes or the two affines.
    """
    image, label = load_header(image_path), load_header(label_path)
    if image.shape != label.shape:
        raise ValueError(f'label {label_path} has shape {label.shape} but its image '
                         f'{image_path} has shape {image.shape}: expected the same '
                         'grid')
    difference = float(np.abs(image.affine - label.affine).max())
    if difference > atol:
        raise ValueError(
            f'label {label_path} and its image {image_path} have different affines '
            f'(largest difference {difference:.4g} > {atol:g}): image '
            f'{np.round(image.affine, 4).tolist()}, label '
            f'{np.round(label.affine, 4).tolist()}')


def check_cases(cases: Sequence[Case], atol: float = AFFINE_TOLERANCE) -> None:
    """Header checks of every case before anything is written: images are readable
    3-D volumes, labels lie on their image's grid."""
    for case in cases:
        if case.label is None:
            load_header(case.image)
        else:
            check_geometry(case.image, case.label, atol)


def read_label_ids(path: str, volume: nib.spatialimages.SpatialImage) -> np.ndarray:
    """The voxels of a label file as a non-negative integer array.

    Raises:
        ValueError: the file holds non-integer or negative values (naming them).
    """
    try:
        data = np.asanyarray(volume.dataobj)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f'cannot read the voxels of label file {path}: {error}: '
                         'expected a complete NIfTI file') from None
    if not np.issubdtype(data.dtype, np.integer):
        rounded = np.rint(data)
        fractional = data[rounded != data]
        if fractional.size:
            raise ValueError(f'label file {path} holds non-integer values, e.g. '
                             f'{np.unique(fractional)[:5].tolist()}: expected label '
                             'ids')
        data = rounded.astype(np.int64)
    if data.size and data.min() < 0:
        negative = np.unique(data[data < 0])[:10].tolist()
        raise ValueError(f'label file {path} holds negative ids {negative}')
    return data


def count_ids(data: np.ndarray, chunk: int = 1 << 23) -> np.ndarray:
    """Voxel count of each id 0..max of a non-negative integer array (counted in
    chunks, so a whole CT needs no int64 copy)."""
    flat = data.reshape(-1)
    counts = np.zeros(1, np.int64)
    for start in range(0, flat.size, chunk):
        part = np.bincount(flat[start:start + chunk])
        if len(part) > len(counts):
            part[:len(counts)] += counts
            counts = part
        else:
            counts[:len(part)] += part
    return counts


def relabel(path: str, data: np.ndarray, table: np.ndarray, strict: bool) -> np.ndarray:
    """Map label ids through ``table`` (raw id -> new id, uint8).

    Args:
        path (str): the label file, for messages.
        data (np.ndarray): non-negative integer ids.
        table (np.ndarray): uint8 lookup table.
        strict (bool): ids beyond the table are an error (the ids of the dataset
            itself); otherwise they become background (a label map that keeps only
            some of a larger label set).

    Raises:
        ValueError: ``strict`` and ids >= len(table); the message names the file and
            the ids.
    """
    present = np.flatnonzero(count_ids(data))
    outside = present[present >= len(table)]
    if outside.size:
        if strict:
            raise ValueError(
                f'label file {path} holds ids {outside.tolist()} outside '
                f'0..{len(table) - 1}: expected the dataset\'s label ids (or pass a '
                'label map)')
        table = np.concatenate(
            [table, np.zeros(int(present[-1]) + 1 - len(table), np.uint8)])
    return table[data]


def check_complete(path: str,
                   volume: nib.spatialimages.SpatialImage,
                   chunk: int = 1 << 22) -> None:
    """Check that a NIfTI file holds all the voxels its header announces, without
    keeping them: a ``.nii.gz`` is decompressed as a stream (which also checks its
    CRC), a ``.nii`` is measured.

    Raises:
        ValueError: the file is damaged or shorter than header offset + voxel bytes;
            the message names the file and both sizes.
    """
    header = volume.header
    expected = (
        int(getattr(volume.dataobj, 'offset', 0)) +
        int(np.prod(volume.shape)) * header.get_data_dtype().itemsize)
    try:
        if path.endswith('.gz'):
            size = 0
            with gzip.open(path, 'rb') as stream:
                for block in iter(lambda: stream.read(chunk), b''):
                    size += len(block)
        else:
            size = osp.getsize(path)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f'cannot read the voxels of {path}: {error}: expected a '
                         'complete NIfTI file') from None
    if size < expected:
        raise ValueError(f'{path} is truncated: {size} bytes (uncompressed), its '
                         f'header announces {expected} (shape {volume.shape}, '
                         f'{header.get_data_dtype()}): expected a complete NIfTI file')


def is_identity(table: np.ndarray) -> bool:
    """Whether a lookup table keeps every id."""
    return np.array_equal(table, np.arange(len(table)))


def write_nifti_copy(src: str, dst: str) -> None:
    """Copy a NIfTI file to ``dst`` (``.nii.gz``): its bytes, gzip-compressed first
    when the source is an uncompressed ``.nii``."""
    if src.endswith('.gz'):
        shutil.copyfile(src, dst)
    else:
        with open(src, 'rb') as source, gzip.open(dst, 'wb', compresslevel=6) as out:
            shutil.copyfileobj(source, out)


def convert_label(image_path: str, label_path: str, table: np.ndarray, strict: bool,
                  dst: str) -> np.ndarray:
    """Write a case's label as uint8 ids on the image's grid; return the voxel count
    of each id written.

    The label is written with a copy of the image's header (shape, affine, qform and
    sform, units), so both files share their geometry exactly. A label that already is
    uint8 with the image's affine and needs no relabelling is copied byte for byte.
    """
    image = load_header(image_path)
    label = load_header(label_path)
    data = read_label_ids(label_path, label)
    labels = relabel(label_path, data, table, strict)
    proxy = label.dataobj
    unscaled = getattr(proxy, 'slope', 1) == 1 and getattr(proxy, 'inter', 0) == 0
    max_id = int(data.max()) if data.size else 0
    if (label.get_data_dtype() == np.uint8 and unscaled
            and np.array_equal(label.affine, image.affine) and max_id < len(table)
            and is_identity(table[:max_id + 1])):
        write_nifti_copy(label_path, dst)
    else:
        header = image.header.copy()
        header.set_data_dtype(np.uint8)
        header.set_slope_inter(1.0, 0.0)
        header['cal_min'], header['cal_max'] = 0, 0
        image_class = (
            image.__class__ if isinstance(image, nib.Nifti1Image) else nib.Nifti1Image
        )  # Nifti2Image is a Nifti1Image subclass
        # No affine argument: the copied header keeps the image's qform and sform.
        nib.save(image_class(labels.astype(np.uint8), None, header), dst)
    return count_ids(labels)


def ids_of(counts: np.ndarray) -> List[int]:
    """The ids that occur, from an array of voxel counts."""
    return np.flatnonzero(counts).tolist()


def output_is_taken(out_dir: str, force: bool) -> None:
    """Refuse a non-empty ``out_dir`` without ``force`` (before anything is read)."""
    entries_taken(out_dir, force, OUTPUT_ENTRIES)


def staged_output(out_dir: str, force: bool) -> ContextManager[str]:
    """:func:`~.staging.staged_output` of the volumetric layout's entries: a
    temporary folder beside ``out_dir``, moved in on success, removed on failure."""
    return staged_entries(out_dir, force, OUTPUT_ENTRIES)


def write_cases(cases: Sequence[Case], staging: str, table: np.ndarray,
                strict: bool) -> Dict[str, List[int]]:
    """Copy every image and write every label into ``staging``, with a progress bar;
    return {case id: label ids present} for the labelled cases."""
    present: Dict[str, List[int]] = {}
    for folder in ('imagesTr', 'labelsTr'):
        os.makedirs(osp.join(staging, folder), exist_ok=True)
    if any(case.label is None for case in cases):
        os.makedirs(osp.join(staging, 'imagesTs'), exist_ok=True)
    for case in track_iter_progress(list(cases)):
        name = case.case_id + '.nii.gz'
        check_complete(case.image, load_header(case.image))
        if case.label is None:
            write_nifti_copy(case.image, osp.join(staging, 'imagesTs', name))
            continue
        write_nifti_copy(case.image, osp.join(staging, 'imagesTr', name))
        counts = convert_label(case.image, case.label, table, strict,
                               osp.join(staging, 'labelsTr', name))
        present[case.case_id] = ids_of(counts)
    return present


def write_dataset_json(staging: str, content: Dict) -> None:
    """Write ``content`` as ``dataset.json`` (indented, keys in the given order)."""
    with open(osp.join(staging, 'dataset.json'), 'w') as file:
        json.dump(content, file, indent=2)
        file.write('\n')


def labels_json(classes: Sequence[str]) -> Dict[str, str]:
    """``{"0": "background", "1": ...}`` from a class tuple."""
    return {str(index): name for index, name in enumerate(classes)}


def run_cli(main: Callable[[Optional[List[str]]], None]) -> None:
    """Run a converter's ``main`` and turn its input and output errors into one
    ``error: ...`` line and exit status 1 instead of a traceback."""
    try:
        main(None)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
