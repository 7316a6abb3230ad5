"""Convert the PraNet polyp benchmark to the polyp layout of mmseg-fusion.

The benchmark of PraNet (Fan et al., "PraNet: Parallel Reverse Attention Network for
Polyp Segmentation", MICCAI 2020) fixes the split: 1450 training images (900 Kvasir-SEG,
550 CVC-ClinicDB) and five test sets. The split is kept as it is; nothing is random.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmseg_fusion.datasets.converters.polyp import (Pair, add_output_args, convert,
                                                    find_subdir, pair_by_name, run_cli)

SUBSETS = ('Kvasir', 'CVC-ClinicDB', 'CVC-ColonDB', 'ETIS-LaribPolypDB', 'CVC-300')

DESCRIPTION = f"""\
Convert the PraNet benchmark (TrainDataset.zip and TestDataset.zip, extracted side by
side in SRC) to
  img_dir/train/NAME.png, ann_dir/train/NAME.png
  img_dir/test/SUBSET/NAME.png, ann_dir/test/SUBSET/NAME.png
(images RGB, masks thresholded at 128 to {{0, 1}}), with splits/train.txt,
splits/test/SUBSET.txt and splits/info.txt.

Input layout (image/ and mask/ may also be named images/ and masks/):
  TrainDataset/image/NAME.png, TrainDataset/mask/NAME.png
  TestDataset/SUBSET/images/NAME.png, TestDataset/SUBSET/masks/NAME.png
with SUBSET in {', '.join(SUBSETS)}.
"""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='folder holding TrainDataset/ and TestDataset/')
    add_output_args(parser)
    parser.add_argument(
        '--subsets',
        nargs='+',
        default=list(SUBSETS),
        metavar='SUBSET',
        help='test sets to convert (default: all five)')
    return parser.parse_args(argv)


def pairs_in(folder: str) -> List[Pair]:
    """The image/mask pairs of a PraNet folder with image(s)/ and mask(s)/."""
    image_dir = find_subdir(folder, ('images', 'image'))
    mask_dir = find_subdir(folder, ('masks', 'mask'))
    return pair_by_name(image_dir, mask_dir)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    splits = dict(train=pairs_in(osp.join(args.src, 'TrainDataset')))
    for subset in args.subsets:
        splits[f'test/{subset}'] = pairs_in(osp.join(args.src, 'TestDataset', subset))
    info = dict(
        converter='pranet_polyp.py',
        source=osp.abspath(args.src),
        split='official PraNet split (no shuffle)')
    convert(splits, args.out, args.force, info)


if __name__ == '__main__':
    run_cli(main)
