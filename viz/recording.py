"""Recording what is on screen to MP4 at a fixed frame rate, one frame per render result.

While recording, the app's animation clock advances by exactly 1/fps per recorded
frame instead of by wall time, and a frame is written only once the render result
for the current arguments has arrived, so no frame is dropped however slow the
renderer is. A video is written atomically (renderer.media.video_writer): it appears under
its name only when finished; stopping early keeps the frames recorded so far.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from renderer.media.video_writer import VideoWriter

SOURCES = (('image', 'Image'), ('window', 'Window'))


class Recorder:
    def __init__(self):
        self.writer: Optional[VideoWriter] = None
        self.source = 'image'        # 'image' (the rendered image) or 'window' (the whole window).
        self.target_frames = 0       # Stop after this many frames; 0 = until stopped.
        self.message = ''            # Last saved file.
        self.error = ''
        self.step_due = False        # A frame was written: the animation may advance by 1/fps.

    @property
    def active(self) -> bool:
        return self.writer is not None

    @property
    def num_frames(self) -> int:
        return self.writer.num_frames if self.writer is not None else 0

    def start(self, path: str, fps: float, target_frames: int = 0, source: str = 'image') -> bool:
        """Begin a recording; returns False (with `error` set) if the arguments are bad."""
        self.stop()
        if source not in dict(SOURCES):
            self.error = f'unknown recording source {source!r}'
            return False
        if target_frames < 0:
            self.error = f'frame count must be >= 0, got {target_frames}'
            return False
        try:
            self.writer = VideoWriter(path, fps=fps)
        except (OSError, ValueError) as e:
            self.error = f'Cannot record to {path}: {e}'
            return False
        self.source, self.target_frames = source, target_frames
        self.message, self.error, self.step_due = f'Recording {path}', '', False
        return True

    def take_step(self) -> float:
        """Seconds the animation advances this GUI frame: 1/fps after a written frame, else 0."""
        if not self.active or not self.step_due:
            return 0.0
        self.step_due = False
        return 1.0 / self.writer.fps

    def append(self, pixels: np.ndarray) -> None:
        """Write one frame; finishes the video when the target count is reached."""
        try:
            self.writer.append(pixels)
        except (OSError, ValueError) as e:
            self.stop(f'Recording stopped: {e}')
            return
        self.step_due = True
        if self.target_frames and self.writer.num_frames >= self.target_frames:
            self.stop()

    def stop(self, error: str = '') -> Optional[str]:
        """Finish the video with the frames so far (nothing is written if there are none)."""
        writer, self.writer = self.writer, None
        if writer is None:
            return None
        if writer.num_frames == 0:
            writer.abort()
            self.message, self.error = '', error or 'Recording stopped before any frame was rendered.'
            return None
        try:
            path = writer.finish()
        except (OSError, ValueError) as e:
            self.error = f'Could not finish {writer.path}: {e}'
            return None
        self.message = f'Saved {path} ({writer.num_frames} frames, {writer.fps:g} fps)'
        self.error = error
        return path
