"""Average power spectra of generated images and of a folder of real images (StyleGAN3 paper, figure 3 style).

    python -m renderer.commands.spectrum --network A.pkl [--network-b B.pkl] [--real-dir DIR] --num-images 1000 \\
        --out spectra.png

(--network defaults to the built-in demo network) writes `spectra.png` (one heat map per source and their
radial profiles overlaid) and `spectra.npz` beside it with the raw arrays: '<label>_power' [H, W],
'<label>_profile' and '<label>_freqs' per source (labels 'a', 'b' for the networks, 'real'), and 'freqs'
(the profile frequencies of the first source). Spectra: renderer.signal.spectra (Kaiser window of --beta,
normalised by the window energy, DC centred). The images are rendered in float32 unless --precision
says otherwise (the plot titles name any other precision).

Under torchrun the images are shared by the ranks (renderer.distributed) and rank 0 writes the files; the
spectra equal one process's to float64 rounding:

    torchrun --nproc-per-node 8 -m renderer.commands.spectrum --network A.pkl --num-images 70000 --out spectra.png
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np

from renderer.commands.common import (
    add_batch_option,
    add_distributed_options,
    add_network_options,
    add_precision_option,
    add_seed_option,
    command_parser,
    command_precision,
    command_world,
    finite_float,
    open_network,
    positive_int,
    run_command,
)
from renderer.diagnostics.spectrum import folder_spectrum, generated_spectrum, image_files
from renderer.distributed import World
from renderer.errors import RequestError
from renderer.media.atomic import check_writable
from renderer.media.plots import DEFAULT_RANGE_DB, write_spectrum_files
from renderer.media.progress import ProgressBar


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = command_parser('python -m renderer.commands.spectrum', __doc__)
    add_network_options(parser, network_b=True)
    parser.add_argument('--real-dir', default=None, help='folder of real images (searched recursively)')
    parser.add_argument('--num-images', type=positive_int, default=64,
                        help='images per network, and at most this many real images (default 64)')
    add_batch_option(parser)
    add_seed_option(parser, 'seed of the random latents (default 0)')
    parser.add_argument('--trunc', type=finite_float, default=1.0, help='truncation psi (default 1: none)')
    parser.add_argument('--resolution', type=positive_int, default=None,
                        help='resize real images to this size (default: require one size)')
    parser.add_argument('--beta', type=float, default=8.0, help='Kaiser window beta (default 8)')
    parser.add_argument('--range-db', type=float, default=DEFAULT_RANGE_DB,
                        help=f'dynamic range of the plots in dB (default {DEFAULT_RANGE_DB:g})')
    parser.add_argument('--out', default='spectra.png', help='output PNG; the arrays go to the same stem .npz')
    add_precision_option(parser)
    add_distributed_options(parser)
    return parser.parse_args(argv)


def _own_images(world: World, total: int, batch: int) -> int:
    """Images this rank computes of `total` dealt in batches of `batch`."""
    return sum(min(batch, total - start) for i, start in enumerate(range(0, total, batch)) if world.owns(i))


def main(argv: Sequence[str]) -> int:
    args = _parse_args(argv)
    if os.path.splitext(args.out)[1].lower() != '.png':
        raise RequestError(f'--out must be a .png file, got {args.out!r}')
    if not args.beta >= 0 or not args.range_db > 0:
        raise RequestError(f'--beta must be >= 0 and --range-db positive, got {args.beta} and {args.range_db}')
    outputs = [args.out, os.path.splitext(args.out)[0] + '.npz']
    spectra: dict[str, np.ndarray] = {}
    titles: dict[str, str] = {}
    with command_world(args) as world:
        world.agree('checking --out', lambda: check_writable(outputs) if world.is_main else None)
        if args.real_dir is not None:   # First: a bad image should fail before minutes of generation.
            total = world.agree('reading --real-dir', lambda: min(len(image_files(args.real_dir)), args.num_images))
            with ProgressBar('real images', _own_images(world, total, 8), 'images', enabled=world.is_main) as bar:
                real, count = folder_spectrum(args.real_dir, args.resolution, args.num_images, args.beta, bar.update,
                                              world=world)
            titles['real'] = f'real: {os.path.basename(os.path.normpath(args.real_dir))} ({count} images)'
        for label, source in (('a', args.network), ('b', args.network_b)):
            if source is None:
                continue
            G = open_network(source, args.device, world=world)
            precision = command_precision(G, args.precision, world)
            own = _own_images(world, args.num_images, args.batch)
            with ProgressBar(f'network {label}', own, 'images', enabled=world.is_main) as bar:
                spectra[label] = generated_spectrum(G, args.num_images, args.batch, args.seed, args.trunc,
                                                    args.beta, bar.update, precision=precision, world=world)
            shown = '' if precision == 'fp32' else f', {precision}'
            titles[label] = f'{label}: {os.path.basename(source) or source} ({args.num_images} images{shown})'
            del G
    if not world.is_main:
        return 0
    if args.real_dir is not None:
        spectra['real'] = real
    write_spectrum_files(args.out, spectra, titles, args.range_db)
    print(args.out)
    print(os.path.splitext(args.out)[0] + '.npz')
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-spectrum`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
