"""Convert the Synapse / BTCV multi-organ CT download to mmseg's SynapseDataset layout.

Follows the TransUNet protocol (Chen et al., "TransUNet: Transformers Make Strong
Encoders for Medical Image Segmentation", 2021): 18 training and 12 test cases, HU
clipped to [-125, 275], 8 organs. Each axial slice (``data[:, :, k]`` of the NIfTI
array) becomes one image PNG and one label PNG named ``case{id:04d}_slice{k:03d}.png``,
so the slices of a case can be stacked back into its volume in array order.

In-plane orientation (the same for image and label): the radiological view, read from
the image's NIfTI affine. Rows run from anterior (top) to posterior (bottom) and
columns from the patient's right (left of the image) to the patient's left.

    python tools/dataset_converters/synapse.py RAW_ROOT [-o data/synapse]
        [--train-cases N ...] [--test-cases N ...] [--label-map RAW:BTCV,...] [--force]

Bad input stops the conversion with one ``error: ...`` line naming the file: a
missing case, a NIfTI file that cannot be read (broken header, truncated voxels), a
label of another shape or orientation than its image, negative or fractional label
ids and, without ``--label-map``, ids outside BTCV's 0..13 (with a map, ids it does
not list become background). The slices are written into a temporary folder beside
the output and moved in at the end, so a failure leaves the output folder as it was.
"""
import argparse
import json
import os
import os.path as osp
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import track_iter_progress
from PIL import Image

from mmseg_fusion.datasets.converters.staging import output_is_taken, staged_output
from mmseg_fusion.utils import run_cli
from mmseg_fusion.utils.abdominal_labels import (BTCV_TO_SYNAPSE, NUM_BTCV_ORGANS,
                                                 TRANSUNET_TEST_CASES,
                                                 TRANSUNET_TRAIN_CASES, lookup_table,
                                                 parse_label_map)

# TransUNet's lists_Synapse train.txt and test_vol.txt.
TRAIN_CASES = TRANSUNET_TRAIN_CASES
TEST_CASES = TRANSUNET_TEST_CASES

HU_MIN = -125.0
HU_MAX = 275.0

OUTPUTS = ('img_dir', 'ann_dir', 'splits', 'spacing.json')

DESCRIPTION = """\
Convert the Synapse multi-organ CT download (BTCV, MICCAI 2015 "Multi-Atlas Labeling
Beyond the Cranial Vault") to mmseg's SynapseDataset layout, TransUNet protocol.

Input layout (RAW_ROOT is the folder holding RawData/, or RawData/Training itself):
  RAW_ROOT/RawData/Training/img/img0001.nii.gz      CT volumes, Hounsfield units
  RAW_ROOT/RawData/Training/label/label0001.nii.gz  organ labels, same grid

Output layout (OUT_DIR):
  img_dir/{train,val}/case0005_slice000.png  CT slice, uint8 greyscale PNG,
                          round((clip(HU, -125, 275) + 125) / 400 * 255)
  ann_dir/{train,val}/case0005_slice000.png  labels: 0 background, 1 aorta,
                          2 gallbladder, 3 left kidney, 4 right kidney,
                          5 liver, 6 pancreas, 7 spleen, 8 stomach
  splits/{train,val}.txt                     case names, one a line
  spacing.json                               {"case0001": [row_mm, col_mm, slice_mm]}
Test cases go to val (mmseg reads the test split from img_dir/val). Slices keep the
original in-plane size and are shown in the radiological view: anterior at the top,
the patient's right on the left of the image.

Read it with mmseg_fusion's SynapseSliceDataset (configs/_base_/datasets/synapse.py),
which gives every slice its case, slice index and spacing (from spacing.json). Images
are PNG, not mmseg's default .jpg: mmseg's own SynapseDataset needs
img_suffix='.png', e.g. dict(type='SynapseDataset', img_suffix='.png', ...).
"""

EPILOG = """\
example:
  python tools/dataset_converters/synapse.py /data/Abdomen -o data/synapse
  python tools/dataset_converters/synapse.py /data/other_ct -o data/other \\
      --train-cases 1 --test-cases 2 \\
      --label-map 1:1,2:2,3:3,4:4,15:5,5:6,6:7,52:8,63:9,64:10,7:11,8:12,9:13
"""


class InPlaneOrientation(NamedTuple):
    """How to turn a ``data[:, :, k]`` slice into the radiological view.

    Args:
        transpose (bool): swap the two in-plane array axes first.
        flip_rows (bool): then reverse the row axis.
        flip_cols (bool): then reverse the column axis.
    """
    transpose: bool
    flip_rows: bool
    flip_cols: bool


