"""The two texture-sticking diagnostics of "Alias-Free Generative Adversarial Networks"
(Karras et al. 2021, section 1 and Figure 1).

- Averaged image: images generated from small random perturbations of one latent
  are averaged. Details should move with the content, so the average should be
  uniformly blurry; detail that stays sharp in it is stuck to the pixel grid.
- Slice: one row (or column) of pixels is taken from every frame of an animation
  and the slices are stacked, time running down (or right). When the content
  moves, details should trace curves; stuck details trace straight streaks along
  the time axis. Under a translation of one pixel per frame a perfectly
  equivariant network draws 45-degree streaks.

Command line:

    python -m renderer.sticking average --network A.pkl [--network-b B.pkl] --seed 0 --out avg.png
    python -m renderer.sticking slice --network A.pkl --motion translate --frames 64 --out slice.png

`average` writes [central | average] (B's pair below A's) and the raw float32 arrays
beside the PNG: STEM.npy = [2, C, H, W] (central, average) of A and STEM-b.npy of B.
`slice` writes [middle frame | slice], A's and B's side by side. Without --network
the built-in untrained demo network is used.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from .atomic import PendingFile
from .cli import add_network_options, open_network, run_command
from .compose import side_by_side
from .generation import device_of, has_input_transform, ws_from_seeds
from .imaging import to_uint8
from .latents import check_seed, latent_from_seed, one_hot_label
from .motion import (KINDS, Animation, interpolate_ws, render_frames,
                     translation_animation)
from .progress import ProgressBar

AXES = ('row', 'column')
DEFAULT_SIGMA = 0.2   # z units; see perturbed_ws.
PAIR_GAP = 4          # Pixels between the two images of one network.
NETWORK_GAP = 16      # Pixels between network A's and network B's images.


# ----------------------------------------------------------------------------
# Averaged image.

@torch.no_grad()
def perturbed_ws(G: torch.nn.Module, seed: int, num_samples: int, sigma: float, perturb_seed: int = 0,
                 truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                 class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [num_samples + 1, num_ws, w_dim]: row 0 from z(seed), row i > 0 from z(seed) + sigma * n_i.

    n_i ~ N(0, I) [z_dim] from a torch.Generator seeded with perturb_seed (CPU, float32).
    sigma is in z units: z ~ N(0, I), so sigma = 0.2 moves every coordinate by a fifth of
    its spread, a perturbation of norm ~0.2 * sqrt(z_dim) (about 11 degrees of arc in z): the
    images stay recognisably the same while their details move.
    """
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f'num_samples must be an integer >= 1, got {num_samples!r}')
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f'sigma must be finite and >= 0, got {sigma!r}')
    central = ws_from_seeds(G, [seed], truncation_psi, truncation_cutoff, class_idx)
    generator = torch.Generator().manual_seed(int(perturb_seed))
    noise = torch.randn([int(num_samples), G.z_dim], generator=generator)
    z = latent_from_seed(seed, G.z_dim) + sigma * noise
    device = device_of(G)
    c = one_hot_label(G.c_dim, class_idx or 0, device).expand(len(z), -1)
    ws = G.mapping(z.to(device), c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return torch.cat([central, ws])


@torch.no_grad()
def averaged_image(G: torch.nn.Module, ws: torch.Tensor, batch: int = 8, noise_mode: str = 'const',
                   progress: Optional[ProgressBar] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image of ws[0], mean image over all rows of ws), each float32 [C, H, W] in [-1, 1].

    The mean is accumulated in float64. Rendered with G's current input transform.
    """
    if ws.ndim != 3 or len(ws) < 1:
        raise ValueError(f'ws must be [N >= 1, num_ws, w_dim], got shape {list(ws.shape)}')
    total = central = None
    for images in render_frames(G, Animation(ws), batch, noise_mode, progress):
        if central is None:
            central = images[0].clone()
            total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
        total += images.double().sum(dim=0)
    return central, (total / len(ws)).float()


# ----------------------------------------------------------------------------
# Slices.

def _check_slice(axis: str, index: int, height: int, width: int) -> None:
    if axis not in AXES:
        raise ValueError(f'unknown slice axis {axis!r}: expected "row" or "column"')
    size = height if axis == 'row' else width
    if int(index) != index or not 0 <= index < size:
        raise ValueError(f'{axis} index {index!r} out of range: the image has {size} {axis}s (0-{size - 1})')


def take_slice(frames: torch.Tensor, axis: str, index: int) -> torch.Tensor:
    """Stack one row or column of each frame of frames [F, C, H, W].

    axis 'row': [C, F, W], row `index` of frame k is row k (time runs down).
    axis 'column': [C, H, F], column `index` of frame k is column k (time runs right).
    """
    if frames.ndim != 4:
        raise ValueError(f'frames must be [F, C, H, W], got shape {list(frames.shape)}')
    _check_slice(axis, index, frames.shape[2], frames.shape[3])
    if axis == 'row':
        return frames[:, :, index, :].permute(1, 0, 2)
    return frames[:, :, :, index].permute(1, 2, 0)


class SliceAccumulator:
    """A slice image (see take_slice) grown batch by batch, for slice videos and the GUI.

    With num_frames given, image() has that many rows (columns), the ones not yet
    added set to `fill`; otherwise it has as many as were added.
    """

    def __init__(self, axis: str, index: int, num_frames: Optional[int] = None):
        if axis not in AXES:
            raise ValueError(f'unknown slice axis {axis!r}: expected "row" or "column"')
        if num_frames is not None and (int(num_frames) != num_frames or num_frames < 1):
            raise ValueError(f'num_frames must be an integer >= 1, got {num_frames!r}')
        self.axis, self.index, self.num_frames = axis, index, num_frames
        self.count = 0                   # Frames added so far.
        self._parts: list[torch.Tensor] = []
        self._time_dim = 1 if axis == 'row' else 2

    def __len__(self) -> int:
        return self.count

    def add(self, frames: torch.Tensor) -> None:
        """Append frames [B, C, H, W] (the next B frames in time)."""
        part = take_slice(frames, self.axis, self.index).float().clone()
        if self._parts:
            expected = list(self._parts[0].shape)
            expected[self._time_dim] = part.shape[self._time_dim]
        if self._parts and list(part.shape) != expected:
            raise ValueError(f'frames of shape {list(frames.shape[1:])} do not match the earlier ones')
        if self.num_frames is not None and self.count + len(frames) > self.num_frames:
            raise ValueError(f'more than num_frames={self.num_frames} frames added to the slice')
        self._parts.append(part)
        self.count += len(frames)

    def image(self, fill: float = 0.0) -> torch.Tensor:
        """[C, T, W] (row) or [C, H, T] (column), T = num_frames (or the frames added); float32."""
        if not self._parts:
            raise ValueError('no frames have been added to the slice yet')
        if len(self._parts) > 1:
            self._parts = [torch.cat(self._parts, dim=self._time_dim)]
        done = self._parts[0]
        missing = 0 if self.num_frames is None else self.num_frames - self.count
        if missing == 0:
            return done.clone()
        shape = list(done.shape)
        shape[self._time_dim] = missing
        return torch.cat([done, done.new_full(shape, float(fill))], dim=self._time_dim)


def centre_index(G: torch.nn.Module) -> int:
    """The middle row (= column) of G's square images."""
    return G.img_resolution // 2


@torch.no_grad()
def slice_diagnostic(G: torch.nn.Module, animation: Animation, axis: str = 'row', index: Optional[int] = None,
                     batch: int = 8, progress: Optional[ProgressBar] = None,
                     noise_mode: str = 'const') -> tuple[torch.Tensor, torch.Tensor]:
    """(middle frame [C, H, W], slice [C, F, W] (row) / [C, H, F] (column)) of the animation.

    index None = the centre row / column. The middle frame is frame F // 2.
    """
    index = centre_index(G) if index is None else index
    _check_slice(axis, index, G.img_resolution, G.img_resolution)
    slices = SliceAccumulator(axis, index, len(animation))
    middle, done = None, 0
    for frames in render_frames(G, animation, batch, noise_mode, progress):
        if done <= len(animation) // 2 < done + len(frames):
            middle = frames[len(animation) // 2 - done].clone()
        slices.add(frames)
        done += len(frames)
    return middle, slices.image()


# ----------------------------------------------------------------------------
# Command line.

def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m renderer.sticking', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='diagnostic', required=True)
    average = sub.add_parser('average', help='central image beside the average of perturbed images')
    slicer = sub.add_parser('slice', help='middle frame beside a row/column slice through time')
    for p in (average, slicer):
        add_network_options(p)
        p.add_argument('--network-b', default=None, help='a second network shown beside the first')
        p.add_argument('--seed', type=int, default=0, help='seed of the central latent (default 0)')
        p.add_argument('--out', required=True, help='output PNG')
        p.add_argument('--trunc', type=float, default=1.0, help='truncation psi (default 1)')
        p.add_argument('--trunc-cutoff', type=int, default=None, help='truncate only the first N ws')
        p.add_argument('--class', dest='class_idx', type=int, default=None, help='class index (conditional nets)')
        p.add_argument('--batch', type=int, default=8, help='images per synthesis call (default 8)')
        p.add_argument('--noise-mode', choices=['const', 'random', 'none'], default='const',
                       help='StyleGAN2 noise inputs (default const)')
    average.add_argument('--num-samples', type=int, default=32, help='perturbed samples (default 32)')
    average.add_argument('--sigma', type=float, default=DEFAULT_SIGMA,
                         help=f'perturbation in z units (default {DEFAULT_SIGMA})')
    average.add_argument('--perturb-seed', type=int, default=0, help='seed of the perturbations (default 0)')
    slicer.add_argument('--motion', choices=['translate', 'latent'], default='translate',
                        help='translate: the content moves --step pixels per frame along the slice; '
                             'latent: interpolation from --seed to --seed-to (default translate)')
    slicer.add_argument('--frames', type=int, default=64, help='number of frames (default 64)')
    slicer.add_argument('--axis', choices=AXES, default='row', help='row: time runs down; column: time runs right')
    slicer.add_argument('--index', type=int, default=None, help='row / column index (default: the centre)')
    slicer.add_argument('--step', type=float, default=1.0,
                        help='translation in pixels per frame, along x for rows and y for columns (default 1)')
    slicer.add_argument('--seed-to', type=int, default=None, help='end seed of the latent motion (default seed+1)')
    slicer.add_argument('--kind', choices=KINDS, default='linear', help='latent interpolation (default linear)')
    return parser.parse_args(argv)


def _slice_animation(G: torch.nn.Module, args: argparse.Namespace) -> Animation:
    ws = ws_from_seeds(G, [args.seed], args.trunc, args.trunc_cutoff, args.class_idx)
    if args.motion == 'latent':
        seed_to = args.seed + 1 if args.seed_to is None else args.seed_to
        key_ws = torch.cat([ws, ws_from_seeds(G, [seed_to], args.trunc, args.trunc_cutoff, args.class_idx)])
        return Animation(interpolate_ws(key_ws, args.frames - 1, args.kind, loop=False))
    step = args.step / G.img_resolution
    direction = (step, 0.0) if args.axis == 'row' else (0.0, step)
    half = args.frames // 2      # The middle frame is the untransformed image.
    return translation_animation(ws, args.frames, direction, (-half * direction[0], -half * direction[1]))


def _check_args(args: argparse.Namespace) -> None:
    check_seed(args.seed)
    if not math.isfinite(args.trunc):
        raise ValueError(f'--trunc must be finite, got {args.trunc}')
    if args.trunc_cutoff is not None and args.trunc_cutoff < 0:
        raise ValueError(f'--trunc-cutoff must be >= 0, got {args.trunc_cutoff}')
    if args.batch < 1:
        raise ValueError(f'--batch must be >= 1, got {args.batch}')
    if args.diagnostic == 'slice':
        if args.frames < 2:
            raise ValueError(f'--frames must be >= 2, got {args.frames}')
        if not math.isfinite(args.step):
            raise ValueError(f'--step must be finite, got {args.step}')
        if args.seed_to is not None:
            check_seed(args.seed_to)
    elif args.num_samples < 1:
        raise ValueError(f'--num-samples must be >= 1, got {args.num_samples}')
    if os.path.splitext(args.out)[1].lower() != '.png':
        raise ValueError(f'--out must be a .png file, got {args.out!r}')


def _open(source: str, args: argparse.Namespace, name: str) -> torch.nn.Module:
    G = open_network(source, args.device)
    if args.diagnostic == 'slice':
        if args.motion == 'translate' and not has_input_transform(G):
            raise ValueError(f'network {name} ({source}) has no input transform, so it cannot be translated: '
                             'use --motion latent for StyleGAN2 networks')
        index = centre_index(G) if args.index is None else args.index
        _check_slice(args.axis, index, G.img_resolution, G.img_resolution)
    return G


def main(argv: Sequence[str]) -> int:
    args = _parse_args(argv)
    _check_args(args)
    sources = [('A', args.network)] + ([('B', args.network_b)] if args.network_b else [])
    networks = [(name, source, _open(source, args, name)) for name, source in sources]
    panels, arrays = [], []
    for name, source, G in networks:
        if args.diagnostic == 'average':
            ws = perturbed_ws(G, args.seed, args.num_samples, args.sigma, args.perturb_seed,
                              args.trunc, args.trunc_cutoff, args.class_idx)
            with ProgressBar(f'average {name}', len(ws), 'images') as bar:
                pair = averaged_image(G, ws, args.batch, args.noise_mode, bar)
            arrays.append(torch.stack(pair).cpu().numpy())
        else:
            animation = _slice_animation(G, args)
            with ProgressBar(f'slice {name}', len(animation), 'frames') as bar:
                pair = slice_diagnostic(G, animation, args.axis, args.index, args.batch, bar, args.noise_mode)
        panels.append(side_by_side(list(pair), PAIR_GAP))
    image = side_by_side(panels, NETWORK_GAP, vertical=args.diagnostic == 'average')
    _write_outputs(args.out, image, arrays)
    return 0


def _write_outputs(path: str, image: torch.Tensor, arrays: list[np.ndarray]) -> None:
    """Write the PNG and the .npy arrays (STEM.npy, STEM-b.npy) under temporary names, then rename all."""
    import imageio.v3 as iio
    stem = os.path.splitext(path)[0]
    targets = [(path, None)] + [(f'{stem}{suffix}.npy', a) for suffix, a in zip(['', '-b'], arrays)]
    with contextlib.ExitStack() as stack:
        pending = []
        for target, array in targets:
            file = PendingFile(target)
            stack.callback(file.discard)
            if array is None:
                iio.imwrite(file.tmp, to_uint8(image), extension='.png')
            else:
                np.save(file.tmp, array)
            pending.append(file)
        for file in pending:
            file.commit()
        print('\n'.join(target for target, _ in targets))


if __name__ == '__main__':
    sys.exit(run_command(main))
