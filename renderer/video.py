"""Videos of one network, or of two side by side (A | B), as H.264 MP4.

    python -m renderer.video interp --network A.pkl --seeds 0-7 --grid 2x2 --out interp.mp4
    python -m renderer.video translate --network A.pkl --network-b B.pkl --step 0.5 --out walk.mp4
    python -m renderer.video layer --layer L3_52_512 --channel-grid 16 --motion translate --out layer.mp4
    python -m renderer.video slice --motion translate --axis row --out slice.mp4

Kinds:
  interp      latent interpolation through the seeds' w; --grid CxR plays C*R interpolations at
              once, cell i (row-major) walking seeds [i*K, (i+1)*K) with K = seeds / cells.
              Looping: K * n frames (cubic is seamless); --no-loop: (K - 1) * n + 1.
  truncation  one seed swept from --psi-from to --psi-to over --frames frames.
  translate   the content moved --step pixels per frame (StyleGAN3 input transform).
  rotate      the content rotated --step-deg degrees per frame (StyleGAN3 input transform).
  layer       an internal layer's channels during a latent interpolation or translation.
  slice       the animation beside its slice image growing frame by frame (time runs down for
              --axis row, right for --axis column).

With --network-b, B renders the same seeds and motion (pixel steps are pixels of A; B moves
the same fraction of its image) and is shown right of A, scaled to A's height (bilinear,
antialiased). --size / --scale resize the composed frame the same way; odd sizes are padded
to even ones. Without --network the built-in untrained demo network is used.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, replace
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from .cli import add_network_options, open_network, run_command
from .generation import has_input_transform, ws_from_seeds
from .latents import check_seed, parse_seeds
from .motion import (KINDS, Animation, latent_animation, num_interpolated_frames, rotation_animation,
                     translation_animation, truncation_animation)
from .networks.capture import capture_points
from .progress import ProgressBar
from .sticking import AXES
from .video_frames import (Clip, Layout, Rendering, image_views, layer_views, make_clip, slice_views)
from .video_writer import VideoWriter

MOTIONS = ('latent', 'translate', 'rotate', 'truncation')


@dataclass(frozen=True)
class Latents:
    """How seeds become ws."""
    truncation_psi: float = 1.0
    truncation_cutoff: Optional[int] = None   # Truncate only the first N ws (None: all).
    class_idx: Optional[int] = None           # Class of conditional networks.


@dataclass(frozen=True)
class Motion:
    """An animation path, built for each network by `animation(G)`; fields unused by a kind are ignored."""
    kind: str = 'latent'                                 # One of MOTIONS.
    seeds: tuple[int, ...] = (0, 1, 2, 3)                # latent: keyframes; the others use seeds[0].
    frames_per_transition: int = 60                      # latent: frames from one keyframe to the next.
    interpolation: str = 'cubic'                         # latent: 'cubic', 'linear' or 'slerp'.
    loop: bool = True                                    # latent: return to the first keyframe.
    num_frames: int = 120                                # translate, rotate.
    step_px: tuple[float, float] = (1.0, 0.0)            # translate: (x right, y down) per frame, pixels of A.
    start_px: tuple[float, float] = (0.0, 0.0)           # translate: offset of frame 0, pixels of A.
    step_deg: float = 1.0                                # rotate: counter-clockwise degrees per frame.
    start_deg: float = 0.0                               # rotate: angle of frame 0.
    psi_values: tuple[float, ...] = (0.0, 1.0)           # truncation: psi of each frame.
    latents: Latents = Latents()

    def __post_init__(self) -> None:
        if self.kind not in MOTIONS:
            raise ValueError(f'unknown motion {self.kind!r}: expected one of {", ".join(MOTIONS)}')
        if not self.seeds:
            raise ValueError('a motion needs at least one seed')
        for seed in self.seeds:
            check_seed(seed)
        if self.kind in ('translate', 'rotate') and len(self.seeds) != 1:
            raise ValueError(f'{self.kind} takes one seed, got {len(self.seeds)}: {list(self.seeds)}')
        values = [*self.step_px, *self.start_px, self.step_deg, self.start_deg, *self.psi_values]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'motion steps, offsets and psi values must be finite, got {values}')

    @property
    def moves_input(self) -> bool:
        """Whether the motion needs StyleGAN3's input transform."""
        return self.kind in ('translate', 'rotate')

    def animation(self, G: torch.nn.Module, pixels_per_width: Optional[int] = None) -> Animation:
        """The frames for G; pixel steps are 1 / pixels_per_width image widths (default G's resolution)."""
        latents = self.latents
        if self.kind == 'latent':
            return latent_animation(G, self.seeds, self.frames_per_transition, self.interpolation, self.loop,
                                    latents.truncation_psi, latents.truncation_cutoff, latents.class_idx)
        if self.kind == 'truncation':
            return truncation_animation(G, self.seeds[0], self.psi_values, latents.truncation_cutoff,
                                        latents.class_idx)
        ws = ws_from_seeds(G, self.seeds[:1], latents.truncation_psi, latents.truncation_cutoff, latents.class_idx)
        if self.kind == 'rotate':
            return rotation_animation(ws, self.num_frames, self.step_deg, self.start_deg)
        unit = 1 / (pixels_per_width or G.img_resolution)
        return translation_animation(ws, self.num_frames, (self.step_px[0] * unit, self.step_px[1] * unit),
                                     (self.start_px[0] * unit, self.start_px[1] * unit))


