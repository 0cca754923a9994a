"""MP4 writing through imageio-ffmpeg (H.264, yuv420p), atomic: the file appears only when finished.

    with VideoWriter('out/a.mp4', fps=30) as video:
        for frame in frames:          # uint8 [H, W, 3] (or [H, W, 1] / [H, W])
            video.append(frame)

Leaving the block with an exception (Ctrl-C included) or calling `abort()` deletes the
partial file; `finish()` (or a clean exit) closes the stream and renames it into place.
All frames must have the size of the first; odd sizes are padded to even ones by
repeating the last row / column (H.264 with yuv420p needs even sizes).
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import numpy as np

from renderer.errors import RequestError
from renderer.media.atomic import PendingFile


def even_rgb(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] with H and W rounded up to even sizes (edge rows / columns repeated)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise RequestError(f'video frames must be uint8, got {frame.dtype}')
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise RequestError(f'video frames must be [H, W, 1 or 3 or 4], got shape {list(frame.shape)}')
    frame = np.broadcast_to(frame[:, :, :1], frame.shape[:2] + (3,)) if frame.shape[2] == 1 else frame[:, :, :3]
    h, w = frame.shape[:2]
    return np.ascontiguousarray(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge'))


class VideoWriter:
    """An H.264 MP4 written frame by frame; see the module docstring."""

    def __init__(self, path: str, fps: float = 30.0, bitrate: Optional[str] = None, quality: float = 8.0):
        if not (isinstance(fps, (int, float)) and 0 < fps <= 1000):
            raise RequestError(f'fps must be in (0, 1000], got {fps!r}')
        if not 0 <= quality <= 10:
            raise RequestError(f'quality must be in [0, 10], got {quality!r}')
        self.path = os.fspath(path)
        self.fps = float(fps)
        self.bitrate = bitrate        # e.g. '8M'; None = variable bitrate from `quality`.
        self.quality = quality        # 0 (worst) .. 10 (best), used when bitrate is None.
        self.num_frames = 0
        self.size: Optional[tuple[int, int]] = None   # (width, height) once the first frame is in.
        self._file = PendingFile(self.path)
        self._stream = None

    def append(self, frame: np.ndarray) -> None:
        frame = even_rgb(frame)
        h, w = frame.shape[:2]
        if self._stream is None:
            self._open(w, h)
        elif (w, h) != self.size:
            raise RequestError(f'{self.path}: frame {self.num_frames} is {w}x{h}, the video is '
                             f'{self.size[0]}x{self.size[1]}')
        self._stream.send(frame)
        self.num_frames += 1

    def _open(self, w: int, h: int) -> None:
        import imageio_ffmpeg
        options = dict(fps=self.fps, codec='libx264', pix_fmt_in='rgb24', pix_fmt_out='yuv420p',
                       macro_block_size=1, output_params=['-movflags', '+faststart'], ffmpeg_log_level='error')
        if self.bitrate is not None:
            options['bitrate'] = self.bitrate
        else:
            options['quality'] = self.quality
        self._stream = imageio_ffmpeg.write_frames(self._file.tmp, (w, h), **options)
        self._stream.send(None)  # Start the generator.
        self.size = (w, h)

    def finish(self) -> str:
        """Close the stream and move the file into place; returns its path."""
        if self._stream is None:
            self.abort()
            raise RequestError(f'{self.path}: no frames were written')
        try:
            self._stream.close()
            self._stream = None
            return self._file.commit()
        finally:
            self._file.discard()

    def abort(self) -> None:
        """Stop and delete the partial file (nothing appears under the final name)."""
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
        finally:  # Even a second Ctrl-C while ffmpeg shuts down must not leave the partial file.
            self._file.discard()

    def __enter__(self) -> 'VideoWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
