"""Generate synthetic abdominal CT volumes with organ labels, in the raw BTCV layout.

Each case is a body ellipse (subcutaneous fat, muscle wall, a spine, bowel and fat
between the organs) holding the 13 BTCV organs as ellipsoids and tubes at roughly
anatomical places, with contrast-enhanced CT values (liver about 60 HU, spleen 50,
kidney cortex 160, aorta 200, fat -100, air -1000), organ texture, partial-volume blur
and Gaussian noise. A smooth random displacement field, random organ sizes and places
make every case different; its voxel spacing is drawn too (anisotropic: 0.7-1.0 mm
in-plane, 2-5 mm between slices) and written in a correct affine, in LPS, RAS or a
random axis-flip orientation.

The output is the raw BTCV download's layout, so the demo is generate -> convert with
``tools/dataset_converters/btcv.py`` -> train::

    {out}/RawData/Training/img/img0001.nii.gz     int16 HU
    {out}/RawData/Training/label/label0001.nii.gz  uint8 BTCV ids 0-13
    {out}/RawData/Testing/img/img0061.nii.gz      unlabelled (--num-test-cases)
    {out}/generator.json                          arguments, spacing and orientation
                                                  of every case

Cases are numbered as BTCV's (labelled 0001-0010 and 0021-0040, unlabelled 0061-0080),
so every protocol of ``btcv.py`` works on 30 synthetic cases. Case ``n`` depends only
on (seed, n, shape): the same for a seed whatever the number of cases, and the same
patient (in world coordinates) whatever the orientation.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
from mmengine.utils import track_iter_progress
from scipy import ndimage

from mmseg_fusion.utils import prepare_output_folder
from mmseg_fusion.utils.abdominal_labels import (BTCV_LABELLED_CASES,
                                                 BTCV_UNLABELLED_CASES)

OUTPUT_ENTRIES = ('RawData', 'generator.json')
ORIENTATIONS = ('LPS', 'RAS', 'random')
MIN_SHAPE = (16, 16, 8)
IN_PLANE_SPACING = (0.7, 1.0)
SLICE_SPACING = (2.0, 5.0)
AIR_HU = -1000.0
FAT_HU = -100.0
VISCERAL_FAT_HU = -90.0
MUSCLE_HU = 45.0
BOWEL_HU = 30.0
BONE_HU = 450.0
NOISE_HU = 15.0


class Organ(NamedTuple):
    """An organ of the phantom, in body coordinates (x to the patient's right, y
    anterior, z superior; the body's inner ellipse spans about -1..1 in x and y, the
    volume -1..1 in z).

    Args:
        label (int): BTCV id.
        hu (float): mean Hounsfield units.
        texture (float): standard deviation of its smooth HU variation.
        centre (tuple): (x, y, z) of an ellipsoid, or of a tube's axis at z = 0.
        radii (tuple): (x, y, z) radii; a tube's z radius is half its length.
        tube (bool): a cylinder along z (vessels, esophagus) instead of an ellipsoid.
    """
    label: int
    hu: float
    texture: float
    centre: Tuple[float, float, float]
    radii: Tuple[float, float, float]
    tube: bool = False


# Painted in this order: later organs win where two overlap.
ORGANS = (
    Organ(6, 60.0, 6.0, (0.36, 0.02, 0.50), (0.58, 0.78, 0.55)),  # liver
    Organ(1, 50.0, 5.0, (-0.62, -0.30, 0.42), (0.22, 0.32, 0.30)),  # spleen
    Organ(7, 50.0, 5.0, (-0.30, 0.30, 0.50), (0.34, 0.32, 0.32)),  # stomach wall
    Organ(5, 40.0, 4.0, (-0.10, -0.28, 0.82), (0.07, 0.07, 0.20), tube=True),  # esoph.
    Organ(11, 45.0, 6.0, (-0.10, -0.02, 0.15), (0.40, 0.10, 0.10)),  # pancreas
    Organ(2, 160.0, 8.0, (0.42, -0.50, 0.00), (0.17, 0.22, 0.35)),  # right kidney
    Organ(3, 160.0, 8.0, (-0.42, -0.50, 0.08), (0.17, 0.22, 0.35)),  # left kidney
    Organ(12, 30.0, 4.0, (0.22, -0.38, 0.42), (0.06, 0.09, 0.12)),  # right adrenal
    Organ(13, 30.0, 4.0, (-0.24, -0.38, 0.45), (0.06, 0.09, 0.12)),  # left adrenal
    Organ(4, 10.0, 3.0, (0.32, 0.45, 0.10), (0.11, 0.13, 0.20)),  # gallbladder
    Organ(10, 165.0, 5.0, (-0.22, -0.10, 0.22), (0.34, 0.055, 0.06)),  # splenic vein
    Organ(9, 140.0, 5.0, (0.14, -0.35, -0.12), (0.07, 0.055, 0.88), tube=True),  # IVC
    Organ(8, 200.0, 6.0, (-0.08, -0.38, 0.00), (0.085, 0.085, 2.0), tube=True),  # aorta
)
# Portal vein: from the splenic vein's right end up into the liver hilum.
PORTAL_VEIN = ((0.12, -0.10, 0.22), (0.32, 0.00, 0.42), 0.05)
PORTAL_VEIN_HU = 165.0
KIDNEY_MEDULLA_HU = 110.0
STOMACH_FLUID_HU = 10.0
GAS_HU = -700.0


class CaseGeometry(NamedTuple):
    """Spacing (mm, canonical x, y, z) and the axes stored flipped relative to RAS."""
    spacing: Tuple[float, float, float]
    flips: Tuple[bool, bool, bool]


def smooth_noise(rng: np.random.Generator, shape: Sequence[int],
                 cells: Sequence[int]) -> np.ndarray:
    """Smooth random field scaled to [-1, 1]: uniform values on a ``cells`` grid
    spread over ``shape`` by separable Gaussian interpolation weights."""
    field = rng.uniform(-1.0, 1.0, tuple(cells)).astype(np.float32)
    for axis, (size, count) in enumerate(zip(shape, cells)):
        centres = np.linspace(-1.0, 1.0, count)
        positions = np.linspace(-1.0, 1.0, size)[:, None]
        weights = np.exp(-0.5 * ((positions - centres) / (1.2 / max(count - 1, 1)))**2)
        weights /= weights.sum(axis=1, keepdims=True)
        field = np.moveaxis(
            np.tensordot(weights.astype(np.float32), field, axes=([1], [axis])), 0,
            axis)
    return field / max(float(np.abs(field).max()), 1e-6)


def body_coordinates(
    rng: np.random.Generator, shape: Sequence[int]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[float, float]]:
    """Deformed normalised coordinates (x, y, z) of every voxel of the canonical grid
    and the body's half axes (a, b) in them.

    The grid spans -1..1 along each axis; a smooth displacement field (about 0.04 of
    the half width) deforms it, so every shape drawn from these coordinates bends.
    """
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing='ij')
    cells = (4, 4, 3)
    amplitude = rng.uniform(0.03, 0.05)
    x = x + amplitude * smooth_noise(rng, shape, cells)
    y = y + amplitude * smooth_noise(rng, shape, cells)
    z = z + amplitude * smooth_noise(rng, shape, cells)
    half_axes = (rng.uniform(0.82, 0.92), rng.uniform(0.62, 0.74))
    return x, y, z, half_axes


class Placement(NamedTuple):
    """One case's jittered centre and radii of an organ and its tube's drift phase."""
    centre: Tuple[float, float, float]
    radii: Tuple[float, float, float]
    phase: float


def place(organ: Organ, rng: np.random.Generator) -> Placement:
    """Jitter an organ's place (by up to 0.04) and size (by up to 15%) for one case."""
    centre = np.array(organ.centre) + rng.uniform(-0.04, 0.04, 3)
    radii = np.array(organ.radii) * rng.uniform(0.85, 1.15, 3)
    return Placement(
        tuple(centre.tolist()), tuple(radii.tolist()), float(rng.uniform(0, 2 * np.pi)))