def _animations(nets: Sequence[torch.nn.Module], motion: Motion) -> list[Animation]:
    """motion's animation for each network (pixel steps in A's pixels); ValueError for an impossible one."""
    if motion.moves_input:
        for i, G in enumerate(nets):
            if not has_input_transform(G):
                raise ValueError(f'{motion.kind} moves the input transform, which network {"AB"[i] if i < 2 else i} '
                                 f'({getattr(G, "architecture", "unknown")}) does not have')
    return [motion.animation(G, nets[0].img_resolution) for G in nets]


# ----------------------------------------------------------------------------
# One function per kind; each returns a Clip (sized, lazily rendered uint8 frames).

def motion_video(nets: Sequence[torch.nn.Module], motion: Motion, rendering: Rendering = Rendering(),
                 layout: Layout = Layout()) -> Clip:
    """The output images of each network along the motion, A | B."""
    animations = _animations(nets, motion)
    streams = [lambda G=G, a=a: image_views(G, [a], 1, rendering) for G, a in zip(nets, animations)]
    return make_clip(streams, len(animations[0]), layout)


def grid_seeds(seeds: Sequence[int], grid: tuple[int, int]) -> list[list[int]]:
    """Seeds of each cell of a (columns, rows) grid, row-major: cell i gets seeds [i*K, (i+1)*K)."""
    columns, rows = grid
    cells = columns * rows
    if columns < 1 or rows < 1:
        raise ValueError(f'grid must be at least 1x1, got {columns}x{rows}')
    if len(seeds) % cells or len(seeds) // cells < 1:
        raise ValueError(f'grid {columns}x{rows} has {cells} cells, which must share the {len(seeds)} seeds '
                         f'equally: give a multiple of {cells} seeds')
    per_cell = len(seeds) // cells
    return [list(seeds[i * per_cell:(i + 1) * per_cell]) for i in range(cells)]


def interp_video(nets: Sequence[torch.nn.Module], seeds: Sequence[int], grid: tuple[int, int] = (1, 1),
                 frames_per_transition: int = 60, kind: str = 'cubic', loop: bool = True,
                 latents: Latents = Latents(), rendering: Rendering = Rendering(),
                 layout: Layout = Layout()) -> Clip:
    """Latent interpolation in a (columns, rows) grid of cells, each through its share of the seeds."""
    cells = grid_seeds(seeds, grid)
    if not loop and len(cells[0]) < 2:
        raise ValueError(f'without looping each grid cell needs at least 2 seeds, got {len(cells[0])}')
    base = Motion('latent', tuple(cells[0]), frames_per_transition, kind, loop, latents=latents)
    per_net = [[replace(base, seeds=tuple(cell)).animation(G) for cell in cells] for G in nets]
    streams = [lambda G=G, a=a: image_views(G, a, grid[0], rendering) for G, a in zip(nets, per_net)]
    return make_clip(streams, num_interpolated_frames(len(cells[0]), frames_per_transition, loop), layout)


