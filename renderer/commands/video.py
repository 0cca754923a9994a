"""Videos of one network, or of two side by side (A | B), as H.264 MP4 (renderer.media.videos).

    python -m renderer.commands.video interp --network A.pkl --seeds 0-7 --grid 2x2 --out interp.mp4
    python -m renderer.commands.video translate --network A.pkl --network-b B.pkl --step 0.5 --out walk.mp4
    python -m renderer.commands.video layer --layer L3_52_512 --channel-grid 16 --motion translate --out layer.mp4
    python -m renderer.commands.video slice --motion translate --axis row --out slice.mp4

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
to even ones. Without --network the built-in untrained demo network is used. Frames are
rendered in float32 unless --precision says otherwise (auto measures on network A and
applies its choice to both).

Under torchrun the synthesis calls are shared by the ranks and rank 0 writes the video;
the frames are the same as one process renders:

    torchrun --nproc-per-node 4 -m renderer.commands.video interp --network A.pkl --seeds 0-63 --out interp.mp4
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from renderer.commands.common import (
    add_batch_option,
    add_distributed_options,
    add_latent_options,
    add_network_options,
    add_noise_option,
    add_precision_option,
    add_seed_option,
    add_seeds_option,
    command_parser,
    command_precision,
    command_world,
    finite_float,
    latents_of,
    open_network,
    run_command,
)
from renderer.distributed import World
from renderer.errors import RequestError
from renderer.generation import Latents, require_input_transform
from renderer.media.atomic import check_writable
from renderer.media.video_frames import Clip, Layout, Rendering
from renderer.media.videos import (
    check_bitrate,
    grid_seeds,
    interp_video,
    layer_video,
    motion_video,
    slice_video,
    write_video,
)
from renderer.motion import KINDS, Motion, slice_step
from renderer.options import SLICE_AXES


def parse_pair(option: str, text: str, name: str = 'X,Y') -> tuple[float, float]:
    """'1.5' -> (1.5, 0.0); '1,-2' -> (1.0, -2.0)."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise RequestError(f'{option} must be {name} numbers, e.g. 1 or 0.5,0; got {text!r}')
    return (values[0], values[1] if len(values) == 2 else 0.0)


def parse_dims(option: str, text: str, example: str = '640x360') -> tuple[int, int]:
    """'640x360' -> (640, 360); ValueError naming the option for anything else."""
    match = re.fullmatch(r'\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*', text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise RequestError(f'{option} must be WIDTHxHEIGHT with both >= 1, e.g. {example}; got {text!r}')
    return int(match[1]), int(match[2])


def parse_channels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(',')]
    except ValueError:
        raise RequestError(f'--channels must be channel indices such as 0 or 0,1,2; got {text!r}') from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_network_options(common, network_b=True)
    common.add_argument('--out', required=True, help='output .mp4 file')
    common.add_argument('--fps', type=float, default=30.0, help='frames per second (default 30)')
    common.add_argument('--bitrate', default=None, help='e.g. 8M (default: variable bitrate, quality 8 of 10)')
    size = common.add_mutually_exclusive_group()
    size.add_argument('--size', default=None, help='output frame size WIDTHxHEIGHT (default: as composed)')
    size.add_argument('--scale', type=float, default=None, help='output frame size = composed size * SCALE')
    add_batch_option(common, help_text='frames per synthesis call (default 8)')
    add_noise_option(common)
    add_latent_options(common, trunc=False)
    add_precision_option(common)
    add_distributed_options(common)
    truncated = argparse.ArgumentParser(add_help=False)
    truncated.add_argument('--trunc', type=finite_float, default=1.0, help='truncation psi (default 1: none)')
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
    add_seeds_option(with_motion, None, 'seeds (default 0-3 for latent, 0 for translate)')

    parser = command_parser('python -m renderer.commands.video', __doc__)
    sub = parser.add_subparsers(dest='video', required=True)
    interp = sub.add_parser('interp', parents=[common, truncated, latent], help='latent interpolation')
    add_seeds_option(interp, '0-3', 'keyframe seeds, e.g. 0-7 (default 0-3)')
    interp.add_argument('--grid', default='1x1', help='COLUMNSxROWS of interpolations (default 1x1)')
    truncation = sub.add_parser('truncation', parents=[common], help='truncation psi sweep of one seed')
    add_seed_option(truncation)
    truncation.add_argument('--psi-from', type=float, default=0.0, help='psi of the first frame (default 0)')
    truncation.add_argument('--psi-to', type=float, default=1.0, help='psi of the last frame (default 1)')
    truncation.add_argument('--frames', type=int, default=120, help='number of frames (default 120)')
    translate = sub.add_parser('translate', parents=[common, truncated, moving], help='input translation')
    rotate = sub.add_parser('rotate', parents=[common, truncated], help='input rotation')
    for p in (translate, rotate):
        add_seed_option(p)
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
    slicer.add_argument('--axis', choices=SLICE_AXES, default='row',
                        help='row: time runs down; column: time runs right')
    slicer.add_argument('--index', type=int, default=None, help='row / column index in pixels of A (default: centre)')
    return parser