def organ_mask(organ: Organ,
               placement: Placement,
               x: np.ndarray,
               y: np.ndarray,
               z: np.ndarray,
               scale: float = 1.0) -> np.ndarray:
    """Voxels of one organ placed by ``placement``, its radii times ``scale``."""
    centre = placement.centre
    radii = tuple(radius * scale for radius in placement.radii)
    if organ.tube:
        # The axis drifts a little with z; the tube is an ellipse in-plane.
        drift = 0.04 * np.sin(np.pi * z + placement.phase)
        inside = ((x - centre[0] - drift) / radii[0])**2 + (
            (y - centre[1]) / radii[1])**2 <= 1.0
        return inside & (np.abs(z - centre[2]) <= radii[2])
    if organ.label == 11:  # pancreas: the tail bends back towards the spleen
        y = y - 0.3 * (x - centre[0]) * np.abs(x - centre[0])
    distance = sum(((c - m) / r)**2 for c, m, r in zip((x, y, z), centre, radii))
    return distance <= 1.0


def segment_mask(x: np.ndarray, y: np.ndarray, z: np.ndarray, start: Sequence[float],
                 end: Sequence[float], radius: float) -> np.ndarray:
    """Voxels within ``radius`` of the segment from ``start`` to ``end``."""
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    direction = end - start
    t = ((x - start[0]) * direction[0] + (y - start[1]) * direction[1] +
         (z - start[2]) * direction[2]) / float(direction @ direction)
    t = np.clip(t, 0.0, 1.0)
    distance2 = ((x - start[0] - t * direction[0])**2 +
                 (y - start[1] - t * direction[1])**2 +
                 (z - start[2] - t * direction[2])**2)
    return distance2 <= radius**2


