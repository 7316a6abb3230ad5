"""Convert the AMOS 2022 download to the volumetric layout of mmseg-fusion.

AMOS 2022 (Ji et al., "AMOS: A Large-Scale Abdominal Multi-Organ Benchmark for
Versatile Medical Image Segmentation", NeurIPS 2022 Datasets and Benchmarks;
zenodo.org/records/7155725, ``amos22.zip``): 15 organs; 240 training and 120
validation scans with labels, 240 test scans without; case ids up to 500 are CT, 501
to 600 MRI. ``AMOSDataset`` reads the output.

    python tools/dataset_converters/amos.py AMOS_ROOT [-o data/amos]
        [--modality ct|mri|all] [--val-ratio R] [--seed N] [--no-unlabelled] [--force]
"""
import argparse
import json
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmseg_fusion.datasets.converters.volume import (AFFINE_TOLERANCE, Case,
                                                     check_cases, labels_json,
                                                     nifti_stem, output_is_taken,
                                                     run_cli, staged_output,
                                                     write_cases, write_dataset_json)
from mmseg_fusion.utils.abdominal_labels import AMOS_CLASSES, AMOS_MAX_CT_ID

MODALITIES = ('ct', 'mri', 'all')
DEFAULT_VAL_RATIO = 0.1
CASE_NAME = re.compile(r'amos_(\d+)')
REQUIRED_KEYS = ('training', 'validation', 'labels')

DESCRIPTION = f"""\
Convert AMOS 2022 (amos22.zip) to the volumetric layout read by AMOSDataset.

Input layout (AMOS_ROOT is the extracted amos22/ folder):
  AMOS_ROOT/dataset.json       keys "training", "validation", "test", "labels", ...
  AMOS_ROOT/imagesTr/amos_0001.nii.gz   labelsTr/amos_0001.nii.gz   training
  AMOS_ROOT/imagesVa/amos_0008.nii.gz   labelsVa/amos_0008.nii.gz   validation
  AMOS_ROOT/imagesTs/amos_0002.nii.gz                               test, unlabelled
The cases are those dataset.json lists; ids up to {AMOS_MAX_CT_ID} are CT, above MRI.

Output layout (OUT_DIR):
  imagesTr/amos_0001.nii.gz   the image file's bytes, geometry untouched (training
                              and validation cases)
  labelsTr/amos_0001.nii.gz   uint8 labels on the image's grid, checked to be 0-15
  imagesTs/amos_0002.nii.gz   the unlabelled test images (unless --no-unlabelled)
  dataset.json                name, protocol (the modality), labels, splits, seed,
                              val_ratio, unlabelled, source

Labels: 1 spleen, 2 right kidney, 3 left kidney, 4 gallbladder, 5 esophagus, 6 liver,
7 stomach, 8 aorta, 9 inferior vena cava (postcava), 10 pancreas, 11 right adrenal
gland, 12 left adrenal gland, 13 duodenum, 14 bladder, 15 prostate/uterus.

Splits (dataset.json "splits"), of the cases of the chosen --modality (default ct):
  test   the official validation set (imagesVa, labelled), as 3D UX-Net and others
         report on it; its files go to imagesTr/labelsTr too.
  val    a --val-ratio share (default {DEFAULT_VAL_RATIO}) of the official training set,
         drawn with --seed; 0 leaves val empty.
  train  the rest of the official training set.
"""

EPILOG = """\
examples:
  python tools/dataset_converters/amos.py /data/amos22 -o data/amos
  python tools/dataset_converters/amos.py /data/amos22 -o data/amos_all --modality all
"""


def read_dataset_json(root: str) -> Dict:
    """AMOS_ROOT/dataset.json, checked to hold the keys the converter reads.

    Raises:
        FileNotFoundError: no dataset.json (one line naming ``root``, the layout
            expected and, when it can tell, the folder to pass instead).
        ValueError: dataset.json is not JSON or lacks a key.
    """
    path = osp.join(root, 'dataset.json')
    if not osp.isfile(path):
        expected = ('expected the extracted amos22/ folder holding dataset.json, '
                    'imagesTr/, labelsTr/, imagesVa/, labelsVa/ (and imagesTs/)')
        absolute = osp.abspath(root)
        if osp.isfile(osp.join(root, 'amos22', 'dataset.json')):
            hint = f'; pass {osp.join(root, "amos22")}'
        elif osp.isfile(osp.join(osp.dirname(absolute), 'dataset.json')):
            hint = f'; pass {osp.dirname(absolute)}'
        else:
            hint = ' (see --help)'
        raise FileNotFoundError(f'{root} holds no dataset.json: {expected}{hint}')
    try:
        with open(path) as file:
            content = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON: {error}') from None
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if not isinstance(content, dict) or missing:
        raise ValueError(f'{path} lacks the keys {missing}: expected AMOS 2022\'s '
                         f'dataset.json with {", ".join(REQUIRED_KEYS)} and test')
    return content


def entry_paths(root: str, entry, source: str) -> Tuple[str, Optional[str]]:
    """(image, label or None) paths of one dataset.json entry: a dict with "image"
    (and "label") or a plain image path, relative to ``root``."""
    if isinstance(entry, str):
        image, label = entry, None
    elif isinstance(entry, dict) and isinstance(entry.get('image'), str):
        image, label = entry['image'], entry.get('label')
    else:
        raise ValueError(f'dataset.json "{source}" entry {entry!r}: expected '
                         '{"image": ..., "label": ...} or an image path')
    return (osp.normpath(osp.join(root, image)),
            None if label is None else osp.normpath(osp.join(root, label)))