def scale_hu(hu: np.ndarray) -> np.ndarray:
    """Clip Hounsfield units to [-125, 275] and scale them to 0..255 uint8.

    Rounds half up: ``floor((clip(HU) + 125) * 255 / 400 + 0.5)``.
    """
    clipped = np.clip(hu.astype(np.float64), HU_MIN, HU_MAX)
    scaled = (clipped - HU_MIN) * 255.0 / (HU_MAX - HU_MIN)
    return np.floor(scaled + 0.5).astype(np.uint8)


def radiological_orientation(axcodes: Sequence[Optional[str]]) -> InPlaneOrientation:
    """Orientation that shows ``data[:, :, k]`` with anterior up, patient right left.

    Args:
        axcodes (Sequence[str]): nibabel axis codes of the volume, e.g. ('R', 'A', 'S').
    """
    codes = tuple(axcodes)
    if len(codes) != 3 or codes[2] not in ('S', 'I') or set(
            codes[:2]) not in ({'L', 'A'}, {'L', 'P'}, {'R', 'A'}, {'R', 'P'}):
        raise ValueError(f'axis codes {codes} are not an axial volume: expected the '
                         'first two axes L/R and A/P, the third S/I')
    ap_axis = 0 if codes[0] in ('A', 'P') else 1
    return InPlaneOrientation(
        transpose=ap_axis == 1,
        flip_rows=codes[ap_axis] == 'A',
        flip_cols=codes[1 - ap_axis] == 'R')


def orient(volume: np.ndarray, orientation: InPlaneOrientation) -> np.ndarray:
    """Apply an in-plane orientation to an (X, Y, Z) volume; Z keeps its order."""
    if orientation.transpose:
        volume = volume.transpose(1, 0, 2)
    if orientation.flip_rows:
        volume = volume[::-1]
    if orientation.flip_cols:
        volume = volume[:, ::-1]
    return volume


def _import_nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise ImportError('the Synapse converter reads NIfTI with nibabel, which is '
                          'not installed: pip install nibabel (it is listed in '
                          'requirements/optional.txt)') from error
    return nibabel


def find_training_dir(raw_root: str) -> str:
    """Folder holding ``img/`` and ``label/``: RAW_ROOT/RawData/Training or RAW_ROOT."""
    for candidate in (osp.join(raw_root, 'RawData', 'Training'), raw_root):
        if osp.isdir(osp.join(candidate, 'img')) and osp.isdir(
                osp.join(candidate, 'label')):
            return candidate
    raise FileNotFoundError(f'{raw_root} holds neither RawData/Training/{{img,label}} '
                            'nor {img,label}: see --help for the input layout')


def case_paths(training_dir: str, case_id: int) -> Tuple[str, str]:
    """Image and label NIfTI paths of one case."""
    return (osp.join(training_dir, 'img', f'img{case_id:04d}.nii.gz'),
            osp.join(training_dir, 'label', f'label{case_id:04d}.nii.gz'))


def check_label_ids(path: str, ids: np.ndarray, label_map: Dict[int, int],
                    strict: bool) -> None:
    """With the default map (``strict``), refuse ids that are not BTCV's 0..13;
    with a ``--label-map``, ids it does not list become background.

    Raises:
        ValueError: naming the file, the ids found and the ids expected.
    """
    if not strict or not ids.size:
        return
    present = np.unique(ids)
    outside = present[present > max(label_map)]
    if outside.size:
        raise ValueError(f'label file {path} holds ids {outside[:10].tolist()} outside '
                         f'0..{max(label_map)}: expected the BTCV ids (or pass '
                         '--label-map)')


def convert_case(nib, training_dir: str, case_id: int, split: str, out_dir: str,
                 label_map: Dict[int, int], strict: bool) -> List[float]:
    """Write one case's slices; return its [row_mm, col_mm, slice_mm] spacing.

    Raises:
        ValueError: a file cannot be read (broken header, truncated voxels), the label
            is not on the image's grid, or holds negative, fractional or (``strict``)
            unknown ids; the message names the file.
    """
    # nibabel is there (see _import_nibabel): the volume converters' checks import
    from mmseg_fusion.datasets.converters.volume import load_header, read_label_ids
    case = f'case{case_id:04d}'
    img_path, label_path = case_paths(training_dir, case_id)
    image, label = load_header(img_path), load_header(label_path)
    if image.shape != label.shape:
        raise ValueError(f'label {label_path} has shape {label.shape} but its image '
                         f'{img_path} has shape {image.shape}: expected the same '
                         'grid')
    axcodes = nib.aff2axcodes(image.affine)
    if nib.aff2axcodes(label.affine) != axcodes:
        raise ValueError(f'label {label_path} has the axis codes '
                         f'{nib.aff2axcodes(label.affine)} but its image {img_path} '
                         f'has {axcodes}: expected the same orientation')
    orientation = radiological_orientation(axcodes)

    raw_labels = read_label_ids(label_path, label)
    check_label_ids(label_path, raw_labels, label_map, strict)
    lookup = lookup_table(label_map, int(raw_labels.max()), BTCV_TO_SYNAPSE)
    labels = orient(raw_labels, orientation)
    try:
        hu = orient(image.get_fdata(dtype=np.float32), orientation)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f'cannot read the voxels of image {img_path}: {error}: '
                         'expected a complete NIfTI file') from None

    for index in range(hu.shape[2]):
        name = f'{case}_slice{index:03d}.png'
        Image.fromarray(scale_hu(hu[:, :, index])).save(
            osp.join(out_dir, 'img_dir', split, name))
        Image.fromarray(lookup[labels[:, :, index].astype(np.int64)]).save(
            osp.join(out_dir, 'ann_dir', split, name))

    zooms = [round(float(zoom), 6) for zoom in image.header.get_zooms()[:3]]
    if orientation.transpose:
        zooms[0], zooms[1] = zooms[1], zooms[0]
    return zooms


