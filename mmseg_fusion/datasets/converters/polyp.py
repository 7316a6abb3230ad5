"""Shared logic of the polyp dataset converters (Kvasir-SEG, CVC-ClinicDB, PraNet).

Every converter writes one layout, read by ``mmseg_fusion.datasets.PolypDataset``::

    {out}/img_dir/{split}/{name}.png    RGB image
    {out}/ann_dir/{split}/{name}.png    mask, values exactly {0, 1}
    {out}/splits/{split}.txt            the names of the split, one a line
    {out}/splits/info.txt               how the output was made (source, seed, counts)

The split lists hold names only, so they can serve as ``ann_file`` of the dataset.
Masks are read as greyscale and thresholded (``>= 128`` is polyp): the JPEG masks of
the public downloads are lossy and carry values between 0 and 255.

Bad input (see the README's bad-data table): an unreadable or truncated image or
mask, a mask of another size than its image, a mask that is not binary (label ids, a
multi-class or soft mask) and an image without a mask stop the conversion with one
``error: ...`` line naming the file; nothing is written (the output goes through a
temporary folder). Greyscale frames become RGB, alpha channels are dropped, 16-bit
files are scaled to 8 bits, 0/1 masks are kept as they are, empty masks are kept
(frames without polyp, listed in ``splits/info.txt``), masks without an image are
ignored.
"""
import argparse
import os
import os.path as osp
import random
import sys
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import cv2
import numpy as np
from mmengine.utils import track_iter_progress
from PIL import Image, UnidentifiedImageError

from .staging import staged_output

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
MASK_THRESHOLD = 128
# A binary mask saved as JPEG has a thin seam of intermediate values along its
# edges; more mid-grey pixels than this share means the mask is not binary.
GREY_RANGE = (32, 223)
MAX_GREY_SHARE = 0.05
# Folders and files a converter owns inside its output folder; --force replaces them.
OUTPUT_ENTRIES = ('img_dir', 'ann_dir', 'splits')


class Pair(NamedTuple):
    """An image and its mask, under the name both are written as."""
    name: str
    image: str
    mask: str


