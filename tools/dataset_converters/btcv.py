"""Convert the BTCV abdominal CT download to the volumetric layout of mmseg-fusion.

BTCV (Landman et al., MICCAI 2015 challenge "Multi-Atlas Labeling Beyond the Cranial
Vault", synapse.org syn3193805, ``RawData.zip``): 30 labelled CT volumes with 13 organs
and 20 unlabelled test volumes. The volumes stay volumes (the 2-D slice layout of the
TransUNet protocol is ``synapse.py``); ``BTCVDataset`` reads the output.

    python tools/dataset_converters/btcv.py RAW_ROOT [-o data/btcv]
        [--protocol swinunetr|transunet|cv5|holdout|all] [--seed N] [--val-ratio R]
        [--label-map RAW:BTCV,...] [--no-unlabelled] [--force]
"""
import argparse
import logging
import os
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from mmseg_fusion.datasets.converters.volume import (AFFINE_TOLERANCE, Case,
                                                     check_cases, labels_json,
                                                     nifti_stem, output_is_taken,
                                                     run_cli, staged_output,
                                                     write_cases, write_dataset_json)
from mmseg_fusion.utils.abdominal_labels import (BTCV_CLASSES, BTCV_TO_SYNAPSE,
                                                 NUM_BTCV_ORGANS, SWINUNETR_TRAIN_CASES,
                                                 SWINUNETR_VAL_CASES, SYNAPSE_CLASSES,
                                                 TRANSUNET_TEST_CASES,
                                                 TRANSUNET_TRAIN_CASES, lookup_table,
                                                 parse_label_map)

PROTOCOLS = ('swinunetr', 'transunet', 'cv5', 'holdout', 'all')
NUM_FOLDS = 5
DEFAULT_VAL_RATIO = 0.2
IMAGE_NAME = re.compile(r'img(\d+)')
LABEL_NAME = re.compile(r'label(\d+)')

DESCRIPTION = f"""\
Convert the BTCV download (MICCAI 2015 "Multi-Atlas Labeling Beyond the Cranial Vault",
RawData.zip) to the volumetric layout read by BTCVDataset.

Input layout (RAW_ROOT is the folder holding RawData/, not RawData/Training):
  RAW_ROOT/RawData/Training/img/img0001.nii.gz      CT volume, Hounsfield units
  RAW_ROOT/RawData/Training/label/label0001.nii.gz  labels on the same grid, ids 0-13
  RAW_ROOT/RawData/Testing/img/img0061.nii.gz       unlabelled CT (optional)
(.nii files are accepted too and written gzip-compressed.)

Output layout (OUT_DIR):
  imagesTr/case0001.nii.gz   the image file's bytes, geometry untouched
  labelsTr/case0001.nii.gz   uint8 labels written with the image's header (same
                             shape, affine, qform and sform)
  imagesTs/case0061.nii.gz   the unlabelled Testing images (unless --no-unlabelled)
  dataset.json               name, protocol, labels, splits, folds, source, ...

Labels: BTCV ids 1 spleen, 2 right kidney, 3 left kidney, 4 gallbladder, 5 esophagus,
6 liver, 7 stomach, 8 aorta, 9 inferior vena cava, 10 portal and splenic veins,
11 pancreas, 12 right adrenal gland, 13 left adrenal gland (protocol transunet: the
8 organs of mmseg's SynapseDataset, 1 aorta, 2 gallbladder, 3 left kidney, 4 right
kidney, 5 liver, 6 pancreas, 7 spleen, 8 stomach; the other five become background).

Protocols (--protocol; splits.train / splits.val / splits.test of dataset.json):
  swinunetr  UNETR / SwinUNETR (MONAI): train 0001-0010, 0021-0034 (24), val
             0035-0040 (6), test empty; 13 organs.
  transunet  TransUNet / nnFormer (Synapse): test 0001 0002 0003 0004 0008 0022
             0025 0029 0032 0035 0036 0038 (12), train the other 18, val empty;
             8 organs.
  cv5        every labelled case in train, val and test empty, and {NUM_FOLDS} folds
             ("folds": [{{"train", "val"}}, ...]) drawn with --seed; 13 organs.
  holdout    val: a share of the labelled cases (--val-ratio, default
             {DEFAULT_VAL_RATIO}) drawn with --seed; train: the rest; test empty;
             13 organs. For other case sets: synthetic CT
             (tools/misc/generate_synthetic_ct.py), your own.
  all        every labelled case in train, val and test (no held-out data: overfitting
             checks and smoke tests on one to three cases); 13 organs.
Cases that are not the official 30: swinunetr and transunet keep their fixed lists;
listed cases the source lacks go to "missing" and source cases the lists lack are
converted but put in no split ("unassigned"), both reported. cv5, holdout and all use
whatever labelled cases there are (cv5 needs {NUM_FOLDS}, holdout 2).
"""

