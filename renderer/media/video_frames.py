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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from renderer.diagnostics.sticking import SliceAccumulator
from renderer.errors import RequestError
from renderer.generation import check_noise_mode
from renderer.media.compose import resize_like, side_by_side, tile
from renderer.media.pictures import as_rgb, feature_view, to_uint8
from renderer.motion import Animation, render_frames
from renderer.networks.capture import capture_layers

CHANNEL_GAP = 1            # Pixels between the tiles of a channel grid.
SLICE_FILL = -1.0          # Black: the rows / columns of a slice not yet rendered.


@dataclass(frozen=True)
class Rendering:
    """How frames are synthesized."""
    batch: int = 8                   # Frames per synthesis call.
    noise_mode: str = 'const'        # 'const', 'random' or 'none'.

    def __post_init__(self) -> None:
        if int(self.batch) != self.batch or self.batch < 1:
            raise RequestError(f'batch must be an integer >= 1, got {self.batch!r}')
        check_noise_mode(self.noise_mode)


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


def animation_frames(G: torch.nn.Module, animation: Animation, rendering: Rendering) -> Iterator[torch.Tensor]:
    """The animation's images one at a time, float32 [C, H, W] on the CPU."""
    for images in render_frames(G, animation, rendering.batch, rendering.noise_mode):
        yield from images.cpu()


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
    with capture_layers(G, [layer]) as records:
        for _ in render_frames(G, animation, rendering.batch, rendering.noise_mode):
            features = torch.cat([r.tensor for r in records]).cpu()
            records.clear()
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