def _step_px(args: argparse.Namespace, default: tuple[float, float]) -> tuple[float, float]:
    if args.step is not None and args.total is not None:
        raise RequestError('give --step or --total, not both')
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
            raise RequestError('give --step-deg or --total-deg, not both')
        frames = _positive('--frames', args.frames)
        step = args.total_deg / frames if args.total_deg is not None else args.step_deg
        step = 1.0 if step is None else step
        return Motion('rotate', (args.seed,), num_frames=frames, step_deg=step, start_deg=args.start_deg,
                      latents=latents)
    kind = 'translate' if args.video == 'translate' else args.motion
    if kind == 'latent':
        seeds = args.seeds or [0, 1, 2, 3]
        return Motion('latent', tuple(seeds), _positive('--frames-per-transition', args.frames_per_transition),
                      args.kind, args.loop, latents=latents)
    seeds = [args.seed] if args.video == 'translate' else (args.seeds or [0])
    if len(seeds) != 1:
        raise RequestError(f'--motion translate moves one seed, got {len(seeds)}: {seeds}')
    frames = _positive('--frames', args.frames)
    along = slice_step(getattr(args, 'axis', 'row'), 1.0, 1)   # One pixel along the slice, if any.
    return Motion('translate', tuple(seeds), num_frames=frames, step_px=_step_px(args, along),
                  start_px=parse_pair('--start', args.start, 'DX,DY'), latents=latents)


def _positive(option: str, value: float) -> float:
    if not value > 0:
        raise RequestError(f'{option} must be positive, got {value:g}')
    return value


def _open_networks(args: argparse.Namespace, needs_input_transform: bool, world: World) -> list[torch.nn.Module]:
    nets = []
    for source in [args.network] + ([args.network_b] if args.network_b else []):
        G = open_network(source, args.device, args.class_idx, world)
        if needs_input_transform:
            require_input_transform(G, f'{source}: {args.video}')
        nets.append(G)
    return nets


def _rendering(args: argparse.Namespace, nets: Sequence[torch.nn.Module], world: World) -> Rendering:
    """How the frames are synthesised: --batch, --noise-mode, --precision (auto: chosen on A) and the ranks."""
    precision = command_precision(nets[0], args.precision, world)
    for G in nets[1:]:
        command_precision(G, precision, world)   # B must run in it too.
    return Rendering(args.batch, args.noise_mode, precision, world)


def _clip(args: argparse.Namespace, world: World) -> Clip:
    """Validate the arguments, open the networks and set up the requested video."""
    _positive('--fps', args.fps)
    check_bitrate(args.bitrate)
    if os.path.splitext(args.out)[1].lower() != '.mp4':
        raise RequestError(f'--out must be an .mp4 file, got {args.out!r}')
    world.agree('checking --out', lambda: check_writable([args.out]) if world.is_main else None)
    Rendering(args.batch, args.noise_mode)   # Check before loading the networks.
    layout = Layout(parse_dims('--size', args.size) if args.size else None,
                    None if args.scale is None else _positive('--scale', args.scale))
    latents = latents_of(args)
    if args.video == 'interp':
        grid = parse_dims('--grid', args.grid, '2x2')
        seeds = args.seeds
        grid_seeds(seeds, grid)   # Check before loading the networks.
        nets = _open_networks(args, False, world)
        return interp_video(nets, seeds, grid, _positive('--frames-per-transition', args.frames_per_transition),
                            args.kind, args.loop, latents, _rendering(args, nets, world), layout)
    motion = _motion(args, latents)
    nets = _open_networks(args, motion.moves_input, world)
    rendering = _rendering(args, nets, world)
    if args.video == 'layer':
        channels = None if args.channel_grid is not None else parse_channels(args.channels or '0')
        return layer_video(nets, motion, args.layer, channels, args.channel_grid, args.gain_db, rendering, layout)
    if args.video == 'slice':
        return slice_video(nets, motion, args.axis, args.index, rendering, layout)
    return motion_video(nets, motion, rendering, layout)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    with command_world(args) as world:
        clip = _clip(args, world)
        if not world.is_main:
            for _ in clip:   # Render this rank's share; rank 0 composes and writes the same frames.
                pass
            return 0
        info = write_video(clip, args.out, args.fps, args.bitrate)
    print(info.summary())
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-video`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
