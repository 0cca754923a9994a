"""Frame composition for the video command: per-network views of each frame, A | B, output sizing.

A *view* is a float [C, H, W] tensor in [-1, 1] (C = 1 or 3): an output image, a grid
of them, a layer's channels, or a frame beside its growing slice. One view stream per
network yields one view per frame; `compose_frame` turns the views of one frame into a
uint8 video frame:

- A | B: every view after the first is scaled to the first one's height, aspect kept,
  and placed to its right with `Layout.gap` pixels of mid grey between (compose.side_by_side).
  Slice streams scale B's *frames* to A's resolution before slicing instead, so the slice
  index and the time axis mean the same in both halves.
- Output size: the composed frame is resized to `Layout.size` (width, height) or by
  `Layout.scale`. All resizing is compose.resize_like: bilinear, antialiased (when
  shrinking, the triangle kernel is widened by the shrink factor, so resizing adds no
  aliasing of its own to pictures that are about aliasing).

Synthesis (`render_frames`): one call per run of at most `Rendering.batch` consecutive frames that
share one input transform, in `Rendering.precision`; 'random' noise is drawn per call from a
generator seeded with the call's first frame, so a video is reproducible. Under torchrun
(`Rendering.world`, renderer.distributed) the calls are dealt round-robin to the ranks and every
rank receives every call's frames in order, so the frames are the same for any number of ranks;
every rank composes them (cheap next to synthesis) and rank 0 encodes.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from renderer.diagnostics.sticking import SliceAccumulator
from renderer.distributed import World
from renderer.errors import RequestError
from renderer.generation import check_noise_mode, device_of, require_input_transform, synthesize_images
from renderer.media.compose import resize_like, side_by_side, tile
from renderer.media.pictures import as_rgb, feature_view, to_uint8
from renderer.media.progress import report
from renderer.motion import Animation
from renderer.networks.capture import capture_layers
from renderer.networks.precision import NETWORK_PRECISIONS

CHANNEL_GAP = 1            # Pixels between the tiles of a channel grid.
SLICE_FILL = -1.0          # Black: the rows / columns of a slice not yet rendered.


@dataclass(frozen=True)
class Rendering:
    """How frames are synthesized."""
    batch: int = 8                   # Frames per synthesis call.
    noise_mode: str = 'const'        # 'const', 'random' or 'none'.
    precision: str = 'fp32'          # 'fp32', 'bf16' or 'fp16' (renderer.networks.precision).
    world: Optional[World] = field(default=None, compare=False)   # Ranks sharing the synthesis (None: alone).

    def __post_init__(self) -> None:
        if int(self.batch) != self.batch or self.batch < 1:
            raise RequestError(f'batch must be an integer >= 1, got {self.batch!r}')
        check_noise_mode(self.noise_mode)
        if self.precision not in NETWORK_PRECISIONS:
            raise RequestError(f'precision must be one of {", ".join(NETWORK_PRECISIONS)}, got {self.precision!r}')


@dataclass(frozen=True)
class Layout:
    """Composition and size of the video frames."""
    size: Optional[tuple[int, int]] = None   # Output (width, height) in pixels; None = as composed.
    scale: Optional[float] = None            # Or: output = composed size * scale, rounded.
    gap: int = 4                             # Pixels between A and B (and between a frame and its slice).

    def __post_init__(self) -> None:
        if self.size is not None and self.scale is not None:
            raise RequestError('give an output size or a scale, not both')
        if self.size is not None and not (len(self.size) == 2 and all(int(v) == v and v >= 1 for v in self.size)):
            raise RequestError(f'output size must be two integers >= 1 (width, height), got {self.size!r}')
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise RequestError(f'scale must be a positive number, got {self.scale!r}')
        if int(self.gap) != self.gap or self.gap < 0:
            raise RequestError(f'gap must be an integer >= 0, got {self.gap!r}')

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the output frame for a composed frame of width x height."""
        if self.size is not None:
            return int(self.size[0]), int(self.size[1])
        if self.scale is not None:
            return max(1, round(width * self.scale)), max(1, round(height * self.scale))
        return width, height