def truncation_video(nets: Sequence[torch.nn.Module], seed: int, psi_values: Sequence[float],
                     latents: Latents = Latents(), rendering: Rendering = Rendering(),
                     layout: Layout = Layout()) -> Clip:
    """One frame per psi (latents.truncation_psi is not used)."""
    return motion_video(nets, Motion('truncation', (seed,), psi_values=tuple(psi_values), latents=latents),
                        rendering, layout)


def translate_video(nets: Sequence[torch.nn.Module], seed: int, num_frames: int,
                    step_px: tuple[float, float] = (1.0, 0.0), start_px: tuple[float, float] = (0.0, 0.0),
                    latents: Latents = Latents(), rendering: Rendering = Rendering(),
                    layout: Layout = Layout()) -> Clip:
    """Content moved start_px + k * step_px (pixels of A) in frame k."""
    motion = Motion('translate', (seed,), num_frames=num_frames, step_px=step_px, start_px=start_px,
                    latents=latents)
    return motion_video(nets, motion, rendering, layout)


def rotate_video(nets: Sequence[torch.nn.Module], seed: int, num_frames: int, step_deg: float = 1.0,
                 start_deg: float = 0.0, latents: Latents = Latents(), rendering: Rendering = Rendering(),
                 layout: Layout = Layout()) -> Clip:
    """Content rotated start_deg + k * step_deg counter-clockwise in frame k."""
    motion = Motion('rotate', (seed,), num_frames=num_frames, step_deg=step_deg, start_deg=start_deg,
                    latents=latents)
    return motion_video(nets, motion, rendering, layout)


def layer_video(nets: Sequence[torch.nn.Module], motion: Motion, layer: str,
                channels: Optional[Sequence[int]] = None, channel_grid: Optional[int] = None,
                gain_db: float = 0.0, rendering: Rendering = Rendering(), layout: Layout = Layout()) -> Clip:
    """The named layer's channels along the motion (see video_frames.layer_view), A | B."""
    for name, G in zip('AB', nets):
        points = list(capture_points(G))
        if layer not in points:
            raise ValueError(f'unknown layer {layer!r} in network {name}; valid names: {", ".join(points)}')
    if (channels is None) == (channel_grid is None):
        raise ValueError('give either channel indices or a channel grid size')
    animations = _animations(nets, motion)
    view = dict(channels=channels, channel_grid=channel_grid, gain_db=gain_db)
    streams = [lambda G=G, a=a: layer_views(G, a, layer, rendering, **view) for G, a in zip(nets, animations)]
    return make_clip(streams, len(animations[0]), layout)


def slice_video(nets: Sequence[torch.nn.Module], motion: Motion, axis: str = 'row', index: Optional[int] = None,
                rendering: Rendering = Rendering(), layout: Layout = Layout()) -> Clip:
    """Each frame beside the slice (row or column `index` of every frame so far; default the centre).

    B's frames are scaled to A's resolution first, so `index` is in A's pixels for both.
    """
    resolution = nets[0].img_resolution
    index = resolution // 2 if index is None else index
    if axis not in AXES:
        raise ValueError(f'unknown slice axis {axis!r}: expected "row" or "column"')
    if int(index) != index or not 0 <= index < resolution:
        raise ValueError(f'{axis} index {index!r} out of range: the image has {resolution} {axis}s '
                         f'(0-{resolution - 1})')
    animations = _animations(nets, motion)
    streams = [lambda G=G, a=a: slice_views(G, a, axis, index, resolution, layout.gap, rendering)
               for G, a in zip(nets, animations)]
    return make_clip(streams, len(animations[0]), layout)