EPILOG = """\
examples:
  python tools/dataset_converters/btcv.py /data/BTCV -o data/btcv
  python tools/dataset_converters/btcv.py /data/BTCV -o data/btcv_cv5 --protocol cv5
  python tools/dataset_converters/btcv.py data/synthetic_ct -o data/synthetic_ct_btcv \\
      --protocol holdout
  python tools/dataset_converters/btcv.py /data/totalseg -o data/ts --protocol all \\
      --label-map 1:1,2:2,3:3,4:4,15:5,5:6,6:7,52:8,63:9,64:10,7:11,8:12,9:13
"""


def find_layout(raw_root: str) -> Tuple[str, Optional[str]]:
    """The ``RawData/Training`` folder and the ``RawData/Testing/img`` folder (None if
    absent) of ``raw_root``.

    Raises:
        FileNotFoundError: one line naming ``raw_root``, the layout expected and, when
            it can tell, the folder to pass instead.
    """
    training = osp.join(raw_root, 'RawData', 'Training')
    if osp.isdir(osp.join(training, 'img')) and osp.isdir(osp.join(training, 'label')):
        testing = osp.join(raw_root, 'RawData', 'Testing', 'img')
        return training, testing if osp.isdir(testing) else None
    expected = ('expected RAW_ROOT/RawData/Training/img/img0001.nii.gz and '
                'RAW_ROOT/RawData/Training/label/label0001.nii.gz')
    root = osp.abspath(raw_root)
    if osp.isdir(osp.join(root, 'img')) and osp.isdir(osp.join(root, 'label')):
        hint = (f'; {raw_root} looks like RawData/Training itself: pass '
                f'{osp.dirname(osp.dirname(root))}')
    elif osp.isdir(osp.join(root, 'Training')):
        hint = f'; {raw_root} looks like RawData itself: pass {osp.dirname(root)}'
    else:
        hint = ' (see --help)'
    raise FileNotFoundError(
        f'{raw_root} holds no RawData/Training/{{img,label}}: {expected}{hint}')


def list_numbered(folder: str, pattern: re.Pattern) -> Dict[int, str]:
    """{case number: path} of the NIfTI files of ``folder`` named ``pattern``
    (other files are ignored)."""
    found: Dict[int, str] = {}
    for name in sorted(os.listdir(folder)):
        stem = nifti_stem(name)
        match = pattern.fullmatch(stem) if stem else None
        if match is None:
            continue
        number = int(match.group(1))
        if number in found:
            raise ValueError(f'{found[number]} and {osp.join(folder, name)} are both '
                             f'case {number}')
        found[number] = osp.join(folder, name)
    return found


def case_id(number: int) -> str:
    """``case0001`` from 1."""
    return f'case{number:04d}'