def synthesize(rng: np.random.Generator,
               shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """One canonical (RAS-ordered) case: (HU float32, labels uint8), both ``shape``."""
    x, y, z, (a, b) = body_coordinates(rng, shape)
    radius = np.sqrt((x / a)**2 + (y / b)**2)
    body = radius <= 1.0
    fat = rng.uniform(0.06, 0.12)
    wall = fat + rng.uniform(0.04, 0.07)
    inner = radius <= 1.0 - wall
    # Body coordinates: the inner ellipse spans about -1..1.
    bx, by = x / (a * (1.0 - wall)), y / (b * (1.0 - wall))

    hu = np.full(shape, AIR_HU, np.float32)
    hu[body] = FAT_HU
    hu[body & (radius <= 1.0 - fat)] = MUSCLE_HU
    bowel = smooth_noise(rng, shape, (10, 10, 6)) > rng.uniform(-0.2, 0.1)
    hu[inner] = np.where(bowel[inner], BOWEL_HU, VISCERAL_FAT_HU)
    gas = smooth_noise(rng, shape, (8, 8, 5)) > 0.75
    hu[inner & bowel & gas] = GAS_HU

    labels = np.zeros(shape, np.uint8)
    texture = smooth_noise(rng, shape, (6, 6, 5))
    for organ in ORGANS:
        placement = place(organ, rng)
        mask = organ_mask(organ, placement, bx, by, z) & inner
        hu[mask] = organ.hu + organ.texture * texture[mask]
        labels[mask] = organ.label
        if organ.label in (2, 3):  # the medulla enhances less than the cortex
            core = organ_mask(organ, placement, bx, by, z, scale=0.55) & mask
            hu[core] = KIDNEY_MEDULLA_HU
        if organ.label == 7:  # fluid inside the wall, gas floating on it
            lumen = organ_mask(organ, placement, bx, by, z, scale=0.8) & mask
            hu[lumen] = STOMACH_FLUID_HU + organ.texture * texture[lumen]
            level = placement.centre[1] + rng.uniform(0.10, 0.18)
            hu[lumen & (by > level)] = GAS_HU
    start, end, vein_radius = PORTAL_VEIN
    portal = segment_mask(bx, by, z, start, end, vein_radius) & inner
    hu[portal] = PORTAL_VEIN_HU
    labels[portal] = 10
    # Spine: a vertebral body behind the aorta, background in the labels.
    spine = ((bx / 0.16)**2 + ((by + 0.78) / 0.16)**2 <= 1.0) & body
    hu[spine] = BONE_HU
    labels[spine] = 0

    hu = ndimage.gaussian_filter(hu, sigma=(0.7, 0.7, 0.4))
    hu += rng.normal(0.0, NOISE_HU, shape).astype(np.float32)
    return hu, labels


def draw_geometry(rng: np.random.Generator, orientation: str) -> CaseGeometry:
    """A case's spacing and stored orientation."""
    in_plane = round(float(rng.uniform(*IN_PLANE_SPACING)), 4)
    slices = round(float(rng.uniform(*SLICE_SPACING)), 4)
    drawn = tuple(bool(flip) for flip in rng.integers(0, 2, 3))  # always drawn, so
    # the anatomy of a case is the same in every orientation
    flips = dict(LPS=(True, True, False), RAS=(False, False, False), random=drawn)
    flips = flips[orientation]
    return CaseGeometry((in_plane, in_plane, slices), flips)


def stored(volume: np.ndarray, geometry: CaseGeometry) -> Tuple[np.ndarray, np.ndarray]:
    """A canonical (RAS) volume as stored with ``geometry``: (array, affine).

    The canonical grid's centre is at the world origin; each flipped axis reverses the
    array and negates the affine's column, moving the origin to the axis's far end,
    so every voxel keeps its world position.
    """
    spacing = np.array(geometry.spacing, np.float64)
    shape = np.array(volume.shape)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -(shape - 1) / 2.0 * spacing
    for axis, flip in enumerate(geometry.flips):
        if flip:
            volume = np.flip(volume, axis)
            affine[:3, 3] += affine[:3, axis] * (shape[axis] - 1)
            affine[:3, axis] *= -1
    return np.ascontiguousarray(volume), affine


def save(array: np.ndarray, affine: np.ndarray, path: str) -> None:
    """Write a NIfTI volume with both qform and sform set to ``affine`` (scanner)."""
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code='scanner')
    image.set_sform(affine, code='scanner')
    image.header.set_xyzt_units('mm', 'sec')
    nib.save(image, path)