# ----------------------------------------------------------------------------
# Writing.

@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    width: int         # After padding to even sizes.
    height: int
    fps: float

    def summary(self) -> str:
        return f'{self.path}: {self.num_frames} frames, {self.width}x{self.height}, {self.fps:g} fps'


def check_bitrate(bitrate: Optional[str]) -> Optional[str]:
    """'8M', '800k', '2500000' (bits per second); ValueError otherwise."""
    if bitrate is not None and not re.fullmatch(r'[0-9]+(\.[0-9]+)?[kKmM]?', bitrate):
        raise ValueError(f'bitrate must be a number of bits per second such as 8M or 800k, got {bitrate!r}')
    return bitrate


def write_video(frames: Iterable[np.ndarray], path: str, fps: float = 30.0, bitrate: Optional[str] = None,
                progress: bool = True) -> VideoInfo:
    """Write uint8 [H, W, 3] frames to an H.264 MP4 at path, atomically.

    Nothing appears under `path` unless every frame was written: an exception (Ctrl-C
    included) removes the partial file. bitrate None = variable bitrate (VideoWriter's
    quality). A progress bar goes to stderr (its total is len(frames) when known).
    """
    check_bitrate(bitrate)
    total = len(frames) if hasattr(frames, '__len__') else None
    with VideoWriter(path, fps, bitrate) as video, \
            ProgressBar('video', total, 'frames', enabled=progress) as bar:
        for frame in frames:
            video.append(frame)
            bar.advance()
    return VideoInfo(path, video.num_frames, video.size[0], video.size[1], video.fps)


# ----------------------------------------------------------------------------
# Command line.

