"""Generate a synthetic polyp-like segmentation dataset for demos and smoke tests.

Each image is a pinkish-red mucosa-like background (low-frequency colour variation,
darker vessel-like curves, uneven lighting) with usually one or two lesions: blobs with
irregular boundaries whose colour differs moderately from the background and that are
shaded like a dome, plus small specular highlights, blur and noise. The output has the
layout of ``tools/dataset_converters`` (read by ``PolypDataset``)::

    {out}/img_dir/{train,val}/{name}.png    RGB image
    {out}/ann_dir/{train,val}/{name}.png    mask, values {0, 1}
    {out}/splits/{train,val}.txt            names; splits/info.txt records the seed

Image ``i`` of a split depends only on (seed, split, i), so the output is the same for a
seed whatever the other arguments.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import cv2
import numpy as np

from mmseg_fusion.utils import prepare_output_folder

# Colours are BGR (cv2 order), in [0, 255].
MUCOSA_BGR = np.array([95.0, 105.0, 200.0])
LESION_SHIFT_BGR = np.array([12.0, 28.0, 8.0])
EMPTY_PROBABILITY = 0.04
TWO_LESION_PROBABILITY = 0.3
OUTPUT_ENTRIES = ('img_dir', 'ann_dir', 'splits')


def smooth_field(rng: np.random.Generator,
                 size: int,
                 cells: int,
                 channels: int = 1) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a ``cells`` grid upsampled to ``size``."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells, channels)).astype(np.float32)
    field = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return field.reshape(size, size, channels)


def mucosa(rng: np.random.Generator, size: int) -> np.ndarray:
    """Background: tinted mucosa colour, smooth colour variation, uneven light."""
    base = MUCOSA_BGR + rng.normal(0.0, 8.0, 3)
    colour = base + 18.0 * smooth_field(rng, size, rng.integers(3, 6), 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    centre = rng.uniform(0.2, 0.8, 2)
    falloff = (xx - centre[0])**2 + (yy - centre[1])**2
    light = 1.05 - rng.uniform(0.5, 0.9) * falloff
    fine = 6.0 * smooth_field(rng, size, size // 8, 1)
    return colour * light[..., None] + fine


def draw_vessels(rng: np.random.Generator, image: np.ndarray) -> None:
    """Darken the image in place along a few thin wandering curves."""
    size = image.shape[0]
    layer = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(3, 8)):
        steps = rng.integers(6, 14)
        angle = rng.uniform(0, 2 * np.pi)
        turns = np.cumsum(rng.normal(0.0, 0.5, steps)) + angle
        step = size * rng.uniform(0.04, 0.08)
        start = rng.uniform(0, size, 2)
        points = start + np.cumsum(
            np.stack([np.cos(turns), np.sin(turns)], axis=1) * step, axis=0)
        points = np.round(np.vstack([start, points])).astype(np.int32)
        cv2.polylines(
            layer, [points],
            False,
            float(rng.uniform(0.15, 0.35)),
            thickness=int(rng.integers(1, 3)),
            lineType=cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.7)
    image *= 1.0 - layer[..., None] * np.array([0.6, 0.9, 0.5])


def lesion_outline(rng: np.random.Generator, size: int) -> np.ndarray:
    """Polygon of a rotated ellipse whose radius wobbles with a few harmonics."""
    radius = size * rng.uniform(0.08, 0.24)
    margin = radius * 0.8
    centre = rng.uniform(margin, size - margin, 2)
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wobble = np.ones_like(theta)
    for k in range(2, 6):
        amplitude = rng.uniform(0.0, 0.24 / k)
        wobble += amplitude * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    aspect = rng.uniform(0.65, 1.0)
    rotation = rng.uniform(0, np.pi)
    x = radius * wobble * np.cos(theta)
    y = radius * wobble * aspect * np.sin(theta)
    cos_r, sin_r = np.cos(rotation), np.sin(rotation)
    points = np.stack(
        [centre[0] + cos_r * x - sin_r * y, centre[1] + sin_r * x + cos_r * y], axis=1)
    return np.round(points).astype(np.int32)


def add_lesion(rng: np.random.Generator, image: np.ndarray,
               mask: np.ndarray) -> np.ndarray:
    """Paint one lesion into ``image``, mark it in ``mask``; return its own mask."""
    size = image.shape[0]
    own = np.zeros((size, size), np.uint8)
    cv2.fillPoly(own, [lesion_outline(rng, size)], 1)
    mask |= own
    # Dome shading: distance to the edge, normalised, lit from a random direction.
    dist = cv2.distanceTransform(own, cv2.DIST_L2, 5)
    height = np.sqrt(dist / max(float(dist.max()), 1.0))
    gy, gx = np.gradient(height)
    light_angle = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + 0.10 * height + 3.0 * (
        np.cos(light_angle) * gx + np.sin(light_angle) * gy)
    shift = LESION_SHIFT_BGR * rng.uniform(0.7, 1.3, 3) * rng.choice([-1.0, 1.0])
    texture = 10.0 * smooth_field(rng, size, size // 4, 1)
    alpha = cv2.GaussianBlur(own.astype(np.float32), (0, 0), 1.2)[..., None]
    lesion = (image + shift + texture) * shade[..., None]
    image[:] = alpha * lesion + (1.0 - alpha) * image
    return own


def add_highlights(rng: np.random.Generator, image: np.ndarray,
                   regions: List[np.ndarray]) -> None:
    """Add small bright white spots: a few inside each region and on the background."""
    size = image.shape[0]
    spots = np.zeros((size, size), np.float32)
    centres = [rng.uniform(0, size, 2) for _ in range(rng.integers(2, 6))]
    for region in regions:
        ys, xs = np.nonzero(region)
        for index in rng.integers(0, len(ys), rng.integers(1, 4)):
            centres.append(np.array([xs[index], ys[index]], np.float64))
    for cx, cy in centres:
        axes = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        cv2.ellipse(spots, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360,
                    1.0, -1)
    spots = np.clip(cv2.GaussianBlur(spots, (0, 0), 0.8) * 1.5, 0.0, 1.0)[..., None]
    image[:] = spots * 250.0 + (1.0 - spots) * image


def synthesize(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One (image BGR uint8 (size, size, 3), mask uint8 {0, 1} (size, size)) sample."""
    image = mucosa(rng, size)
    draw_vessels(rng, image)
    mask = np.zeros((size, size), np.uint8)
    draw = rng.uniform()
    count = 0 if draw < EMPTY_PROBABILITY else (2 if draw > 1.0 -
                                                TWO_LESION_PROBABILITY else 1)
    regions = [add_lesion(rng, image, mask) for _ in range(count)]
    add_highlights(rng, image, regions)
    image = cv2.GaussianBlur(image, (0, 0), 0.6)
    image += rng.normal(0.0, 4.0, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def write_split(out_dir: str, split: str, split_id: int, num: int, size: int,
                seed: int) -> None:
    """Generate and write ``num`` samples of ``split`` and its name list."""
    names = [f'synthetic_{split}_{i:05d}' for i in range(num)]
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(out_dir, sub, split), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'splits'), exist_ok=True)
    for index, name in enumerate(names):
        image, mask = synthesize(np.random.default_rng([seed, split_id, index]), size)
        cv2.imwrite(osp.join(out_dir, 'img_dir', split, name + '.png'), image)
        cv2.imwrite(osp.join(out_dir, 'ann_dir', split, name + '.png'), mask)
    with open(osp.join(out_dir, 'splits', split + '.txt'), 'w') as f:
        f.writelines(name + '\n' for name in names)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic polyp-like dataset in the layout of '
        'tools/dataset_converters: img_dir/{train,val}/NAME.png (RGB), '
        'ann_dir/{train,val}/NAME.png (masks {0, 1}), splits/{train,val}.txt and '
        'splits/info.txt (the seed).')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--num-train',
        type=int,
        default=160,
        help='training images (default: %(default)s)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=40,
        help='validation images (default: %(default)s)')
    parser.add_argument(
        '--size',
        type=int,
        default=128,
        help='image side in pixels, at least 32 (default: %(default)s)')
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
        'img_dir/, ann_dir/ and splits/')
    args = parser.parse_args(argv)
    for name in ('num_train', 'num_val'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, '
                         f'got {getattr(args, name)}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    if args.size < 32:
        parser.error(f'--size must be >= 32, got {args.size}')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    prepare_output_folder(args.out, args.force, OUTPUT_ENTRIES)
    splits = (('train', args.num_train), ('val', args.num_val))
    for split_id, (split, num) in enumerate(splits):
        write_split(args.out, split, split_id, num, args.size, args.seed)
    with open(osp.join(args.out, 'splits', 'info.txt'), 'w') as f:
        f.write(f'generator: generate_synthetic_polyps.py\nseed: {args.seed}\n'
                f'size: {args.size}\n')
        f.writelines(f'count {split}: {num}\n' for split, num in splits)


if __name__ == '__main__':
    try:
        main()
    except FileExistsError as err:
        sys.exit(f'error: {err}')