def find_cases(training: str, testing: Optional[str]) -> Tuple[List[Case], List[Case]]:
    """The labelled cases of ``training`` and the unlabelled ones of ``testing``.

    Raises:
        FileNotFoundError: no images, or an image without its label (or the reverse).
        ValueError: a Testing case number repeats a Training one.
    """
    images = list_numbered(osp.join(training, 'img'), IMAGE_NAME)
    labels = list_numbered(osp.join(training, 'label'), LABEL_NAME)
    if not images:
        raise FileNotFoundError(f'{osp.join(training, "img")} holds no imgNNNN.nii.gz '
                                'files: expected img0001.nii.gz, ...')
    unpaired = sorted(set(images) ^ set(labels))
    if unpaired:
        number = unpaired[0]
        path = images.get(number) or labels.get(number)
        other = 'label' if number in images else 'img'
        raise FileNotFoundError(
            f'{path} has no partner in {osp.join(training, other)} (expected '
            f'{other}{number:04d}.nii.gz; unpaired cases: {unpaired})')
    labelled = [Case(case_id(n), images[n], labels[n]) for n in sorted(images)]
    unlabelled: List[Case] = []
    if testing is not None:
        tests = list_numbered(testing, IMAGE_NAME)
        clash = sorted(set(tests) & set(images))
        if clash:
            raise ValueError(f'{testing} repeats the Training case numbers {clash}')
        unlabelled = [Case(case_id(n), tests[n], None) for n in sorted(tests)]
    return labelled, unlabelled