def parse_pair(option: str, text: str, name: str = 'X,Y') -> tuple[float, float]:
    """'1.5' -> (1.5, 0.0); '1,-2' -> (1.0, -2.0)."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise ValueError(f'{option} must be {name} numbers, e.g. 1 or 0.5,0; got {text!r}')
    return (values[0], values[1] if len(values) == 2 else 0.0)


def parse_dims(option: str, text: str, example: str = '640x360') -> tuple[int, int]:
    """'640x360' -> (640, 360); ValueError naming the option for anything else."""
    match = re.fullmatch(r'\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*', text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise ValueError(f'{option} must be WIDTHxHEIGHT with both >= 1, e.g. {example}; got {text!r}')
    return int(match[1]), int(match[2])


def parse_channels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(',')]
    except ValueError:
        raise ValueError(f'--channels must be channel indices such as 0 or 0,1,2; got {text!r}') from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_network_options(common)
    common.add_argument('--network-b', default=None, help='a second network shown right of the first')
    common.add_argument('--out', required=True, help='output .mp4 file')
    common.add_argument('--fps', type=float, default=30.0, help='frames per second (default 30)')
    common.add_argument('--bitrate', default=None, help='e.g. 8M (default: variable bitrate, quality 8 of 10)')
    size = common.add_mutually_exclusive_group()
    size.add_argument('--size', default=None, help='output frame size WIDTHxHEIGHT (default: as composed)')
    size.add_argument('--scale', type=float, default=None, help='output frame size = composed size * SCALE')
    common.add_argument('--batch', type=int, default=8, help='frames per synthesis call (default 8)')
    common.add_argument('--noise-mode', choices=['const', 'random', 'none'], default='const')
    common.add_argument('--trunc-cutoff', type=int, default=None, help='truncate only the first N ws')
    common.add_argument('--class', dest='class_idx', type=int, default=None, help='class index (conditional nets)')
    truncated = argparse.ArgumentParser(add_help=False)
    truncated.add_argument('--trunc', type=float, default=1.0, help='truncation psi (default 1)')
    latent = argparse.ArgumentParser(add_help=False)
    latent.add_argument('--frames-per-transition', '--w-frames', dest='frames_per_transition', type=int,
                        default=60, help='frames from one keyframe to the next (default 60)')
    latent.add_argument('--kind', choices=KINDS, default='cubic', help='interpolation (default cubic)')
    latent.add_argument('--loop', action=argparse.BooleanOptionalAction, default=True,
                        help='return to the first seed (default; cubic loops are seamless)')
    moving = argparse.ArgumentParser(add_help=False)
    moving.add_argument('--frames', type=int, default=120, help='number of frames (default 120)')
    moving.add_argument('--step', default=None, help='DX[,DY] pixels per frame (default 1,0; slice --axis column: 0,1)')
    moving.add_argument('--total', default=None, help='or DX[,DY] pixels over the whole video (step = total / frames)')
    moving.add_argument('--start', default='0,0', help='DX,DY pixels offset of the first frame (default 0,0)')
    with_motion = argparse.ArgumentParser(add_help=False, parents=[latent, moving])
    with_motion.add_argument('--motion', choices=['latent', 'translate'], default='latent',
                             help='latent interpolation through --seeds, or translation of one seed (default latent)')
    with_motion.add_argument('--seeds', default=None, help='seeds (default 0-3 for latent, 0 for translate)')

    parser = argparse.ArgumentParser(prog='python -m renderer.video', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='video', required=True)
    interp = sub.add_parser('interp', parents=[common, truncated, latent], help='latent interpolation')
    interp.add_argument('--seeds', default='0-3', help='keyframe seeds, e.g. 0-7 (default 0-3)')
    interp.add_argument('--grid', default='1x1', help='COLUMNSxROWS of interpolations (default 1x1)')
    truncation = sub.add_parser('truncation', parents=[common], help='truncation psi sweep of one seed')
    truncation.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    truncation.add_argument('--psi-from', type=float, default=0.0, help='psi of the first frame (default 0)')
    truncation.add_argument('--psi-to', type=float, default=1.0, help='psi of the last frame (default 1)')
    truncation.add_argument('--frames', type=int, default=120, help='number of frames (default 120)')
    translate = sub.add_parser('translate', parents=[common, truncated, moving], help='input translation')
    rotate = sub.add_parser('rotate', parents=[common, truncated], help='input rotation')
    for p in (translate, rotate):
        p.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    rotate.add_argument('--frames', type=int, default=120, help='number of frames (default 120)')
    rotate.add_argument('--step-deg', type=float, default=None, help='degrees per frame, counter-clockwise (default 1)')
    rotate.add_argument('--total-deg', type=float, default=None, help='or degrees over the whole video')
    rotate.add_argument('--start-deg', type=float, default=0.0, help='angle of the first frame (default 0)')
    layer = sub.add_parser('layer', parents=[common, truncated, with_motion], help="an internal layer's channels")
    layer.add_argument('--layer', required=True, help='layer name (an unknown name lists the valid ones)')
    shown = layer.add_mutually_exclusive_group()
    shown.add_argument('--channels', default=None, help='1 channel (grey) or 3 (RGB), e.g. 0,1,2 (default 0)')
    shown.add_argument('--channel-grid', type=int, default=None, help='the first N channels as a grid of tiles')
    layer.add_argument('--gain-db', type=float, default=0.0, help='gain after per-channel normalisation (dB)')
    slicer = sub.add_parser('slice', parents=[common, truncated, with_motion], help='frame beside its growing slice')
    slicer.add_argument('--axis', choices=AXES, default='row', help='row: time runs down; column: time runs right')
    slicer.add_argument('--index', type=int, default=None, help='row / column index in pixels of A (default: centre)')
    return parser


def _step_px(args: argparse.Namespace, default: tuple[float, float]) -> tuple[float, float]:
    if args.step is not None and args.total is not None:
        raise ValueError('give --step or --total, not both')
    if args.total is not None:
        total = parse_pair('--total', args.total, 'DX[,DY]')
        return total[0] / args.frames, total[1] / args.frames
    return default if args.step is None else parse_pair('--step', args.step, 'DX[,DY]')


def _motion(args: argparse.Namespace, latents: Latents) -> Motion:
    """The Motion of the command's arguments (all kinds except interp)."""
    if args.video == 'truncation':
        psi = np.linspace(args.psi_from, args.psi_to, _positive('--frames', args.frames)).tolist()
        return Motion('truncation', (args.seed,), psi_values=tuple(psi), latents=latents)
    if args.video == 'rotate':
        if args.step_deg is not None and args.total_deg is not None:
            raise ValueError('give --step-deg or --total-deg, not both')
        frames = _positive('--frames', args.frames)
        step = args.total_deg / frames if args.total_deg is not None else args.step_deg
        step = 1.0 if step is None else step
        return Motion('rotate', (args.seed,), num_frames=frames, step_deg=step, start_deg=args.start_deg,
                      latents=latents)
    kind = 'translate' if args.video == 'translate' else args.motion
    if kind == 'latent':
        seeds = parse_seeds(args.seeds or '0-3')
        return Motion('latent', tuple(seeds), _positive('--frames-per-transition', args.frames_per_transition),
                      args.kind, args.loop, latents=latents)
    seeds = [args.seed] if args.video == 'translate' else parse_seeds(args.seeds or '0')
    if len(seeds) != 1:
        raise ValueError(f'--motion translate moves one seed, got {len(seeds)} (--seeds {args.seeds})')
    frames = _positive('--frames', args.frames)
    along = (0.0, 1.0) if getattr(args, 'axis', 'row') == 'column' else (1.0, 0.0)
    return Motion('translate', tuple(seeds), num_frames=frames, step_px=_step_px(args, along),
                  start_px=parse_pair('--start', args.start, 'DX,DY'), latents=latents)


