"""Convert the Kvasir-SEG download to the polyp layout of mmseg-fusion.

Kvasir-SEG (Jha et al., "Kvasir-SEG: A Segmented Polyp Dataset", MMM 2020) ships 1000
JPEG images and 1000 JPEG masks of the same names and no official split; the usual one
is 880 train / 120 val, drawn here with a recorded seed.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmseg_fusion.datasets.converters.polyp import (add_output_args, add_split_args,
                                                    convert, find_subdir, pair_by_name,
                                                    run_cli, split_train_val)

DESCRIPTION = """\
Convert Kvasir-SEG to img_dir/{train,val}/NAME.png (RGB) and
ann_dir/{train,val}/NAME.png (masks thresholded at 128 to {0, 1}), with
splits/{train,val}.txt and splits/info.txt (the seed).

Input layout (the extracted kvasir-seg.zip; SRC is Kvasir-SEG/ or the folder above it):
  Kvasir-SEG/images/NAME.jpg
  Kvasir-SEG/masks/NAME.jpg
"""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='the Kvasir-SEG folder (holding images/, masks/)')
    add_output_args(parser)
    add_split_args(parser, val_ratio=0.12)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    image_dir = find_subdir(args.src, ('images', osp.join('Kvasir-SEG', 'images')))
    mask_dir = osp.join(osp.dirname(image_dir), 'masks')
    pairs = pair_by_name(image_dir, mask_dir)
    splits = split_train_val(pairs, args.seed, args.val_num, args.val_ratio)
    info = dict(converter='kvasir_seg.py', source=osp.abspath(args.src), seed=args.seed)
    convert(splits, args.out, args.force, info)


if __name__ == '__main__':
    run_cli(main)