class Clip:
    """A sized sequence of video frames (uint8 [H, W, 3]), rendered lazily each time it is iterated."""

    def __init__(self, num_frames: int, frames: Callable[[], Iterator[np.ndarray]]):
        self.num_frames = num_frames
        self._frames = frames

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames()


ViewStream = Callable[[], Iterator[torch.Tensor]]   # Makes a fresh iterator of views, one per frame.


def make_clip(streams: Sequence[ViewStream], num_frames: int, layout: Layout) -> Clip:
    """A clip whose frame k composes view k of each stream (A | B | ...)."""
    def frames() -> Iterator[np.ndarray]:
        for views in zip(*[stream() for stream in streams], strict=True):
            yield compose_frame(views, layout)
    return Clip(num_frames, frames)


def resize_to_height(view: torch.Tensor, height: int) -> torch.Tensor:
    """view [C, h, w] scaled to [C, height, round(w * height / h)] (identity when h == height)."""
    h, w = view.shape[1:]
    return resize_like(view, height, max(1, round(w * height / h)))


def compose_frame(views: Sequence[torch.Tensor], layout: Layout = Layout()) -> np.ndarray:
    """uint8 [H, W, 3] video frame: views left to right, later ones scaled to the first one's height."""
    first = as_rgb(views[0].float().cpu())
    parts = [first] + [resize_to_height(as_rgb(v.float().cpu()), first.shape[1]) for v in views[1:]]
    frame = side_by_side(parts, layout.gap) if len(parts) > 1 else first
    width, height = layout.output_size(frame.shape[2], frame.shape[1])
    return to_uint8(resize_like(frame, height, width))


def frame_chunks(animation: Animation, batch: int) -> list[tuple[int, int]]:
    """[start, stop) of each synthesis call: at most `batch` consecutive frames sharing one transform."""
    chunks, start = [], 0
    while start < len(animation):
        stop = start + 1
        while (stop < len(animation) and stop - start < batch and
               (animation.matrices is None or np.array_equal(animation.matrices[stop], animation.matrices[start]))):
            stop += 1
        chunks.append((start, stop))
        start = stop
    return chunks


@torch.no_grad()
def _render_chunk(G: torch.nn.Module, animation: Animation, chunk: tuple[int, int], noise_mode: str,
                  precision: str, layer: Optional[str]) -> torch.Tensor:
    """Frames [start, stop) as float32 on the CPU: the images [B, C, H, W], or `layer`'s outputs."""
    start, stop = chunk
    device = device_of(G)
    matrix = None if animation.matrices is None else animation.matrices[start]
    with contextlib.ExitStack() as stack:
        if noise_mode == 'random':   # Reproducible noise, whichever rank renders the call.
            stack.enter_context(torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []))
            torch.manual_seed(start)
        records = stack.enter_context(capture_layers(G, [layer])) if layer is not None else []
        images = synthesize_images(G, animation.ws[start:stop].to(device), matrix, noise_mode, precision=precision)
    return (torch.cat([r.tensor for r in records]) if layer is not None else images).float().cpu()


def render_frames(G: torch.nn.Module, animation: Animation, batch: int = 8, noise_mode: str = 'const',
                  precision: str = 'fp32', world: Optional[World] = None,
                  layer: Optional[str] = None) -> Iterator[torch.Tensor]:
    """The animation's frames in order, one float32 CPU batch [B, C, H, W] per synthesis call (frame_chunks):
    the images in [-1, 1], or with `layer` that layer's outputs. With a `world` of several ranks, each renders
    its share of the calls and every rank yields all of them."""
    if animation.matrices is not None:
        require_input_transform(G, 'an animation that moves the image')
    chunks = frame_chunks(animation, int(batch))
    if world is None or not world.distributed:
        for chunk in chunks:
            yield _render_chunk(G, animation, chunk, noise_mode, precision, layer)
            report('frames', chunk[1], len(animation))
        return
    for first in range(0, len(chunks), world.world_size):
        mine = first + world.rank
        parts = world.gather('rendering video frames', lambda mine=mine: None if mine >= len(chunks) else
                             _render_chunk(G, animation, chunks[mine], noise_mode, precision, layer))
        for part in parts:
            if part is not None:
                yield part


