"""Capture the image or the whole window as PNG (never overwriting), with the args as JSON and w as .npy;
record the image or the window to MP4 at a fixed frame rate (viz/recording.py); and load saved args
(.json) or w (.npy) back."""

from __future__ import annotations

import os
import re
from typing import Optional

import imageio.v3 as iio
import numpy as np
from imgui_bundle import imgui

from gui_utils import layout
from renderer.live.render_args import RenderArgs, RenderResult
from renderer.media.atomic import atomic_files

from ..recording import SOURCES
from ..state import apply_render_args


def next_capture_path(folder: str, prefix: str, ext: str = '.png') -> str:
    """`folder/prefix-NNNNN.ext` with an index one above the highest one present (never overwrites).

    Names with more than nine digits are not ours and are ignored: one such name must not push every
    later index past what a file name can hold."""
    pattern = re.compile(re.escape(prefix) + r'-(\d{1,9})\.')
    indices = [int(m.group(1)) for name in os.listdir(folder) if (m := pattern.match(name))]
    return os.path.join(folder, f'{prefix}-{max(indices, default=-1) + 1:05d}{ext}')


def save_capture(path: str, pixels: np.ndarray, result: Optional[RenderResult]) -> None:
    """Write the PNG, plus `.json` render args and `.npy` w of the result when known.

    The files appear together or not at all (renderer.media.atomic): a failed write leaves no
    truncated PNG."""
    stem = os.path.splitext(path)[0]
    args = result.args if result is not None else None
    ws = result.ws if result is not None else None
    paths = [path] + ([stem + '.json'] if args is not None else []) + ([stem + '.npy'] if ws is not None else [])
    with atomic_files(paths) as tmp:
        iio.imwrite(tmp[0], pixels, extension='.png')
        if args is not None:
            with open(tmp[1], 'w') as f:
                f.write(args.to_json())
        if ws is not None:
            np.save(tmp[-1], ws)


class CaptureWidget:
    def __init__(self, viz):
        self.viz = viz
        self.load_path = ''
        self.message = ''     # Last saved path or load result.
        self.error = ''
        self.record_fps = 30
        self.record_frames = 0  # 0 = until Stop.

    def __call__(self) -> None:
        layout.label('Folder')
        with layout.item_width(layout.value_width()):
            _, self.viz.capture_dir = imgui.input_text('##capture_dir', self.viz.capture_dir)
        if layout.small_button('Image'):
            self.capture_image()
        self.viz.record('capture_image')
        imgui.same_line()
        if layout.small_button('Window'):
            self.viz.request_window_capture()
        self.viz.record('capture_window')
        self._record_controls()
        self._load_controls()
        layout.status_line(self.error or self.message, error=bool(self.error))
        self.viz.record('capture_status')

    def _record_controls(self) -> None:
        recorder = self.viz.recorder
        imgui.separator()
        with layout.disabled(recorder.active):
            layout.label('Record')
            recorder.source = layout.radio_row(SOURCES, recorder.source,
                                               lambda v: self.viz.record(f'record_source:{v}'))
            _, self.record_fps = layout.labelled_int('FPS', self.record_fps)
            self.record_fps = min(max(self.record_fps, 1), 240)
            _, frames = layout.labelled_int('Frames', self.record_frames, 10)
            self.record_frames = max(frames, 0)
            self.viz.record('record_frames')
        if not recorder.active:
            if layout.small_button('Record'):
                self.start_recording()
        elif layout.small_button('Stop'):
            recorder.stop()
        self.viz.record('record_button')
        if recorder.active:
            imgui.same_line()
            total = f'/{recorder.target_frames}' if recorder.target_frames else ''
            imgui.text(f'{recorder.num_frames}{total} frames')
        layout.status_line(recorder.error or ('' if recorder.active else recorder.message), error=bool(recorder.error))

    def start_recording(self) -> Optional[str]:
        """Start recording to the next free `recording-NNNNN.mp4`; returns its path (None on error)."""
        try:
            path = self._target('recording', '.mp4')
        except OSError as e:
            self.viz.recorder.error = f'Cannot record into {self.viz.capture_dir}: {e}'
            return None
        recorder = self.viz.recorder
        ok = recorder.start(path, self.record_fps, self.record_frames, recorder.source)
        return path if ok else None

    def _load_controls(self) -> None:
        with layout.item_width(layout.value_width() - layout.em(layout.BUTTON_WIDTH_EM) - layout.em(0.5)):
            _, self.load_path = imgui.input_text_with_hint('##load', 'saved .json or .npy', self.load_path)
        imgui.same_line()
        if layout.small_button('Load'):
            self.load(self.load_path.strip())

    def _target(self, prefix: str, ext: str = '.png') -> str:
        os.makedirs(self.viz.capture_dir, exist_ok=True)
        return next_capture_path(self.viz.capture_dir, prefix, ext)

    def capture_image(self) -> Optional[str]:
        """Save the latest rendered image; returns its path (None, with a message, if there is none)."""
        result = self.viz.final_result
        if result is None or result.image is None:
            self.error = 'Nothing rendered yet to capture.'
            return None
        return self._save('image', result.image, result)

    def capture_window(self, pixels: np.ndarray) -> Optional[str]:
        return self._save('window', pixels, self.viz.final_result)

    def _save(self, prefix: str, pixels: np.ndarray, result: Optional[RenderResult]) -> Optional[str]:
        try:
            path = self._target(prefix)
            save_capture(path, pixels, result)
        except OSError as e:
            self.error = f'Capture failed: {e}'
            return None
        self.message, self.error = f'Saved {path}', ''
        return path

    def _checked_w(self, path: str, w: np.ndarray) -> tuple[float, ...]:
        """w as saved ([num_ws, w_dim] or [w_dim]), refused when it does not fit the open network."""
        network = self.viz.result.a.network if self.viz.result is not None else None
        if not np.issubdtype(w.dtype, np.floating) or not np.isfinite(w).all():
            raise ValueError(f'expected finite floating-point numbers, got {w.dtype}')
        if network is not None and w.size not in (network.w_dim, network.num_ws * network.w_dim):
            raise ValueError(f'this w has shape {list(w.shape)}, but the open network takes '
                             f'[{network.num_ws}, {network.w_dim}] or [{network.w_dim}]')
        return tuple(float(v) for v in w.ravel())

    def load(self, path: str) -> None:
        """Apply saved render args (.json) or a w (.npy) to the state."""
        try:
            if path.endswith('.npy'):
                self.viz.state.w = self._checked_w(path, np.load(path, allow_pickle=False))
            else:
                with open(path) as f:
                    apply_render_args(self.viz.state, RenderArgs.from_json(f.read()))
        except (OSError, ValueError, TypeError) as e:
            self.message, self.error = '', f'Cannot load {path or "(empty path)"}: {e}'
            return
        self.message, self.error = f'Loaded {path}', ''
