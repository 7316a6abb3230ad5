"""Check the image/mask files of a 2-D dataset when it is built, before training.

mmseg reads a sample's files only when the sample is first drawn, possibly hours into
a run, and some bad files are never noticed: a 0/255 mask trains as 0 and "ignore"
(255 is mmseg's ignore index), a 16-bit mask gives ids beyond the classes, a truncated
PNG stops the run at a random iteration. :func:`check_slice_pair` reads the header of
the image (and Pillow's integrity check) and decodes the mask, so every such file is
named when the dataset is built.

What is accepted, because the loading pipeline handles it: greyscale, RGBA and
16-bit images (mmcv's ``LoadImageFromFile`` makes them 8-bit BGR) and empty masks
(all background). With ``raw_masks`` (a pipeline that thresholds its masks with
``BinarizeSegMap``) masks may be greyscale or colour with any 8-bit values.
"""
import io
from typing import List, Optional, Tuple

import mmengine.fileio as fileio
import numpy as np
from PIL import Image, UnidentifiedImageError

from .transforms.binarize_seg_map import BinarizeSegMap

# Pillow modes of single-channel masks whose pixel values are the label ids.
LABEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16B', 'I;16L')


def _open(path: str, role: str, decode: bool,
          backend_args: Optional[dict]) -> Image.Image:
    """Open (and with ``decode`` load, else verify) an image file; every failure is a
    ValueError naming the file."""
    content = fileio.get(path, backend_args=backend_args)
    try:
        image = Image.open(io.BytesIO(content))
        if decode:
            image.load()
        else:
            with Image.open(io.BytesIO(content)) as check:
                check.verify()  # CRCs and truncation, without decoding (PNG)
    except UnidentifiedImageError:
        raise ValueError(f'cannot read {role} {path}: not an image file Pillow knows '
                         '(expected PNG, JPEG, TIFF or BMP)') from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f'cannot read {role} {path}: {error}: expected a complete '
                         'image file') from None
    return image


def check_slice_pair(img_path: str,
                     mask_path: str,
                     num_classes: int,
                     raw_masks: bool = False,
                     backend_args: Optional[dict] = None) -> Tuple[int, int]:
    """Check one image and its mask; return the image's (width, height).

    Args:
        img_path (str): the image file.
        mask_path (str): the mask file.
        num_classes (int): masks must hold ids in ``0..num_classes - 1``.
        raw_masks (bool): the pipeline thresholds the masks (``BinarizeSegMap``):
            accept any 8-bit greyscale or colour mask. Default: False.
        backend_args (dict, optional): mmengine file backend of the dataset.

    Raises:
        ValueError: the message names the file, the value found and the expectation:
            an unreadable or truncated image or mask, a mask of another size than its
            image, a colour mask, or mask values outside ``0..num_classes - 1``.
    """
    with _open(img_path, 'image', False, backend_args) as image:
        size = image.size
    with _open(mask_path, 'mask', True, backend_args) as mask:
        if mask.size != size:
            raise ValueError(f'mask {mask_path} is {mask.size[0]}x{mask.size[1]} (WxH) '
                             f'but its image {img_path} is {size[0]}x{size[1]}: '
                             'expected the same size')
        if raw_masks:
            return size
        if mask.mode not in LABEL_MODES:
            raise ValueError(
                f'mask {mask_path} has the Pillow mode {mask.mode!r} '
                f'({len(mask.getbands())} channels): expected a single-channel mask of '
                'label ids (convert the data with tools/dataset_converters, or add '
                'BinarizeSegMap after LoadAnnotations for raw 0/255 masks)')
        values = np.unique(np.asarray(mask))
    outside = values[(values < 0) | (values >= num_classes)]
    if outside.size:
        hint = (' (a 0/255 mask: convert it with tools/dataset_converters, or add '
                'BinarizeSegMap after LoadAnnotations)' if num_classes == 2 else '')
        raise ValueError(f'mask {mask_path} holds the values {outside[:10].tolist()} '
                         f'outside the class ids 0..{num_classes - 1}{hint}')
    return size


def check_data_list(data_list: List[dict],
                    num_classes: int,
                    pipeline,
                    backend_args: Optional[dict] = None) -> None:
    """:func:`check_slice_pair` of every data info with a mask; masks count as raw
    when ``pipeline`` (a ``Compose``) holds ``BinarizeSegMap``.

    Raises:
        FileNotFoundError: an image's mask is missing (naming both).
        ValueError: see :func:`check_slice_pair`.
    """
    transforms = getattr(pipeline, 'transforms', [])
    raw = any(isinstance(t, BinarizeSegMap) for t in transforms)
    for info in data_list:
        mask = info.get('seg_map_path')
        if mask is not None and not fileio.exists(mask, backend_args=backend_args):
            raise FileNotFoundError(
                f'image {info["img_path"]} has no mask: expected {mask}')
        if mask is not None:
            check_slice_pair(info['img_path'], info['seg_map_path'], num_classes, raw,
                             backend_args)
