"""Render images of a generator to PNG files, one per seed.

    python -m renderer.commands.generate --network A.pkl --seeds 0-3 --trunc 0.7 --out out/

Writes OUT/seedNNNN.png for every seed (z as in the published tools). Without
--network the built-in untrained demo network is used.
"""

from __future__ import annotations

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
    add_seeds_option,
    command_parser,
    latents_of,
    open_network,
    run_command,
)
from renderer.errors import RequestError
from renderer.generation import Latents, synthesize_images
from renderer.media.atomic import atomic_path, check_writable
from renderer.media.pictures import to_uint8
from renderer.media.progress import ProgressBar


def generate(G: torch.nn.Module, seeds: Sequence[int], latents: Latents = Latents(), noise_mode: str = 'const',
             batch: int = 8, progress: Optional[ProgressBar] = None) -> list[np.ndarray]:
    """One uint8 [H, W, C] image per seed, rendered `batch` seeds at a time."""
    images = []
    for start in range(0, len(seeds), batch):
        ws = latents.ws(G, seeds[start:start + batch])
        images += [to_uint8(img) for img in synthesize_images(G, ws, noise_mode=noise_mode)]
        if progress is not None:
            progress.update(len(images))
    return images


def main(argv: Sequence[str]) -> int:
    import imageio.v3 as iio
    parser = command_parser('python -m renderer.commands.generate', __doc__)
    add_network_options(parser)
    add_seeds_option(parser)
    add_latent_options(parser)
    add_noise_option(parser)
    add_batch_option(parser)
    parser.add_argument('--out', default='out', help='output folder (created if missing; default out)')
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise RequestError(f'--out {args.out} is a file; give a folder for the PNGs')
    paths = [os.path.join(args.out, f'seed{seed:04d}.png') for seed in args.seeds]
    check_writable(paths[:1])
    G = open_network(args.network, args.device, args.class_idx)
    latents = latents_of(args)
    with ProgressBar('images', len(args.seeds), 'images') as bar:
        images = generate(G, args.seeds, latents, args.noise_mode, args.batch, bar)
    for path, image in zip(paths, images, strict=True):
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, image, extension='.png')
        print(path)
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-generate`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