def list_images(folder: str) -> List[str]:
    """Sorted paths of the image files (by extension) directly inside ``folder``."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'folder {folder} does not exist')
    files = [
        osp.join(folder, f) for f in os.listdir(folder)
        if osp.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        raise FileNotFoundError(
            f'folder {folder} holds no image files ({", ".join(IMAGE_EXTENSIONS)})')
    return sorted(files)


def strip_suffix(stem: str, suffixes: Sequence[str]) -> str:
    """``stem`` without the first of ``suffixes`` it ends with (e.g. ``_mask``)."""
    for suffix in suffixes:
        if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[:-len(suffix)]
    return stem


def _index_by_name(files: Sequence[str], suffixes: Sequence[str]) -> Dict[str, str]:
    index: Dict[str, str] = {}
    for path in files:
        name = strip_suffix(osp.splitext(osp.basename(path))[0], suffixes)
        if name in index:
            raise ValueError(f'{index[name]} and {path} both map to the name {name!r}')
        index[name] = path
    return index


def pair_by_name(
    image_dir: str,
    mask_dir: str,
    image_suffixes: Sequence[str] = (),
    mask_suffixes: Sequence[str] = ()
) -> List[Pair]:
    """Pair the images of ``image_dir`` with the masks of ``mask_dir`` by file name.

    The extension and one of the given suffixes (``_fram`` of an image, ``_mask`` of a
    mask) are dropped before matching, so ``a_fram.jpg`` pairs with ``a_mask.jpg`` and
    ``1.tif`` with ``1.tif``. Masks without an image are ignored.

    Raises:
        FileNotFoundError: a folder is missing or empty, or an image has no mask.
    """
    images = _index_by_name(list_images(image_dir), image_suffixes)
    masks = _index_by_name(list_images(mask_dir), mask_suffixes)
    pairs = []
    for name in sorted(images):
        if name not in masks:
            raise FileNotFoundError(
                f'image {images[name]} has no mask named {name!r} in {mask_dir}')
        pairs.append(Pair(name, images[name], masks[name]))
    return pairs


def find_subdir(root: str, candidates: Sequence[str]) -> str:
    """The first of ``candidates`` (relative to ``root``) that is a folder."""
    for candidate in candidates:
        path = osp.join(root, candidate)
        if osp.isdir(path):
            return path
    tried = ', '.join(osp.join(root, c) for c in candidates)
    raise FileNotFoundError(f'none of these folders exists: {tried}')


def split_train_val(pairs: Sequence[Pair],
                    seed: int,
                    val_num: Optional[int] = None,
                    val_ratio: Optional[float] = None) -> Dict[str, List[Pair]]:
    """Shuffle ``pairs`` with ``seed`` and cut off ``val_num`` (or ``val_ratio``) of
    them as 'val'; both splits come back sorted by name."""
    total = len(pairs)
    if val_num is None:
        if val_ratio is None or not 0 < val_ratio < 1:
            raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio!r}')
        val_num = int(round(val_ratio * total))
    if not 1 <= val_num <= total - 1:
        raise ValueError(f'the val split must hold 1 to {total - 1} of the {total} '
                         f'pairs, got val_num={val_num} (check --val-num/--val-ratio)')
    order = sorted(pairs, key=lambda p: p.name)
    random.Random(seed).shuffle(order)
    return dict(
        train=sorted(order[val_num:], key=lambda p: p.name),
        val=sorted(order[:val_num], key=lambda p: p.name))


def check_complete(path: str, role: str) -> None:
    """Refuse a truncated image file (cv2 decodes a truncated JPEG without an error,
    filling the missing part with grey; Pillow notices).

    Raises:
        ValueError: naming the file and what is wrong with it.
    """
    try:
        with Image.open(path) as image:
            image.load()
    except UnidentifiedImageError:
        return  # a format Pillow does not know and cv2 decoded: nothing to check
    except (OSError, SyntaxError) as error:
        if 'truncated' in str(error):
            raise ValueError(f'{role} {path} is damaged ({error}): expected a '
                             'complete image file') from None


def read_image(path: str) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 BGR array (the cv2 order).

    Greyscale frames become three equal channels, an alpha channel is dropped and
    16-bit images are scaled to 8 bits (cv2's ``IMREAD_COLOR``).

    Raises:
        ValueError: the file cannot be decoded or is truncated (naming it).
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot read image {path} (not an image, or truncated): '
                         'expected a complete PNG, JPEG, TIFF or BMP file')
    check_complete(path, 'image')
    return image


def binarize_mask(mask: np.ndarray,
                  path: str,
                  threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """A greyscale mask as uint8 {0, 1}.

    A mask already holding only 0 and 1 is kept. Otherwise it must be an 8-bit-range
    binary mask (0 and 255, or a JPEG's noisy version of it): 1 where the value is
    ``>= threshold``.

    Raises:
        ValueError: the mask holds label ids (values other than 0/1 that all lie
            below ``threshold``), or is not binary (more than
            :data:`MAX_GREY_SHARE` of its pixels are mid-grey, between
            :data:`GREY_RANGE`): e.g. a multi-class or soft mask. The message names
            the file, the values found and what was expected.
    """
    values = np.unique(mask)
    if values.size and values.max() <= 1:
        return mask.astype(np.uint8)
    if values.max() < threshold:
        raise ValueError(
            f'mask {path} holds the values {values[:10].tolist()}, all below the '
            f'threshold {threshold}: expected a binary mask with values 0 and 255 '
            '(or 0 and 1); class ids above 1 are not a binary polyp mask')
    low, high = GREY_RANGE
    grey = float(np.mean((mask > low) & (mask < high)))
    if grey > MAX_GREY_SHARE:
        shown = values[(values > low) & (values < high)][:10].tolist()
        raise ValueError(
            f'mask {path} is not binary: {grey:.1%} of its pixels lie between {low} '
            f'and {high} (e.g. {shown}): expected values 0 and 255, where only JPEG '
            f'noise (at most {MAX_GREY_SHARE:.0%} of the pixels) lies in between')
    return (mask >= threshold).astype(np.uint8)


def read_mask(path: str, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """A mask file as an (H, W) uint8 {0, 1} array (:func:`binarize_mask`).

    Colour masks are converted to grey (the public Kvasir-SEG masks are RGB JPEGs),
    16-bit masks to 8 bits (value / 256; a 16-bit 0/1 mask stays 0/1).

    Raises:
        ValueError: the file cannot be decoded, is truncated, or is no binary mask.
    """
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f'cannot read mask {path} (not an image, or truncated): '
                         'expected a complete PNG, JPEG, TIFF or BMP file')
    check_complete(path, 'mask')
    if mask.ndim == 3:
        colour = cv2.COLOR_BGRA2GRAY if mask.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        mask = cv2.cvtColor(mask, colour)
    if mask.dtype == np.uint16 and mask.max() > 1:
        mask = (mask >> 8).astype(np.uint8)
    elif mask.dtype != np.uint8:
        if mask.dtype.kind not in 'ui' or mask.min() < 0 or mask.max() > 255:
            raise ValueError(f'mask {path} is of type {mask.dtype} with values '
                             f'{mask.min()}..{mask.max()}: expected 8-bit values')
        mask = mask.astype(np.uint8)
    return binarize_mask(mask, path, threshold)


def write_pair(pair: Pair, out_dir: str, split: str) -> bool:
    """Write ``pair`` as ``img_dir/{split}/{name}.png`` (RGB) and
    ``ann_dir/{split}/{name}.png`` ({0, 1}); return whether the mask is empty (a
    frame without polyp: kept, counted in ``splits/info.txt``).

    Raises:
        ValueError: an unreadable, truncated or non-binary file, or a mask of another
            size than its image (naming both files and sizes).
    """
    image = read_image(pair.image)
    mask = read_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f'mask {pair.mask} is {mask.shape[1]}x{mask.shape[0]} (WxH) '
                         f'but its image {pair.image} is {image.shape[1]}x'
                         f'{image.shape[0]}: expected the same size')
    for sub, array in (('img_dir', image), ('ann_dir', mask)):
        path = osp.join(out_dir, sub, split, pair.name + '.png')
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, array):
            raise OSError(f'cannot write {path}')
    return not mask.any()


def write_splits(out_dir: str, splits: Dict[str, Sequence[Pair]], info: Dict) -> None:
    """Write ``splits/{split}.txt`` (names) and ``splits/info.txt`` (``info`` and the
    counts, one ``key: value`` a line)."""
    split_dir = osp.join(out_dir, 'splits')
    lines = [f'{key}: {value}' for key, value in info.items()]
    for split, pairs in splits.items():
        path = osp.join(split_dir, split + '.txt')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.writelines(p.name + '\n' for p in pairs)
        lines.append(f'count {split}: {len(pairs)}')
    with open(osp.join(split_dir, 'info.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def convert(splits: Dict[str, Sequence[Pair]], out_dir: str, force: bool,
            info: Dict) -> None:
    """Check the output folder, then write every split's pairs and the split files
    (``info``, the mask threshold and the empty masks go to ``splits/info.txt``).

    Everything is written into a temporary folder beside ``out_dir`` and moved in at
    the end (:mod:`.staging`): a bad file found half-way leaves ``out_dir`` as it
    was.
    """
    with staged_output(out_dir, force, OUTPUT_ENTRIES) as staging:
        empty = []
        for split, pairs in splits.items():
            for pair in track_iter_progress(list(pairs)):
                if write_pair(pair, staging, split):
                    empty.append(f'{split}/{pair.name}')
        write_splits(
            staging, splits,
            dict(
                info,
                mask_threshold=MASK_THRESHOLD,
                empty_masks=f'{len(empty)} {" ".join(empty)}'.strip()))


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Add ``-o/--out`` and ``--force`` to a converter's parser."""
    parser.add_argument(
        '-o',
        '--out',
        required=True,
        help='output folder (img_dir/, ann_dir/, splits/)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into a non-empty output folder, replacing its '
        'img_dir/, ann_dir/ and splits/')


def add_split_args(parser: argparse.ArgumentParser, val_ratio: float) -> None:
    """Add ``--seed`` and the exclusive ``--val-ratio``/``--val-num`` to a parser."""
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the train/val shuffle, recorded in '
        'splits/info.txt (default: %(default)s)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--val-ratio',
        type=float,
        default=val_ratio,
        help='fraction of the pairs put in val (default: %(default)s)')
    group.add_argument(
        '--val-num',
        type=int,
        help='number of pairs put in val (overrides --val-ratio)')


def run_cli(main: Callable[[Optional[List[str]]], None]) -> None:
    """Run a converter's ``main`` and turn its input and output errors into an
    ``error: ...`` line and exit status 1 instead of a traceback."""
    try:
        main(None)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
