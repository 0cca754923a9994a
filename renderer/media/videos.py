"""Videos of one network, or of two side by side (A | B): one function per kind, each returning a `Clip`.

Kinds (the video command's sub-commands):
  interp      latent interpolation through the seeds' w; a (columns, rows) grid plays C*R interpolations
              at once, cell i (row-major) walking seeds [i*K, (i+1)*K) with K = seeds / cells.
  truncation  one seed swept through truncation psi values.
  translate   the content moved a number of pixels per frame (StyleGAN3 input transform).
  rotate      the content rotated a number of degrees per frame (StyleGAN3 input transform).
  layer       an internal layer's channels during any motion.
  slice       the animation beside its slice image growing frame by frame.

With two networks, B renders the same seeds and motion (pixel steps are pixels of A; B moves
the same fraction of its image) and is shown right of A, scaled to A's height (see
media.video_frames). `write_video` encodes a clip to H.264 MP4 atomically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from renderer.diagnostics.sticking import check_slice_index
from renderer.errors import RequestError
from renderer.generation import Latents, require_input_transform
from renderer.media.progress import ProgressBar
from renderer.media.video_frames import Clip, Layout, Rendering, image_views, layer_views, make_clip, slice_views
from renderer.media.video_writer import VideoWriter
from renderer.motion import Animation, Motion, num_interpolated_frames
from renderer.networks.capture import capture_points


def _animations(nets: Sequence[torch.nn.Module], motion: Motion) -> list[Animation]:
    """motion's animation for each network (pixel steps in A's pixels); RequestError for an impossible one."""
    if motion.moves_input:
        for i, G in enumerate(nets):
            require_input_transform(G, f'{motion.kind} moves the input transform, but network '
                                       f'{"AB"[i] if i < 2 else i}')
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
        raise RequestError(f'grid must be at least 1x1, got {columns}x{rows}')
    if len(seeds) % cells or len(seeds) // cells < 1:
        raise RequestError(f'grid {columns}x{rows} has {cells} cells, which must share the {len(seeds)} seeds '
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
        raise RequestError(f'without looping each grid cell needs at least 2 seeds, got {len(cells[0])}')
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
            raise RequestError(f'unknown layer {layer!r} in network {name}; valid names: {", ".join(points)}')
    if (channels is None) == (channel_grid is None):
        raise RequestError('give either channel indices or a channel grid size')
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
    check_slice_index(axis, index, resolution, resolution)
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
    """'8M', '800k', '2500000' (bits per second); RequestError otherwise."""
    if bitrate is not None and not re.fullmatch(r'[0-9]+(\.[0-9]+)?[kKmM]?', bitrate):
        raise RequestError(f'bitrate must be a number of bits per second such as 8M or 800k, got {bitrate!r}')
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
