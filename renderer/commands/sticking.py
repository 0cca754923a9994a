"""The texture-sticking diagnostics of the paper (renderer.diagnostics.sticking) as PNG files.

    python -m renderer.commands.sticking average --network A.pkl [--network-b B.pkl] --seed 0 --out avg.png
    python -m renderer.commands.sticking slice --network A.pkl --motion translate --frames 64 --out slice.png

`average` writes [central | average] (B's pair below A's) and the raw float32 arrays
beside the PNG: STEM.npy = [2, C, H, W] (central, average) of A and STEM-b.npy of B.
`slice` writes [middle frame | slice], A's and B's side by side. Without --network
the built-in untrained demo network is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from renderer.commands.common import (
    add_batch_option,
    add_latent_options,
    add_network_options,
    add_noise_option,
    add_seed_option,
    command_parser,
    finite_float,
    latents_of,
    open_network,
    positive_int,
    run_command,
)
from renderer.diagnostics.sticking import (
    AXES,
    DEFAULT_SIGMA,
    averaged_image,
    centre_index,
    check_slice_index,
    perturbed_ws,
    slice_diagnostic,
)
from renderer.errors import RequestError
from renderer.generation import check_seed, require_input_transform
from renderer.media.atomic import atomic_files, check_writable
from renderer.media.compose import side_by_side
from renderer.media.pictures import to_uint8
from renderer.media.progress import ProgressBar
from renderer.motion import KINDS, slice_animation
from renderer.options import MIN_SLICE_FRAMES

PAIR_GAP = 4          # Pixels between the two images of one network.
NETWORK_GAP = 16      # Pixels between network A's and network B's images.


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = command_parser('python -m renderer.commands.sticking', __doc__)
    sub = parser.add_subparsers(dest='diagnostic', required=True)
    average = sub.add_parser('average', help='central image beside the average of perturbed images')
    slicer = sub.add_parser('slice', help='middle frame beside a row/column slice through time')
    for p in (average, slicer):
        add_network_options(p, network_b=True)
        add_seed_option(p, 'seed of the central latent (default 0)')
        p.add_argument('--out', required=True, help='output PNG')
        add_latent_options(p)
        add_batch_option(p)
        add_noise_option(p)
    average.add_argument('--num-samples', type=positive_int, default=32, help='perturbed samples (default 32)')
    average.add_argument('--sigma', type=float, default=DEFAULT_SIGMA,
                         help=f'perturbation in z units (default {DEFAULT_SIGMA})')
    average.add_argument('--perturb-seed', type=int, default=0, help='seed of the perturbations (default 0)')
    slicer.add_argument('--motion', choices=['translate', 'latent'], default='translate',
                        help='translate: the content moves --step pixels per frame along the slice; '
                             'latent: interpolation from --seed to --seed-to (default translate)')
    slicer.add_argument('--frames', type=int, default=64, help='number of frames (default 64)')
    slicer.add_argument('--axis', choices=AXES, default='row', help='row: time runs down; column: time runs right')
    slicer.add_argument('--index', type=int, default=None, help='row / column index (default: the centre)')
    slicer.add_argument('--step', type=finite_float, default=1.0,
                        help='translation in pixels per frame, along x for rows and y for columns (default 1)')
    slicer.add_argument('--seed-to', type=int, default=None, help='end seed of the latent motion (default seed+1)')
    slicer.add_argument('--kind', choices=KINDS, default='linear', help='latent interpolation (default linear)')
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    if args.diagnostic == 'slice':
        if args.frames < MIN_SLICE_FRAMES:
            raise RequestError(f'--frames must be >= {MIN_SLICE_FRAMES}, got {args.frames}')
        if args.seed_to is not None:
            check_seed(args.seed_to, '--seed-to')
    if os.path.splitext(args.out)[1].lower() != '.png':
        raise RequestError(f'--out must be a .png file, got {args.out!r}')


def _open(source: str, args: argparse.Namespace, name: str) -> torch.nn.Module:
    G = open_network(source, args.device, args.class_idx)
    if args.diagnostic == 'slice':
        if args.motion == 'translate':
            require_input_transform(G, f'network {name} ({source}) cannot be translated',
                                    'use --motion latent for StyleGAN2 networks')
        check_slice_index(args.axis, centre_index(G) if args.index is None else args.index,
                          G.img_resolution, G.img_resolution)
    return G


def main(argv: Sequence[str]) -> int:
    args = _parse_args(argv)
    _check_args(args)
    check_writable(_targets(args.out, 2 if args.network_b else 1, args.diagnostic == 'average'))
    latents = latents_of(args)
    sources = [('A', args.network)] + ([('B', args.network_b)] if args.network_b else [])
    networks = [(name, _open(source, args, name)) for name, source in sources]
    panels, arrays = [], []
    for name, G in networks:
        if args.diagnostic == 'average':
            ws = perturbed_ws(G, args.seed, args.num_samples, args.sigma, args.perturb_seed, latents.truncation_psi,
                              latents.truncation_cutoff, latents.class_idx)
            with ProgressBar(f'average {name}', len(ws), 'images') as bar:
                pair = averaged_image(G, ws, args.batch, args.noise_mode, bar)
            arrays.append(torch.stack(pair).cpu().numpy())
        else:
            animation = slice_animation(G, args.motion, args.frames, args.axis, args.step, seed=args.seed,
                                        seed_to=args.seed_to, kind=args.kind, latents=latents)
            with ProgressBar(f'slice {name}', len(animation), 'frames') as bar:
                pair = slice_diagnostic(G, animation, args.axis, args.index, args.batch, bar, args.noise_mode)
        panels.append(side_by_side(list(pair), PAIR_GAP))
    image = side_by_side(panels, NETWORK_GAP, vertical=args.diagnostic == 'average')
    _write_outputs(args.out, image, arrays)
    return 0


def _targets(path: str, networks: int, with_arrays: bool) -> list[str]:
    """The PNG, then STEM.npy (and STEM-b.npy) for the averaged image's raw arrays."""
    stem = os.path.splitext(path)[0]
    return [path] + ([f'{stem}{suffix}.npy' for suffix in ['', '-b'][:networks]] if with_arrays else [])


def _write_outputs(path: str, image: torch.Tensor, arrays: list[np.ndarray]) -> None:
    """The PNG and the .npy arrays (STEM.npy, STEM-b.npy), all renamed into place together."""
    import imageio.v3 as iio
    targets = _targets(path, len(arrays), bool(arrays))
    with atomic_files(targets) as (png_tmp, *array_tmps):
        iio.imwrite(png_tmp, to_uint8(image), extension='.png')
        for tmp, array in zip(array_tmps, arrays, strict=True):
            np.save(tmp, array)
    print('\n'.join(targets))


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-sticking`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
