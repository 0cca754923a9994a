"""Render images from a generator to PNG files.

    python -m renderer.generate --out out/ --seeds 0-3 --trunc 0.7

Without --network the built-in untrained demo network is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from .demo import build_demo_network
from .imaging import to_uint8
from .latents import latent_from_seed, one_hot_label, parse_seeds


@torch.no_grad()
def generate(G: torch.nn.Module, seeds: Sequence[int], truncation_psi: float = 1,
             noise_mode: str = 'const', class_idx: Optional[int] = None) -> list[np.ndarray]:
    """One uint8 [H, W, C] image per seed."""
    device = next(G.parameters()).device
    images = []
    for seed in seeds:
        z = latent_from_seed(seed, G.z_dim).to(device)
        if G.c_dim and class_idx is None:
            raise ValueError(f'this network is conditional: pass a class index in [0, {G.c_dim})')
        c = one_hot_label(G.c_dim, class_idx or 0, device)
        img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)
        images.append(to_uint8(img[0]))
    return images


def main(argv: Optional[Sequence[str]] = None) -> int:
    import imageio.v3 as iio
    parser = argparse.ArgumentParser(prog='python -m renderer.generate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='out', help='output folder (created if missing)')
    parser.add_argument('--seeds', default='0', help='seeds, e.g. "0-3,7" (default 0)')
    parser.add_argument('--trunc', type=float, default=1.0, help='truncation psi (default 1)')
    parser.add_argument('--noise-mode', choices=['const', 'random', 'none'], default='const')
    parser.add_argument('--class', dest='class_idx', type=int, default=None, help='class index (conditional nets)')
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        G = build_demo_network()
        images = generate(G, seeds, args.trunc, args.noise_mode, args.class_idx)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for seed, image in zip(seeds, images):
        path = os.path.join(args.out, f'seed{seed:04d}.png')
        iio.imwrite(path, image)
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