def _positive(option: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f'{option} must be positive, got {value:g}')
    return value


def _open_networks(args: argparse.Namespace, needs_input_transform: bool) -> list[torch.nn.Module]:
    nets = []
    for source in [args.network] + ([args.network_b] if args.network_b else []):
        G = open_network(source, args.device)
        if needs_input_transform and not has_input_transform(G):
            raise ValueError(f'{source}: {args.video} needs an input transform, which only StyleGAN3 networks '
                             f'have (this is a {getattr(G, "architecture", "unknown")})')
        nets.append(G)
    return nets


def _clip(args: argparse.Namespace) -> Clip:
    """Validate the arguments, open the networks and set up the requested video."""
    _positive('--fps', args.fps)
    check_bitrate(args.bitrate)
    if os.path.splitext(args.out)[1].lower() != '.mp4':
        raise ValueError(f'--out must be an .mp4 file, got {args.out!r}')
    rendering = Rendering(int(_positive('--batch', args.batch)), args.noise_mode)
    layout = Layout(parse_dims('--size', args.size) if args.size else None,
                    None if args.scale is None else _positive('--scale', args.scale))
    latents = Latents(getattr(args, 'trunc', 1.0), args.trunc_cutoff, args.class_idx)
    if args.video == 'interp':
        grid = parse_dims('--grid', args.grid, '2x2')
        seeds = parse_seeds(args.seeds)
        grid_seeds(seeds, grid)   # Check before loading the networks.
        nets = _open_networks(args, False)
        return interp_video(nets, seeds, grid, _positive('--frames-per-transition', args.frames_per_transition),
                            args.kind, args.loop, latents, rendering, layout)
    motion = _motion(args, latents)
    nets = _open_networks(args, motion.moves_input)
    if args.video == 'layer':
        channels = None if args.channel_grid is not None else parse_channels(args.channels or '0')
        return layer_video(nets, motion, args.layer, channels, args.channel_grid, args.gain_db, rendering, layout)
    if args.video == 'slice':
        return slice_video(nets, motion, args.axis, args.index, rendering, layout)
    return motion_video(nets, motion, rendering, layout)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    clip = _clip(args)
    info = write_video(clip, args.out, args.fps, args.bitrate)
    print(info.summary())
    return 0


if __name__ == '__main__':
    sys.exit(run_command(main))
