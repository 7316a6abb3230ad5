"""Load a NIfTI volume (and its label) with its geometry: the first step of every 3-D
pipeline."""
import os.path as osp
from typing import Optional, Tuple

import nibabel as nib
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from nibabel.openers import ImageOpener

from ...utils.checks import check_bool, check_positive_int

NIFTI_SUFFIXES = ('.nii', '.nii.gz')
IMAGE_DTYPES = ('float32', 'float64')


def nifti_case_id(path: str) -> str:
    """The file name without its NIfTI suffix (``case0001.nii.gz`` -> ``case0001``)."""
    name = osp.basename(str(path))
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def spacing_of(affine: np.ndarray) -> Tuple[float, float, float]:
    """Voxel size in mm along the three array axes: the column norms of the affine."""
    return tuple(float(s) for s in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def _check_suffix(path: str, role: str) -> None:
    if not str(path).lower().endswith(NIFTI_SUFFIXES):
        raise ValueError(
            f'{role} {path} is not a NIfTI file: expected a name ending in '
            f'one of {NIFTI_SUFFIXES}')


def _read_nifti(path: str, role: str) -> nib.spatialimages.SpatialImage:
    """Open a NIfTI file; every way of failing names the file."""
    _check_suffix(path, role)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{role} {path} does not exist')
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for a broken header
        raise ValueError(f'cannot read {role} {path}: {type(error).__name__}: '
                         f'{error}') from error
    if not hasattr(image.header, 'get_sform'):
        raise ValueError(f'{role} {path} is not a NIfTI image (nibabel read it as '
                         f'{type(image).__name__})')
    return image


def _read_array(image, path: str, role: str, dtype=None) -> np.ndarray:
    try:
        if dtype is None:
            return np.asanyarray(image.dataobj)
        return image.get_fdata(dtype=dtype, caching='unchanged')
    except Exception as error:  # truncated or corrupt data block
        raise ValueError(f'cannot read the voxels of {role} {path}: '
                         f'{type(error).__name__}: {error}') from error


def _check_geometry(image, path: str, role: str) -> np.ndarray:
    """Return the voxel -> world affine; refuse a volume without voxel sizes.

    nibabel silently replaces a zero ``pixdim`` by 1 mm when it builds the affine from
    it (no sform): the raw header is read again to catch that case.
    """
    affine = np.asarray(image.affine, dtype=np.float64)
    spacing = spacing_of(affine)
    if not np.all(np.isfinite(affine)) or min(spacing) <= 1e-6:
        raise ValueError(f'{role} {path} has no voxel spacing: its affine has the '
                         f'voxel sizes {spacing} (expected three positive sizes in '
                         f'mm):\n{affine}')
    header = image.header
    if int(header['sform_code']) == 0:
        try:
            with ImageOpener(str(path)) as fileobj:
                raw = type(header).from_fileobj(fileobj, check=False)
        except Exception as error:
            raise ValueError(f'cannot read the header of {role} {path}: '
                             f'{type(error).__name__}: {error}') from error
        pixdim = np.asarray(raw['pixdim'][1:4], dtype=np.float64)
        if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
            raise ValueError(
                f'{role} {path} has no voxel spacing: its header pixdim[1:4] is '
                f'{tuple(float(p) for p in pixdim)} and it has no sform (expected '
                'three positive sizes in mm)')
    return affine


def _integer_label(label: np.ndarray, path: str,
                   num_classes: Optional[int]) -> np.ndarray:
    """Check label ids and store them in the smallest integer type that holds them."""
    if not (np.issubdtype(label.dtype, np.integer)
            or np.issubdtype(label.dtype, np.bool_)):
        if not np.all(np.isfinite(label)) or not np.array_equal(label, np.rint(label)):
            raise ValueError(f'label {path} holds non-integer values (dtype '
                             f'{label.dtype}): expected integer class ids')
    low, high = (label.min(), label.max()) if label.size else (0, 0)
    top = num_classes - 1 if num_classes is not None else None
    if low < 0 or (top is not None and high > top):
        outside = (label < 0) if top is None else ((label < 0) | (label > top))
        bad = np.unique(label[outside])
        shown = ', '.join(str(int(v)) for v in bad[:20])
        if bad.size > 20:
            shown += f', ... ({bad.size} ids, the largest {int(bad[-1])})'
        expected = 'ids >= 0' if top is None else f'0..{top} for {num_classes} classes'
        raise ValueError(f'label {path} holds ids outside the dataset range: {shown} '
                         f'(expected {expected})')
    if high <= np.iinfo(np.uint8).max:
        dtype = np.uint8
    elif high <= np.iinfo(np.int16).max:
        dtype = np.int16
    else:
        dtype = np.int32
    return np.ascontiguousarray(label, dtype=dtype)


@TRANSFORMS.register_module()
class LoadVolumeFromFile(BaseTransform):
    """Load a NIfTI image, and optionally its label, keeping spacing and affine.

    mmseg's biomedical loaders return the voxels and drop the geometry; 3-D work needs
    it (resampling to a spacing, HD95 in mm, writing predictions aligned with the CT).
    Files are read with nibabel (``.nii`` and ``.nii.gz``); arrays keep nibabel's voxel
    axis order (i, j, k) = (D, H, W), never transposed, so ``affine`` maps them to
    world coordinates (mm, RAS) directly.

    Required keys: ``img_path``; ``seg_map_path`` (str or None) when ``with_seg``;
    optional ``num_classes`` (set by the 3-D datasets), ``case_id``.

    Added keys:

    - ``img``: (C, D, H, W) float32 (a 3-D file gives C = 1; a 4-D file, channel last
      as NIfTI stores it, is moved to channel first);
    - ``gt_seg_map``: (D, H, W) uint8 (int16 / int32 when ids need it), only when
      ``with_seg`` and ``seg_map_path`` is not None (an unlabelled test case simply
      has no label);
    - ``affine`` (4x4 float64, voxel -> world mm of the current grid), ``spacing``
      (3 floats, mm: the affine's column norms);
    - ``original_affine``, ``original_spacing``, ``original_shape`` (D, H, W): the
      same of the image as read, never changed afterwards;
    - ``transforms``: [] (the MONAI bridge appends a record per spatial transform);
    - ``case_id``: the file name without suffix, when the data info has none.

    Checks (each error names the file): suffix; a readable header and data block;
    voxel sizes present (a zero ``pixdim`` without sform, or an affine with a zero
    column, is refused: nibabel would silently use 1 mm); the label has the image's
    spatial shape and affine (within ``affine_atol`` mm); label values are integers
    in ``0..num_classes-1``.

    Args:
        with_seg (bool): load ``seg_map_path`` into ``gt_seg_map``. Default: True.
        dtype (str): image dtype, 'float32' or 'float64'. Default: 'float32'.
        num_classes (int, optional): number of classes incl. background for the label
            check; when None, ``results['num_classes']`` is used, and when that is
            absent too only negative ids are refused. Default: None.
        affine_atol (float): largest absolute difference (mm) allowed between the
            image's and the label's affine entries. Default: 1e-3.
    """

    def __init__(self,
                 with_seg: bool = True,
                 dtype: str = 'float32',
                 num_classes: Optional[int] = None,
                 affine_atol: float = 1e-3) -> None:
        check_bool('with_seg', with_seg)
        if dtype not in IMAGE_DTYPES:
            raise ValueError(f'dtype must be one of {IMAGE_DTYPES}, got {dtype!r}')
        if num_classes is not None:
            check_positive_int('num_classes', num_classes)
        number = isinstance(affine_atol,
                            (int, float)) and not isinstance(affine_atol, bool)
        if not number or not affine_atol >= 0:
            raise ValueError(f'affine_atol must be a number >= 0, got {affine_atol!r}')
        self.with_seg = with_seg
        self.dtype = dtype
        self.num_classes = num_classes
        self.affine_atol = float(affine_atol)

    def transform(self, results: dict) -> dict:
        img_path = str(results['img_path'])
        image = _read_nifti(img_path, 'image')
        affine = _check_geometry(image, img_path, 'image')
        img = _read_array(image, img_path, 'image', dtype=np.dtype(self.dtype))
        if img.ndim == 3:
            img = img[None]
        elif img.ndim == 4:
            img = np.moveaxis(img, -1, 0)
        else:
            raise ValueError(f'image {img_path} has shape {img.shape}: expected a 3-D '
                             'volume (D, H, W) or a 4-D one (D, H, W, C)')
        img = np.ascontiguousarray(img)
        shape = tuple(int(s) for s in img.shape[1:])
        spacing = spacing_of(affine)
        results['img'] = img
        results['affine'] = affine
        results['spacing'] = spacing
        results['original_affine'] = affine.copy()
        results['original_spacing'] = spacing
        results['original_shape'] = shape
        results['transforms'] = []
        results.setdefault('case_id', nifti_case_id(img_path))
        seg_map_path = results.get('seg_map_path')
        if self.with_seg and seg_map_path is not None:
            results['gt_seg_map'] = self._load_label(
                str(seg_map_path), img_path, shape, affine, results)
        return results

    def _load_label(self, path: str, img_path: str, shape: tuple, affine: np.ndarray,
                    results: dict) -> np.ndarray:
        image = _read_nifti(path, 'label')
        label_shape = tuple(int(s) for s in image.shape)
        if len(label_shape) == 4 and label_shape[3] == 1:
            label_shape = label_shape[:3]
        if label_shape != shape:
            raise ValueError(
                f'label {path} has shape {tuple(image.shape)} but its image '
                f'{img_path} has the spatial shape {shape}: expected equal '
                'shapes')
        label_affine = np.asarray(image.affine, dtype=np.float64)
        if not np.allclose(label_affine, affine, rtol=0, atol=self.affine_atol):
            raise ValueError(
                f'label {path} and its image {img_path} have different affines '
                f'(tolerance {self.affine_atol} mm): expected equal geometry\n'
                f'label affine:\n{label_affine}\nimage affine:\n{affine}')
        label = _read_array(image, path, 'label').reshape(shape)
        num_classes = self.num_classes
        if num_classes is None:
            num_classes = results.get('num_classes')
        return _integer_label(label, path, num_classes)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_seg={self.with_seg}, '
                f'dtype={self.dtype!r}, num_classes={self.num_classes}, '
                f'affine_atol={self.affine_atol})')