def make_split_dirs(out_dir: str) -> None:
    """Make the split folders of the layout in ``out_dir``."""
    for sub in ('img_dir', 'ann_dir'):
        for split in ('train', 'val'):
            os.makedirs(osp.join(out_dir, sub, split), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'splits'), exist_ok=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('raw_root', help='folder holding RawData/Training (see above)')
    parser.add_argument(
        '-o', '--out-dir', default='data/synapse', help='output folder (data/synapse)')
    parser.add_argument(
        '--train-cases',
        type=int,
        nargs='+',
        default=list(TRAIN_CASES),
        help='training case ids (default: TransUNet lists_Synapse/train.txt, 18 cases)')
    parser.add_argument(
        '--test-cases',
        type=int,
        nargs='+',
        default=list(TEST_CASES),
        help='test case ids, written to val (default: TransUNet '
        'lists_Synapse/test_vol.txt, 12 cases)')
    parser.add_argument(
        '--label-map',
        default=None,
        help='RAW:BTCV,... maps raw label ids to the 13 BTCV organ ids (1 spleen, '
        '2 right kidney, 3 left kidney, 4 gallbladder, 5 esophagus, 6 liver, '
        '7 stomach, 8 aorta, 9 IVC, 10 portal/splenic vein, 11 pancreas, '
        '12 right adrenal, 13 left adrenal); ids left out become background. '
        'Default: identity, for the BTCV download')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into a non-empty output folder, replacing img_dir, ann_dir, '
        'splits and spacing.json')
    args = parser.parse_args(argv)

    args.strict_ids = args.label_map is None
    if args.label_map is None:
        args.label_map = {btcv: btcv for btcv in range(1, NUM_BTCV_ORGANS + 1)}
    else:
        try:
            args.label_map = parse_label_map(args.label_map)
        except ValueError as error:
            parser.error(f'--label-map: {error}')
    for flag, cases in (('--train-cases', args.train_cases), ('--test-cases',
                                                              args.test_cases)):
        if any(case < 0 for case in cases) or len(set(cases)) != len(cases):
            parser.error(f'{flag} {cases}: ids must be distinct and >= 0')
    shared = sorted(set(args.train_cases) & set(args.test_cases))
    if shared:
        parser.error(f'cases {shared} are in both --train-cases and --test-cases')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the conversion; ``argv`` as on the command line (default: sys.argv)."""
    args = parse_args(argv)
    nib = _import_nibabel()
    output_is_taken(args.out_dir, args.force, OUTPUTS)
    training_dir = find_training_dir(args.raw_root)
    jobs = [(case, 'train') for case in args.train_cases]
    jobs += [(case, 'val') for case in args.test_cases]
    missing = [
        path for case, _ in jobs for path in case_paths(training_dir, case)
        if not osp.isfile(path)
    ]
    if missing:
        raise FileNotFoundError(f'missing input files: {missing}')

    with staged_output(args.out_dir, args.force, OUTPUTS) as staging:
        make_split_dirs(staging)
        spacing = {}
        for case_id, split in track_iter_progress(jobs):
            spacing[f'case{case_id:04d}'] = convert_case(nib, training_dir, case_id,
                                                         split, staging, args.label_map,
                                                         args.strict_ids)
        for split, cases in (('train', args.train_cases), ('val', args.test_cases)):
            with open(osp.join(staging, 'splits', f'{split}.txt'), 'w') as file:
                file.writelines(f'case{case:04d}\n' for case in cases)
        with open(osp.join(staging, 'spacing.json'), 'w') as file:
            json.dump(spacing, file, indent=1)


if __name__ == '__main__':
    # A wrong layout, missing file or bad case is one `error: ...` line, exit status 1.
    run_cli(main, catch=(FileNotFoundError, FileExistsError, ValueError, ImportError))
