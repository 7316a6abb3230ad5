"""Convert CVC-ClinicDB (CVC-612) to the polyp layout of mmseg-fusion.

CVC-ClinicDB (Bernal et al., "WM-DOVA maps for accurate polyp highlighting in
colonoscopy", CMIG 2015) has 612 frames and no official split: a train/val split is
drawn here with a recorded seed. The frames come from 31 video sequences, and a random
split by frame puts frames of one sequence in both splits.
"""
import argparse
import os.path as osp
from typing import List, Optional, Tuple

from mmseg_fusion.datasets.converters.polyp import (add_output_args, add_split_args,
                                                    convert, pair_by_name, run_cli,
                                                    split_train_val)

DESCRIPTION = """\
Convert CVC-ClinicDB to img_dir/{train,val}/NAME.png (RGB) and
ann_dir/{train,val}/NAME.png (masks thresholded at 128 to {0, 1}), with
splits/{train,val}.txt and splits/info.txt (the seed).

Input layouts found under SRC (or SRC/CVC-ClinicDB), the first that exists is used:
  Original/N.tif        + Ground Truth/N.tif        (official download)
  PNG/Original/N.png    + PNG/Ground Truth/N.png    (PNG copy)
  TIF/Original/N.tif    + TIF/Ground Truth/N.tif
  images/NAME.jpg       + masks/NAME.jpg            (JPEG copies, e.g. CVC-612/)
Images and masks pair by name after dropping the extension and an image suffix
(_fram, _frame) or mask suffix (_mask, _gt): fine_3_1_fram.jpg <-> fine_3_1_mask.jpg
becomes fine_3_1.png.
"""
LAYOUTS = (('Original', 'Ground Truth'), (osp.join('PNG', 'Original'),
                                          osp.join('PNG', 'Ground Truth')),
           (osp.join('TIF', 'Original'), osp.join('TIF',
                                                  'Ground Truth')), ('images', 'masks'))
IMAGE_SUFFIXES = ('_fram', '_frame')
MASK_SUFFIXES = ('_mask', '_gt')


def find_layout(src: str) -> Tuple[str, str]:
    """The (image folder, mask folder) of the first known layout under ``src``."""
    for root in (src, osp.join(src, 'CVC-ClinicDB')):
        for image_sub, mask_sub in LAYOUTS:
            image_dir, mask_dir = osp.join(root, image_sub), osp.join(root, mask_sub)
            if osp.isdir(image_dir) and osp.isdir(mask_dir):
                return image_dir, mask_dir
    known = '; '.join(f'{i}/ + {m}/' for i, m in LAYOUTS)
    raise FileNotFoundError(f'no CVC-ClinicDB layout found in {src} (known: {known})')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='the CVC-ClinicDB folder')
    add_output_args(parser)
    add_split_args(parser, val_ratio=0.2)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    image_dir, mask_dir = find_layout(args.src)
    pairs = pair_by_name(image_dir, mask_dir, IMAGE_SUFFIXES, MASK_SUFFIXES)
    splits = split_train_val(pairs, args.seed, args.val_num, args.val_ratio)
    info = dict(
        converter='cvc_clinicdb.py',
        source=osp.abspath(args.src),
        images=image_dir,
        masks=mask_dir,
        seed=args.seed)
    convert(splits, args.out, args.force, info)


if __name__ == '__main__':
    run_cli(main)
