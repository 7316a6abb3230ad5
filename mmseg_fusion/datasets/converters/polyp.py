"""Shared logic of the polyp dataset converters (Kvasir-SEG, CVC-ClinicDB, PraNet).

Every converter writes one layout, read by ``mmseg_fusion.datasets.PolypDataset``::

    {out}/img_dir/{split}/{name}.png    RGB image
    {out}/ann_dir/{split}/{name}.png    mask, values exactly {0, 1}
    {out}/splits/{split}.txt            the names of the split, one a line
    {out}/splits/info.txt               how the output was made (source, seed, counts)

The split lists hold names only, so they can serve as ``ann_file`` of the dataset.
Masks are read as greyscale and thresholded (``>= 128`` is polyp): the JPEG masks of
the public downloads are lossy and carry values between 0 and 255.
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

from mmseg_fusion.utils import prepare_output_folder

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
MASK_THRESHOLD = 128
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


def pair_by_name(image_dir: str,
                 mask_dir: str,
                 image_suffixes: Sequence[str] = (),
                 mask_suffixes: Sequence[str] = ()) -> List[Pair]:
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


def read_image(path: str) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 BGR array (the cv2 order)."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot read image {path}')
    return image


def binarize_mask(mask: np.ndarray, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """A greyscale mask as uint8 {0, 1}: 1 where the value is ``>= threshold``."""
    return (mask >= threshold).astype(np.uint8)


def read_mask(path: str, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """A mask file read as greyscale and thresholded to an (H, W) uint8 {0, 1} array."""
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f'cannot read mask {path}')
    return binarize_mask(mask, threshold)


def write_pair(pair: Pair, out_dir: str, split: str) -> None:
    """Write ``pair`` as ``img_dir/{split}/{name}.png`` (RGB) and
    ``ann_dir/{split}/{name}.png`` ({0, 1})."""
    image = read_image(pair.image)
    mask = read_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f'image {pair.image} is {image.shape[:2]} but its mask '
                         f'{pair.mask} is {mask.shape}')
    for sub, array in (('img_dir', image), ('ann_dir', mask)):
        path = osp.join(out_dir, sub, split, pair.name + '.png')
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, array):
            raise OSError(f'cannot write {path}')


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
    (``info`` plus the mask threshold go to ``splits/info.txt``)."""
    prepare_output_folder(out_dir, force, OUTPUT_ENTRIES)
    for split, pairs in splits.items():
        for pair in track_iter_progress(list(pairs)):
            write_pair(pair, out_dir, split)
    write_splits(out_dir, splits, dict(info, mask_threshold=MASK_THRESHOLD))


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Add ``-o/--out`` and ``--force`` to a converter's parser."""
    parser.add_argument('-o', '--out', required=True,
                        help='output folder (img_dir/, ann_dir/, splits/)')
    parser.add_argument('--force', action='store_true',
                        help='write into a non-empty output folder, replacing its '
                        'img_dir/, ann_dir/ and splits/')


def add_split_args(parser: argparse.ArgumentParser, val_ratio: float) -> None:
    """Add ``--seed`` and the exclusive ``--val-ratio``/``--val-num`` to a parser."""
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the train/val shuffle, recorded in '
                        'splits/info.txt (default: %(default)s)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--val-ratio', type=float, default=val_ratio,
                       help='fraction of the pairs put in val (default: %(default)s)')
    group.add_argument('--val-num', type=int,
                       help='number of pairs put in val (overrides --val-ratio)')


def run_cli(main: Callable[[Optional[List[str]]], None]) -> None:
    """Run a converter's ``main`` and turn its input and output errors into an
    ``error: ...`` line and exit status 1 instead of a traceback."""
    try:
        main(None)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