def amos_number(path: str, source: str) -> int:
    """The case number of ``amos_0001.nii.gz``."""
    stem = nifti_stem(osp.basename(path))
    match = CASE_NAME.fullmatch(stem) if stem else None
    if match is None:
        raise ValueError(f'dataset.json "{source}" lists {path}: expected files named '
                         'amos_NNNN.nii.gz')
    return int(match.group(1))


def keep_modality(number: int, modality: str) -> bool:
    """Whether case ``number`` (CT up to 500, MRI above) is of ``modality``."""
    return modality == 'all' or (number <= AMOS_MAX_CT_ID) == (modality == 'ct')


def list_cases(root: str, content: Dict, key: str, modality: str,
               labelled: bool) -> List[Case]:
    """The cases of the dataset.json list ``key`` of ``modality``, files checked.

    Raises:
        FileNotFoundError: a listed file is missing.
        ValueError: a labelled list's entry has no label.
    """
    cases = []
    for entry in content.get(key) or []:
        image, label = entry_paths(root, entry, key)
        number = amos_number(image, key)
        if not keep_modality(number, modality):
            continue
        if labelled and label is None:
            raise ValueError(f'dataset.json "{key}" entry {entry!r} has no label')
        for path in (image, label if labelled else None):
            if path is not None and not osp.isfile(path):
                raise FileNotFoundError(f'{path} is listed in {root}/dataset.json '
                                        f'("{key}") but does not exist')
        cases.append(Case(f'amos_{number:04d}', image, label if labelled else None))
    ids = [case.case_id for case in cases]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f'dataset.json "{key}" lists {repeated} more than once')
    return cases


def hold_out(ids: Sequence[str], val_ratio: float,
             seed: int) -> Tuple[List[str], List[str]]:
    """(train, val): ``round(val_ratio * n)`` of ``ids`` (at least one when the ratio
    is positive and n > 1) drawn with ``seed``; both sorted."""
    order = sorted(ids)
    num_val = int(round(val_ratio * len(order)))
    if val_ratio > 0 and len(order) > 1:
        num_val = min(max(num_val, 1), len(order) - 1)
    random.Random(seed).shuffle(order)
    return sorted(order[num_val:]), sorted(order[:num_val])


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('amos_root', help='the extracted amos22/ folder (see above)')
    parser.add_argument(
        '-o',
        '--out-dir',
        default='data/amos',
        help='output folder (default: %(default)s)')
    parser.add_argument(
        '--modality',
        choices=MODALITIES,
        default='ct',
        help=f'ct: ids <= {AMOS_MAX_CT_ID}, mri: ids above, all: both '
        '(default: %(default)s)')
    parser.add_argument(
        '--val-ratio',
        type=float,
        default=DEFAULT_VAL_RATIO,
        help='share of the official training cases held out as val, '
        'in [0, 1) (default: %(default)s)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the val draw, recorded in dataset.json '
        '(default: %(default)s)')
    parser.add_argument(
        '--no-unlabelled',
        action='store_true',
        help='skip the unlabelled test images (no imagesTs/)')
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
    if not 0 <= args.val_ratio < 1:
        parser.error(f'--val-ratio must be in [0, 1), got {args.val_ratio}')
    if args.affine_atol < 0:
        parser.error(f'--affine-atol must be >= 0, got {args.affine_atol}')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the conversion; ``argv`` as on the command line (default: sys.argv)."""
    args = parse_args(argv)
    root = args.amos_root
    content = read_dataset_json(root)
    training = list_cases(root, content, 'training', args.modality, labelled=True)
    validation = list_cases(root, content, 'validation', args.modality, labelled=True)
    unlabelled = ([] if args.no_unlabelled else list_cases(
        root, content, 'test', args.modality, labelled=False))
    if not training:
        raise ValueError(f'{root}/dataset.json lists no {args.modality} training '
                         'cases (see --modality)')
    clash = sorted({c.case_id for c in training} & {c.case_id for c in validation})
    if clash:
        raise ValueError(f'{root}/dataset.json lists {clash} in both "training" and '
                         '"validation"')
    train, val = hold_out([case.case_id for case in training], args.val_ratio,
                          args.seed)
    output_is_taken(args.out_dir, args.force)
    check_cases(training + validation + unlabelled, args.affine_atol)

    table = np.arange(len(AMOS_CLASSES), dtype=np.uint8)
    content = dict(
        name='AMOS',
        protocol=args.modality,
        labels=labels_json(AMOS_CLASSES),
        splits=dict(
            train=train, val=val, test=sorted(case.case_id for case in validation)),
        seed=args.seed,
        val_ratio=args.val_ratio,
        unlabelled=[case.case_id for case in unlabelled],
        source=osp.abspath(root),
        converter='tools/dataset_converters/amos.py')
    with staged_output(args.out_dir, args.force) as staging:
        write_cases(training + validation + unlabelled, staging, table, strict=True)
        write_dataset_json(staging, content)


if __name__ == '__main__':
    run_cli(main)