def _rendered(G: torch.nn.Module, animation: Animation, rendering: Rendering,
              layer: Optional[str] = None) -> Iterator[torch.Tensor]:
    return render_frames(G, animation, rendering.batch, rendering.noise_mode, rendering.precision, rendering.world,
                         layer)


def animation_frames(G: torch.nn.Module, animation: Animation, rendering: Rendering) -> Iterator[torch.Tensor]:
    """The animation's images one at a time, float32 [C, H, W] on the CPU."""
    for images in _rendered(G, animation, rendering):
        yield from images


def image_views(G: torch.nn.Module, cells: Sequence[Animation], columns: int,
                rendering: Rendering) -> Iterator[torch.Tensor]:
    """Per frame, the images of all cells (animations of equal length) tiled `columns` wide."""
    streams = [animation_frames(G, cell, rendering) for cell in cells]
    for images in zip(*streams, strict=True):
        yield images[0] if len(images) == 1 else tile(images, columns)


def layer_view(features: torch.Tensor, channels: Optional[Sequence[int]] = None,
               channel_grid: Optional[int] = None, gain_db: float = 0.0) -> torch.Tensor:
    """Display view of one layer output features [C, H, W].

    channels: 1 index (grey) or 3 (RGB); channel_grid: the first N channels as grey tiles,
    ceil(sqrt(N)) columns, 1-pixel black gaps. Each channel is divided by its max |value| in
    this frame, then amplified by gain_db (imaging.feature_view), as in the visualizer.
    """
    count = features.shape[0]
    if (channels is None) == (channel_grid is None):
        raise RequestError('give either channel indices or a channel grid size')
    if channel_grid is not None:
        if not 1 <= channel_grid <= count:
            raise RequestError(f'channel grid of {channel_grid} channels: the layer has {count} (1-{count})')
        tiles = feature_view(features[:channel_grid], True, gain_db).unsqueeze(1)
        return tile(list(tiles), math.ceil(math.sqrt(channel_grid)), CHANNEL_GAP)
    if len(channels) not in (1, 3):
        raise RequestError(f'give 1 channel (grey) or 3 (RGB), got {len(channels)}: {list(channels)}')
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise RequestError(f'channel(s) {bad} out of range: the layer has {count} channels (0-{count - 1})')
    return feature_view(features[list(channels)], True, gain_db)


def layer_views(G: torch.nn.Module, animation: Animation, layer: str, rendering: Rendering,
                **view: object) -> Iterator[torch.Tensor]:
    """Per frame, layer_view(**view) of the named layer's output."""
    for features in _rendered(G, animation, rendering, layer):
        for f in features:
            yield layer_view(f, **view)


def slice_views(G: torch.nn.Module, animation: Animation, axis: str, index: int, height: int, gap: int,
                rendering: Rendering) -> Iterator[torch.Tensor]:
    """Per frame k: the frame (scaled to `height`) beside the slice of frames 0..k.

    axis 'column': slice [C, H, F] to the right (time runs right); 'row': slice [C, F, W]
    below (time runs down). Slice rows / columns not yet reached are black.
    """
    slices = SliceAccumulator(axis, index, len(animation))
    for frame in animation_frames(G, animation, rendering):
        frame = resize_to_height(frame, height)
        slices.add(frame[None])
        yield side_by_side([frame, slices.image(SLICE_FILL)], gap, vertical=axis == 'row')