def draw_folds(ids: Sequence[str], seed: int) -> List[Dict[str, List[str]]]:
    """{NUM_FOLDS} folds of ``ids``: shuffled with ``seed``, dealt round-robin."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    folds = []
    for fold in range(NUM_FOLDS):
        val = sorted(order[fold::NUM_FOLDS])
        folds.append(dict(train=sorted(set(ids) - set(val)), val=val))
    return folds


def make_splits(protocol: str, ids: Sequence[str], seed: int, val_ratio: float) -> Dict:
    """dataset.json's split entries for ``protocol`` over the labelled case ``ids``:
    ``splits``, and ``folds``, ``missing``, ``unassigned`` where they apply.

    Raises:
        ValueError: too few cases for cv5 or holdout.
    """
    ids = sorted(ids)
    if protocol in ('swinunetr', 'transunet'):
        lists = (
            dict(train=SWINUNETR_TRAIN_CASES, val=SWINUNETR_VAL_CASES, test=())
            if protocol == 'swinunetr' else dict(
                train=TRANSUNET_TRAIN_CASES, val=(), test=TRANSUNET_TEST_CASES))
        listed = {case_id(n) for numbers in lists.values() for n in numbers}
        splits = {
            split: [case_id(n) for n in sorted(numbers) if case_id(n) in ids]
            for split, numbers in lists.items()
        }
        return dict(
            splits=splits,
            missing=sorted(listed - set(ids)),
            unassigned=sorted(set(ids) - listed))
    if protocol == 'cv5':
        if len(ids) < NUM_FOLDS:
            raise ValueError(f'--protocol cv5 needs at least {NUM_FOLDS} labelled '
                             f'cases, got {len(ids)}: use --protocol holdout or all')
        return dict(
            splits=dict(train=ids, val=[], test=[]), folds=draw_folds(ids, seed))
    if protocol == 'holdout':
        if len(ids) < 2:
            raise ValueError(f'--protocol holdout needs at least 2 labelled cases, got '
                             f'{len(ids)}: use --protocol all')
        num_val = min(max(1, int(round(val_ratio * len(ids)))), len(ids) - 1)
        order = list(ids)
        random.Random(seed).shuffle(order)
        return dict(
            splits=dict(
                train=sorted(order[num_val:]), val=sorted(order[:num_val]), test=[]))
    return dict(splits=dict(train=ids, val=list(ids), test=list(ids)))


def label_table(protocol: str,
                label_map: Optional[Dict[int, int]]) -> Tuple[np.ndarray, bool]:
    """The lookup table from source label ids to output ids, and whether ids beyond
    it are errors (no label map: the source must hold BTCV ids 0..13)."""
    then = BTCV_TO_SYNAPSE if protocol == 'transunet' else None
    if label_map is None:
        identity = {btcv: btcv for btcv in range(NUM_BTCV_ORGANS + 1)}
        return lookup_table(identity, NUM_BTCV_ORGANS, then), True
    return lookup_table(label_map, max(label_map), then), False


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('raw_root', help='folder holding RawData/ (see above)')
    parser.add_argument(
        '-o',
        '--out-dir',
        default='data/btcv',
        help='output folder (default: %(default)s)')
    parser.add_argument(
        '--protocol',
        choices=PROTOCOLS,
        default='swinunetr',
        help='case splits and label set (see above; default: '
        '%(default)s)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the cv5 folds and the holdout draw, recorded in '
        'dataset.json (default: %(default)s)')
    parser.add_argument(
        '--val-ratio',
        type=float,
        default=None,
        help='share of the cases in val, protocol holdout only '
        f'(default: {DEFAULT_VAL_RATIO})')
    parser.add_argument(
        '--label-map',
        default=None,
        help='RAW:BTCV,... maps the source label ids to the 13 BTCV organ ids first '
        '(see above); ids left out become background. Default: none, the source '
        'holds BTCV ids and any other id is an error')
    parser.add_argument(
        '--no-unlabelled',
        action='store_true',
        help='skip RawData/Testing (no imagesTs/)')
    parser.add_argument(
        '--affine-atol',
        type=float,
        default=AFFINE_TOLERANCE,
        help='largest difference allowed between an image\'s and its '
        'label\'s affine entries (default: %(default)s)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into a non-empty output folder, replacing its '
        'imagesTr/, labelsTr/, imagesTs/ and dataset.json')
    args = parser.parse_args(argv)
    if args.label_map is not None:
        try:
            args.label_map = parse_label_map(args.label_map)
        except ValueError as error:
            parser.error(f'--label-map: {error}')
    if args.val_ratio is None:
        args.val_ratio = DEFAULT_VAL_RATIO
    elif args.protocol != 'holdout':
        parser.error(f'--val-ratio applies to --protocol holdout only, not '
                     f'{args.protocol}')
    elif not 0 < args.val_ratio < 1:
        parser.error(f'--val-ratio must be in (0, 1), got {args.val_ratio}')
    if args.affine_atol < 0:
        parser.error(f'--affine-atol must be >= 0, got {args.affine_atol}')
    return args


def dataset_json(args: argparse.Namespace, split_info: Dict,
                 unlabelled: Sequence[Case]) -> Dict:
    """The content of dataset.json."""
    content = dict(
        name='BTCV',
        protocol=args.protocol,
        labels=labels_json(SYNAPSE_CLASSES if args.protocol ==
                           'transunet' else BTCV_CLASSES),
        splits=split_info['splits'])
    if 'folds' in split_info:
        content['folds'] = split_info['folds']
    if args.protocol in ('cv5', 'holdout'):
        content['seed'] = args.seed
    if args.protocol == 'holdout':
        content['val_ratio'] = args.val_ratio
    content.update(
        unlabelled=[case.case_id for case in unlabelled],
        unassigned=split_info.get('unassigned', []),
        missing=split_info.get('missing', []),
        label_map=(None if args.label_map is None else {
            str(raw): btcv
            for raw, btcv in sorted(args.label_map.items())
        }),
        source=osp.abspath(args.raw_root),
        converter='tools/dataset_converters/btcv.py')
    return content


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the conversion; ``argv`` as on the command line (default: sys.argv)."""
    args = parse_args(argv)
    training, testing = find_layout(args.raw_root)
    labelled, unlabelled = find_cases(training, None if args.no_unlabelled else testing)
    split_info = make_splits(args.protocol, [case.case_id for case in labelled],
                             args.seed, args.val_ratio)
    for key, what in (('missing', 'listed by the protocol but not in the source'),
                      ('unassigned', 'converted but in no split of the protocol')):
        if split_info.get(key):
            print_log(
                f'{args.protocol}: cases {what}: {split_info[key]}',
                logger='current',
                level=logging.WARNING)
    output_is_taken(args.out_dir, args.force)
    check_cases(labelled + unlabelled, args.affine_atol)

    table, strict = label_table(args.protocol, args.label_map)
    with staged_output(args.out_dir, args.force) as staging:
        present = write_cases(labelled + unlabelled, staging, table, strict)
        write_dataset_json(staging, dataset_json(args, split_info, unlabelled))
    empty = [case for case, ids in present.items() if ids == [0]]
    if empty:
        print_log(
            f'cases without any organ voxel after relabelling: {empty} '
            '(check --label-map)',
            logger='current',
            level=logging.WARNING)


if __name__ == '__main__':
    run_cli(main)