def write_case(out: str, number: int, labelled: bool, shape: Sequence[int], seed: int,
               orientation: str) -> Dict:
    """Generate and write case ``number``; return its record for generator.json."""
    rng = np.random.default_rng([seed, number])
    geometry = draw_geometry(rng, orientation)
    hu, labels = synthesize(rng, shape)
    hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    split = 'Training' if labelled else 'Testing'
    image, affine = stored(hu, geometry)
    save(image, affine, osp.join(out, 'RawData', split, 'img',
                                 f'img{number:04d}.nii.gz'))
    if labelled:
        label, _ = stored(labels, geometry)
        save(label, affine,
             osp.join(out, 'RawData', split, 'label', f'label{number:04d}.nii.gz'))
    return dict(
        spacing=list(geometry.spacing), axcodes=''.join(nib.aff2axcodes(affine)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog='example:\n  python tools/misc/generate_synthetic_ct.py --out '
        'data/synthetic_ct_raw\n  python tools/dataset_converters/btcv.py '
        'data/synthetic_ct_raw -o data/synthetic_ct --protocol holdout',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--num-cases',
        type=int,
        default=12,
        help='labelled cases, 1-30, numbered as BTCV\'s (0001-0010, '
        '0021-0040) (default: %(default)s)')
    parser.add_argument(
        '--num-test-cases',
        type=int,
        default=0,
        help='unlabelled cases in RawData/Testing, 0-20, numbered '
        '0061-0080 (default: %(default)s)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=3,
        default=[96, 96, 48],
        metavar=('X', 'Y', 'Z'),
        help='voxels per axis, slices last (default: 96 96 48)')
    parser.add_argument(
        '--orientation',
        choices=ORIENTATIONS,
        default='LPS',
        help='stored axis order: LPS (as most CT), RAS, or random '
        'flips per case (default: %(default)s)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='random seed; the output is a function of it '
        '(default: %(default)s)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write into a non-empty output folder, replacing its '
        'RawData/ and generator.json')
    args = parser.parse_args(argv)
    if not 1 <= args.num_cases <= len(BTCV_LABELLED_CASES):
        parser.error(f'--num-cases must be in 1..{len(BTCV_LABELLED_CASES)}, got '
                     f'{args.num_cases}')
    if not 0 <= args.num_test_cases <= len(BTCV_UNLABELLED_CASES):
        parser.error(f'--num-test-cases must be in 0..{len(BTCV_UNLABELLED_CASES)}, '
                     f'got {args.num_test_cases}')
    if any(size < low for size, low in zip(args.shape, MIN_SHAPE)):
        parser.error(f'--shape must be at least {" ".join(map(str, MIN_SHAPE))}, got '
                     f'{" ".join(map(str, args.shape))}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    """Generate the dataset; ``argv`` as on the command line (default: sys.argv)."""
    args = parse_args(argv)
    prepare_output_folder(args.out, args.force, OUTPUT_ENTRIES)
    jobs = [(number, True) for number in BTCV_LABELLED_CASES[:args.num_cases]]
    jobs += [(number, False) for number in BTCV_UNLABELLED_CASES[:args.num_test_cases]]
    os.makedirs(osp.join(args.out, 'RawData', 'Training', 'img'))
    os.makedirs(osp.join(args.out, 'RawData', 'Training', 'label'))
    if args.num_test_cases:
        os.makedirs(osp.join(args.out, 'RawData', 'Testing', 'img'))
    cases = {}
    for number, labelled in track_iter_progress(jobs):
        cases[f'img{number:04d}'] = write_case(args.out, number, labelled, args.shape,
                                               args.seed, args.orientation)
    record = dict(
        generator='tools/misc/generate_synthetic_ct.py',
        seed=args.seed,
        shape=args.shape,
        orientation=args.orientation,
        cases=cases)
    with open(osp.join(args.out, 'generator.json'), 'w') as file:
        json.dump(record, file, indent=2)
        file.write('\n')


if __name__ == '__main__':
    try:
        main()
    except FileExistsError as err:
        sys.exit(f'error: {err}')
