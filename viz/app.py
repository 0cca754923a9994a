"""The Visualizer: a window with a control pane and an image view, driving a background renderer.

Each frame: poll the newest render result (never waiting), draw the widgets,
which edit `VizState`, and hand `render_args(state)` to the renderer, which
only renders when they changed. Errors of the renderer appear in red over the
image; the last good image stays visible. A long render shows a progress bar
with a Cancel button over the image, and its partial pictures as they form.

When nothing changes (no input, no render in flight, no animation, no
recording) the frame loop sleeps in GLFW's event wait instead of redrawing; input
and messages from the renderer process (which posts an empty GLFW event) wake it.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Optional

import numpy as np
from imgui_bundle import imgui

from gui_utils import layout
from gui_utils.draw import draw_texture, fit_zoom, image_rect, step_zoom
from gui_utils.gl_texture import Texture
from gui_utils.imgui_context import ImGuiContext
from gui_utils.window import Window
from renderer.live.process import AsyncRenderer
from renderer.live.render_args import ERROR_NETWORK, RenderResult
from renderer.options import MAX_SEED

from . import settings
from .recording import Recorder
from .state import VizState, next_seed, render_args
from .widgets.capture import CaptureWidget
from .widgets.compare import CompareWidget
from .widgets.equivariance import EquivarianceWidget
from .widgets.latent import LatentWidget
from .widgets.layers import LayersWidget
from .widgets.network import NETWORK_PATTERNS, NetworkWidget
from .widgets.performance import PerformanceWidget
from .widgets.spectrum import CUTOFF_RGBA, NYQUIST_RGBA, SpectrumWidget, frequency_lines
from .widgets.sticking import StickingWidget
from .widgets.style_mix import StyleMixWidget
from .widgets.trunc_noise import TruncNoiseWidget

SEED_DRAG_PX = 100.0   # Screen units of mouse drag per seed.
SPLIT_GRAB_EM = 0.6    # A press this close to the split line drags the line.
ACTIVE_AFTER_EVENT_S = 0.5   # Keep redrawing this long after an event (hover effects, double clicks settle).
BUSY_REDRAW_S = 0.1          # Redraw interval while a render runs (progress text); results wake it at once.
IDLE_WAIT_S = 1.0            # Longest sleep when nothing happens.
PROGRESS_DELAY_S = 0.25      # Show the progress bar only for renders that take longer.
MAX_RECENT = 10
FRAME_HISTORY = 240    # Frame times kept for the performance plot.
HELP = (
    ('Left / Right', 'previous / next seed'),
    ('Up / Down', 'previous / next row of seeds (the latent plane)'),
    ('Ctrl+S or F12', 'capture the image (PNG + args JSON + w .npy)'),
    ('Drag in image', 'move across the latent plane (x: seed, y: row), or pan (see "Drag pans")'),
    ('Mouse wheel', 'zoom in / out in whole steps'),
    ('Double-click image', 'fit to window'),
    ('Drop a .pkl / .pt', 'open that network'),
    ('Drop a .json / .npy', "restore a capture's render arguments / w"),
)
_MAIN_FLAGS = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
               | imgui.WindowFlags_.no_bring_to_front_on_focus)


class Visualizer:
    def __init__(self, window: Optional[Window] = None, sync: bool = False, capture_dir: str = 'out/captures',
                 browse_dir: str = '', device: str = 'auto', ini_filename: str = '', vsync: bool = True,
                 renderer: Optional[AsyncRenderer] = None, wait_when_idle: bool = True,
                 settings_path: Optional[str] = None):
        """renderer: an AsyncRenderer started earlier (so it imports torch while the window opens);
        wait_when_idle: sleep in the event wait when nothing changes (tests drive frames themselves);
        settings_path: where the recent networks and the last state are kept (viz/settings.py); None: nowhere."""
        self.renderer = renderer or AsyncRenderer(sync=sync)   # First: its process starts in parallel.
        try:
            self.window = window or Window('Alias-free visualizer', 1280, 800, vsync=vsync)
        except BaseException:
            self.renderer.close()
            raise
        self.renderer.on_message = self.window.wake
        self.imgui = ImGuiContext(self.window, ini_filename)
        self.sync = sync
        self.wait_when_idle = wait_when_idle
        self.state = VizState(device=device)
        self.capture_dir = capture_dir
        self.browse_dir = browse_dir
        self.result: Optional[RenderResult] = None        # Newest result (may be an error).
        self.shown_result: Optional[RenderResult] = None  # Newest result with an image (what is on screen).
        self.final_result: Optional[RenderResult] = None  # Newest complete (not partial) result with an image.
        self.texture: Optional[Texture] = None
        self.notice = ''                                  # App-level message (e.g. a bad dropped file).
        self.settings_path = settings_path
        self.open_panels: dict[str, bool] = {}            # Section title -> open (restored, then tracked).
        if settings_path is not None:
            self._restore(settings_path)
        self.item_rects: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}  # For tests.
        self.pixel_readout = ''    # What the readout under the image says this frame.
        self.image_area: Optional[tuple[tuple[float, float], tuple[float, float]]] = None   # (pos, size) on screen.
        self._dragging_split = False
        self.fft_overlay: dict[str, float] = {}   # The FFT view's frequency lines this frame (tests).
        self.last_pixels: Optional[np.ndarray] = None     # Framebuffer read back at the end of a frame.
        self.read_back = False                            # Read the framebuffer back at the next frame.
        self.frame_count = 0
        self.fps = 0.0
        self.frame_ms = np.zeros(FRAME_HISTORY, np.float32)  # Recent frame times (ring buffer), for the plot.
        self._last_time = time.perf_counter()
        self._last_event = self._last_time                # When input or a renderer message last arrived.
        self._busy_since: Optional[float] = None          # When the running render started (progress bar).
        self._capture_window = False
        self.recorder = Recorder()
        self._record_window = False                       # Read the window back for the recorder this frame.
        self._make_widgets()

    def _make_widgets(self) -> None:
        self.network_widget = NetworkWidget(self)
        self.latent_widget = LatentWidget(self)
        self.capture_widget = CaptureWidget(self)
        self.equivariance_widget = EquivarianceWidget(self)
        self.style_mix_widget = StyleMixWidget(self)
        self.sections = [  # (header, widget, open at start)
            ('Network', self.network_widget, True),
            ('Latent', self.latent_widget, True),
            ('Truncation and noise', TruncNoiseWidget(self), False),
            ('Style mixing', self.style_mix_widget, False),
            ('Layers and FFT', LayersWidget(self), False),
            ('Compare A | B', CompareWidget(self), False),
            ('Texture sticking', StickingWidget(self), False),
            ('Equivariance', self.equivariance_widget, False),
            ('Spectrum', SpectrumWidget(self), False),
            ('Capture', self.capture_widget, False),
            ('Performance', PerformanceWidget(self), False),
            ('Help', self._help, False),
        ]

    # -- actions used by widgets ------------------------------------------------------------
    @property
    def load_error(self) -> str:
        """The error of the newest result if network A itself failed to load."""
        result = self.result
        return result.error if result is not None and result.error_kind == ERROR_NETWORK else ''

    @property
    def render_notes(self) -> list[str]:
        """What the newest result says about how it was rendered (e.g. float32 after a float16 overflow)."""
        result = self.result
        waiting = ['Compare: choose network B in the "Compare A | B" panel.'] if (
            self.state.compare_enabled and self.state.compare_source is None) else []
        if result is None:
            return waiting
        networks = result.networks
        return waiting + [f'{name}: {note}' if len(networks) > 1 else note
                          for name, part in networks for note in part.notes]

    @property
    def render_error(self) -> str:
        return self.result.error if self.result is not None and self.result.error else ''

    def open_network(self, source: str) -> None:
        state = self.state
        if source != state.network:
            state.layer, state.channel_base = None, 0  # Layer names differ between networks.
            state.class_idx = None                       # And so do the classes.
        state.network = source
        self._remember(source)
        self.notice = ''

    def open_compare_network(self, source: str) -> None:
        """Show network B beside A (compare mode)."""
        state = self.state
        state.compare_source, state.compare_enabled = source, True
        self._remember(source)

    def _remember(self, source: str) -> None:
        """Put a network path or URL at the top of the recent list."""
        if source:
            self.state.recent = ([source] + [p for p in self.state.recent if p != source])[:MAX_RECENT]

    def retry_network(self) -> None:
        """Render the current arguments again (a failed load is not cached, so it is retried)."""
        self.renderer.set_args(render_args(self.state), force=True)

    def request_window_capture(self) -> None:
        self._capture_window = True

    def drop(self, path: str) -> None:
        """A file dropped on the window: a network opens; a capture's .json (render args) or .npy (w) loads."""
        lowered = path.lower()
        if lowered.endswith(tuple(p[1:] for p in NETWORK_PATTERNS)):
            self.network_widget.open(path)
        elif lowered.endswith(('.json', '.npy')):
            self.capture_widget.load(path)
            self.notice = self.capture_widget.error
        else:
            self.notice = (f'{path}: not a network file (expected {" or ".join(NETWORK_PATTERNS)}) '
                           f'or a capture\'s .json / .npy')

    def _restore(self, path: str) -> None:
        loaded, self.notice = settings.load(path)
        state = self.state
        state.recent, state.network = list(loaded.recent), loaded.network
        state.seed, state.seed_y, state.class_idx = loaded.seed, loaded.seed_y, loaded.class_idx
        self.open_panels = dict(loaded.open_panels)

    def save_settings(self) -> None:
        """Write the recent networks and the state to settings_path (a failure is reported, not raised)."""
        if self.settings_path is None:
            return
        state = self.state
        kept = settings.Settings(recent=list(state.recent), network=state.network, seed=state.seed,
                                 seed_y=state.seed_y, class_idx=state.class_idx, open_panels=dict(self.open_panels))
        try:
            settings.save(self.settings_path, kept)
        except OSError as e:
            print(f'warning: could not save the settings to {e.filename or self.settings_path}: {e.strerror or e}',
                  file=sys.stderr)

    def record(self, name: str) -> None:
        """Remember the last item's screen rectangle under `name` (tests click on it)."""
        lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        self.item_rects[name] = ((lo.x, lo.y), (hi.x, hi.y))

    # -- the frame --------------------------------------------------------------------------
    def frame(self) -> None:
        """Draw one frame; never waits for the renderer (it may wait for events when nothing changes)."""
        if self.window.begin_frame(clear_rgb=(0.1, 0.1, 0.1), wait_s=self.idle_wait()):
            self._last_event = time.perf_counter()
        for path in self.window.take_dropped_paths():
            self.drop(path)
        self.imgui.new_frame()
        self._tick()
        self._poll_result()
        self._record_if_ready()
        self._draw()
        self.renderer.set_args(render_args(self.state))
        self.imgui.render()
        self._read_back()
        self.window.end_frame()
        self.frame_count += 1

    def _tick(self) -> None:
        now = time.perf_counter()
        dt_s, self._last_time = now - self._last_time, now
        self.frame_ms[self.frame_count % FRAME_HISTORY] = 1e3 * dt_s
        if dt_s > 0:
            self.fps = 1.0 / dt_s if self.fps == 0 else 0.9 * self.fps + 0.1 / dt_s
        if self.recorder.active:  # Fixed-rate animation time: one step per recorded frame.
            dt_s = self.recorder.take_step()
        self.latent_widget.advance(dt_s)
        self.equivariance_widget.advance(dt_s)

    def idle_wait(self) -> Optional[float]:
        """How long the next frame may sleep waiting for events: None = draw at once."""
        if not self.wait_when_idle:
            return None
        state, io = self.state, imgui.get_io()
        animating = state.animate_seed or state.animate_translate or state.animate_rotate
        pressed = any(io.mouse_down[i] for i in range(3))
        recent = time.perf_counter() - self._last_event < ACTIVE_AFTER_EVENT_S
        if animating or self.recorder.active or pressed or recent or self._capture_window or self.read_back:
            return None
        return BUSY_REDRAW_S if self.renderer.is_busy else IDLE_WAIT_S

    def _poll_result(self) -> None:
        busy = self.renderer.is_busy
        if busy and self._busy_since is None:
            self._busy_since = time.perf_counter()
        elif not busy:
            self._busy_since = None
        result = self.renderer.get_result()
        if result is None:
            return
        self.result = result
        if result.image is not None:
            self.shown_result = result
            if not result.partial:
                self.final_result = result
            if self.texture is None:
                self.texture = Texture()
            self.texture.update(result.image)

    def _record_if_ready(self) -> None:
        """Give the recorder the frame for the current arguments once its render result is here."""
        recorder = self.recorder
        if not recorder.active or recorder.step_due or self._record_window:
            return
        args = render_args(self.state)
        result = self.result
        if result is not None and result.args == args and result.image is None and result.error:
            recorder.stop(f'Recording stopped: the render failed: {result.error}')
            return
        shown = self.final_result
        if shown is None or shown.args != args:
            return  # Still rendering this frame.
        if recorder.source == 'window':
            self._record_window = True  # Read back after this frame is drawn with the new image.
        else:
            recorder.append(shown.image)

    def _read_back(self) -> None:
        if not (self.read_back or self._capture_window or self._record_window):
            return
        self.last_pixels = self.window.read_pixels()
        if self._capture_window:
            self.capture_widget.capture_window(self.last_pixels)
        if self._record_window and self.recorder.active:
            self.recorder.append(self.last_pixels)
        self.read_back = self._capture_window = self._record_window = False

    def _draw(self) -> None:
        size = imgui.get_io().display_size
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(size)
        imgui.begin('##main', None, _MAIN_FLAGS)
        try:
            self._draw_pane()
            imgui.same_line()
            self._draw_image_area()
        finally:
            imgui.end()
        self._keyboard()

    def _draw_pane(self) -> None:
        imgui.begin_child('##pane', imgui.ImVec2(layout.em(layout.PANE_WIDTH_EM), 0))
        try:
            for title, widget, default_open in self.sections:
                flags = imgui.TreeNodeFlags_.default_open if default_open else 0
                if title in self.open_panels and self.frame_count == 0:
                    imgui.set_next_item_open(self.open_panels[title])   # As the last session left it.
                is_open = imgui.collapsing_header(title, flags)
                self.open_panels[title] = is_open
                self.record(f'header:{title}')
                if is_open:
                    with layout.id_scope(title):
                        widget()
        finally:
            imgui.end_child()

    def _help(self) -> None:
        for keys, action in HELP:
            layout.label(keys)
            imgui.text_wrapped(action)

    # -- image area -------------------------------------------------------------------------
    def _draw_image_area(self) -> None:
        imgui.begin_child('##image_area', imgui.ImVec2(0, 0))
        try:
            self._messages()  # A strip above the image, so red text never sits on the picture.
            pos, avail = imgui.get_cursor_screen_pos(), imgui.get_content_region_avail()
            area_pos, area_size = (pos.x, pos.y), (max(avail.x, 1), max(avail.y, 1))
            self.image_area = (area_pos, area_size)
            imgui.set_next_item_allow_overlap()   # The progress bar and Cancel button sit on top of it.
            imgui.invisible_button('##image', imgui.ImVec2(*area_size))
            self.record('image')
            zoom = self.current_zoom(area_size)
            self._mouse(zoom, area_pos, area_size)
            zoom = self.current_zoom(area_size)
            if self.texture is not None:
                draw_texture(self.texture, area_pos, area_size, zoom, self.state.pan)
                self._panel_labels(area_pos, area_size, zoom)
                self._fft_lines(area_pos, area_size, zoom)
            self._pixel_readout(area_pos, area_size, zoom)
            self._progress_overlay(area_pos, area_size)
        finally:
            imgui.end_child()

    def current_zoom(self, area_size: tuple[float, float]) -> float:
        if self.state.zoom is not None:
            return self.state.zoom
        if self.texture is None:
            return 1.0
        return fit_zoom((self.texture.width, self.texture.height), area_size)

    def _image_origin(self, area_pos: tuple[float, float], area_size: tuple[float, float],
                      zoom: float) -> tuple[float, float]:
        (x0, y0), _ = image_rect((self.texture.width, self.texture.height), area_pos, area_size, zoom, self.state.pan)
        return x0, y0

    def _zoom_about(self, mouse: tuple[float, float], zoom: float, new_zoom: float,
                    area_pos: tuple[float, float], area_size: tuple[float, float]) -> None:
        """Zoom so that the image point under the mouse stays under it (pan adjusted)."""
        state = self.state
        state.zoom = new_zoom
        if self.texture is None:
            return
        x0, y0 = self._image_origin(area_pos, area_size, zoom)
        u, v = (mouse[0] - x0) / zoom, (mouse[1] - y0) / zoom          # Image coordinates under the mouse.
        w, h = self.texture.width, self.texture.height
        state.pan = (mouse[0] - u * new_zoom - area_pos[0] - (area_size[0] - w * new_zoom) / 2,
                     mouse[1] - v * new_zoom - area_pos[1] - (area_size[1] - h * new_zoom) / 2)

    def split_line_x(self, area_pos: tuple[float, float], area_size: tuple[float, float],
                     zoom: float) -> Optional[float]:
        """Screen x of the split line when the split view is shown, else None."""
        result = self.final_result
        if self.texture is None or result is None or result.args is None or result.args.compare_network is None \
                or self.state.compare_view != 'split' or result.args.compare_view != 'split':
            return None
        x0, _ = self._image_origin(area_pos, area_size, zoom)
        return x0 + self.state.split_pos * self.texture.width * zoom

    def _mouse(self, zoom: float, area_pos: tuple[float, float], area_size: tuple[float, float]) -> None:
        io, state = imgui.get_io(), self.state
        mouse = (io.mouse_pos.x, io.mouse_pos.y)
        if imgui.is_item_hovered() and io.mouse_wheel != 0:
            self._zoom_about(mouse, zoom, step_zoom(zoom, 1 if io.mouse_wheel > 0 else -1), area_pos, area_size)
        if imgui.is_item_hovered() and imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
            state.zoom, state.pan = None, (0.0, 0.0)
        split_x = self.split_line_x(area_pos, area_size, zoom)
        if split_x is not None:
            _, y0 = self._image_origin(area_pos, area_size, zoom)
            grab = layout.em(SPLIT_GRAB_EM)
            self.item_rects['split_line'] = ((split_x - grab, y0), (split_x + grab, y0 + self.texture.height * zoom))
        if imgui.is_item_activated():
            self._dragging_split = split_x is not None and abs(mouse[0] - split_x) <= layout.em(SPLIT_GRAB_EM)
        if not imgui.is_item_active():
            self._dragging_split = False
            return
        if self._dragging_split:      # The split line follows the pointer.
            x0, _ = self._image_origin(area_pos, area_size, zoom)
            state.split_pos = min(max((mouse[0] - x0) / (self.texture.width * zoom), 0.0), 1.0)
            return
        if imgui.is_item_activated():
            return    # The press itself: its mouse delta is the jump from wherever the pointer was before.
        dx, dy = io.mouse_delta.x, io.mouse_delta.y
        if state.drag_pans:
            state.pan = (state.pan[0] + dx, state.pan[1] + dy)
        elif dx or dy:    # Across the latent plane: right = next seed, down = next row of seeds.
            state.w = None
            state.seed = min(max(state.seed + dx / SEED_DRAG_PX, 0.0), float(MAX_SEED))
            state.seed_y = min(max(state.seed_y + dy / SEED_DRAG_PX, 0.0), float(MAX_SEED))

    def _panel_labels(self, area_pos: tuple[float, float], area_size: tuple[float, float], zoom: float) -> None:
        """'A' and 'B' (or '|A - B|') in the top-left corner of each part of a compare picture."""
        result = self.final_result
        if result is None or not result.panels:
            return
        x0, y0 = self._image_origin(area_pos, area_size, zoom)
        draw_list = imgui.get_window_draw_list()
        pad = layout.em(0.25)
        for label, px0, py0, px1, _ in result.panels:
            if px1 <= px0:
                continue
            corner = (x0 + px0 * zoom + pad, y0 + py0 * zoom + pad)
            size = imgui.calc_text_size(label)
            box = ((corner[0], corner[1]), (corner[0] + size.x + 2 * pad, corner[1] + size.y + 2 * pad))
            draw_list.add_rect_filled(imgui.ImVec2(*box[0]), imgui.ImVec2(*box[1]),
                                      imgui.get_color_u32(imgui.ImVec4(0, 0, 0, 0.6)))
            draw_list.add_text(imgui.ImVec2(corner[0] + pad, corner[1] + pad),
                               imgui.get_color_u32(imgui.ImVec4(1, 1, 1, 1)), label)
            self.item_rects[f'panel_label:{label}'] = box

    def _fft_lines(self, area_pos: tuple[float, float], area_size: tuple[float, float], zoom: float) -> None:
        """On the FFT view of a layer: its cutoff as a square around DC, and the Nyquist frequency (the edges)."""
        self.fft_overlay = {}
        result = self.final_result
        if result is None or result.args is None or not result.args.fft or result.b is not None:
            return
        lines = frequency_lines(result.a.layers, result.args.layer)
        if not lines:
            return
        x0, y0 = self._image_origin(area_pos, area_size, zoom)
        width, height = self.texture.width, self.texture.height
        cx, cy = x0 + (width // 2 + 0.5) * zoom, y0 + (height // 2 + 0.5) * zoom    # The DC pixel's centre.
        half_w, half_h = lines['cutoff'] * width * zoom, lines['cutoff'] * height * zoom
        draw_list = imgui.get_window_draw_list()
        colour = imgui.get_color_u32(imgui.ImVec4(*CUTOFF_RGBA))
        draw_list.add_rect(imgui.ImVec2(cx - half_w, cy - half_h), imgui.ImVec2(cx + half_w, cy + half_h), colour,
                           0.0, 1.5)
        draw_list.add_text(imgui.ImVec2(cx - half_w + 2, cy - half_h + 2), colour, f'cutoff {lines["cutoff"]:.3f}')
        draw_list.add_rect(imgui.ImVec2(x0, y0), imgui.ImVec2(x0 + width * zoom, y0 + height * zoom),
                           imgui.get_color_u32(imgui.ImVec4(*NYQUIST_RGBA)), 0.0, 1.5)
        draw_list.add_text(imgui.ImVec2(x0 + 2, y0 + height * zoom + 2),
                           imgui.get_color_u32(imgui.ImVec4(*NYQUIST_RGBA)),
                           'Nyquist 0.5 cycles/sample (edges); DC in the centre')
        self.fft_overlay = dict(lines, half_width_px=half_w / zoom)

    def hovered_pixel(self, area_pos: tuple[float, float], area_size: tuple[float, float],
                      zoom: float) -> Optional[tuple[int, int]]:
        """(x, y) of the image pixel under the mouse, or None when the mouse is not over the image."""
        if self.texture is None or not imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_overlapped_by_item):
            return None
        mouse = imgui.get_io().mouse_pos
        (x0, y0), _ = image_rect((self.texture.width, self.texture.height), area_pos, area_size, zoom, self.state.pan)
        x, y = math.floor((mouse.x - x0) / zoom), math.floor((mouse.y - y0) / zoom)
        return (x, y) if 0 <= x < self.texture.width and 0 <= y < self.texture.height else None

    def _pixel_readout(self, area_pos: tuple[float, float], area_size: tuple[float, float], zoom: float) -> None:
        """Under the image: the pixel's coordinates and the values of the shown channels there (drawn over
        the bottom of the image area, so nothing in the layout moves)."""
        self.pixel_readout = ''
        result = self.final_result
        pixel = self.hovered_pixel(area_pos, area_size, zoom)
        if pixel is None or result is None:
            return
        x, y = pixel
        text = f'x {x}  y {y}   zoom {zoom:g}x'
        part = result.a
        if result.b is None and part.readout is not None and part.readout.shape[1:] == (
                self.texture.height, self.texture.width):
            values = '  '.join(f'ch {c}: {v:.5g}' for c, v in zip(part.readout_channels, part.readout[:, y, x]))
            text += f'   {values}'
        self.pixel_readout = text
        draw_list = imgui.get_window_draw_list()
        pad = layout.em(0.3)
        size = imgui.calc_text_size(text)
        bottom = area_pos[1] + area_size[1]
        corner = imgui.ImVec2(area_pos[0] + pad, bottom - size.y - 3 * pad)
        draw_list.add_rect_filled(corner, imgui.ImVec2(corner.x + size.x + 2 * pad, bottom - pad),
                                  imgui.get_color_u32(imgui.ImVec4(0, 0, 0, 0.7)))
        draw_list.add_text(imgui.ImVec2(corner.x + pad, corner.y + pad), imgui.get_color_u32(imgui.ImVec4(1, 1, 1, 1)),
                           text)

    def _progress_overlay(self, area_pos: tuple[float, float], area_size: tuple[float, float]) -> None:
        """A progress bar and a Cancel button over the top of the image while a long render runs."""
        if self._busy_since is None or time.perf_counter() - self._busy_since < PROGRESS_DELAY_S:
            return
        progress = self.renderer.progress
        margin = layout.em(0.5)
        imgui.set_cursor_screen_pos(imgui.ImVec2(area_pos[0] + margin, area_pos[1] + margin))
        width = max(min(area_size[0] - layout.em(layout.BUTTON_WIDTH_EM) - 3 * margin, layout.em(28)), layout.em(4))
        if progress is not None and progress.fraction is not None:
            fraction, text = progress.fraction, progress.text
        else:  # Unknown amount: a bar that moves back and forth.
            fraction, text = -imgui.get_time(), progress.text if progress is not None else 'rendering...'
        imgui.progress_bar(fraction, imgui.ImVec2(width, 0), text)
        self.record('progress')
        imgui.same_line()
        if layout.small_button('Cancel'):
            self.renderer.cancel()
        self.record('cancel')

    def _messages(self) -> None:
        _, self.state.drag_pans = imgui.checkbox('Drag pans', self.state.drag_pans)
        if self.image_area is not None and self.texture is not None:
            imgui.same_line()
            zoom = self.current_zoom(self.image_area[1])
            layout.dim_text(f'zoom {zoom:g}x' + (' (fit)' if self.state.zoom is None else ''))
            self.record('zoom_label')
        if self.result is not None and self.result.cancelled and not self.renderer.is_busy:
            imgui.same_line()
            layout.dim_text('Render cancelled.')
            imgui.same_line()
            if imgui.small_button('Render'):
                self.renderer.set_args(render_args(self.state), force=True)
            self.record('render_again')
        for message in (self.notice, self.render_error):
            if message:
                layout.error_text(message)
        for note in self.render_notes:
            layout.dim_text(note)
            self.record('render_note')

    def _keyboard(self) -> None:
        io = imgui.get_io()
        if io.want_text_input:
            return
        state = self.state
        for key, step in ((imgui.Key.left_arrow, -1), (imgui.Key.right_arrow, 1)):
            if imgui.is_key_pressed(key):
                state.w = None
                state.seed = next_seed(state.seed, step)
        for key, step in ((imgui.Key.up_arrow, -1), (imgui.Key.down_arrow, 1)):
            if imgui.is_key_pressed(key):
                state.w = None
                state.seed_y = next_seed(state.seed_y, step)
        if imgui.is_key_pressed(imgui.Key.f12) or (io.key_ctrl and imgui.is_key_pressed(imgui.Key.s)):
            self.capture_widget.capture_image()

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the renderer and free GL, ImGui and the window; safe to call more than once."""
        self.window.hide()         # Gone from the screen now, not after the renderer process has stopped.
        self.recorder.stop()
        if self.settings_path is not None:
            self.save_settings()
            self.settings_path = None          # Once: close() may be called again.
        self.renderer.close()
        if self.texture is not None:
            self.texture.delete()
            self.texture = None
        self.imgui.close()
        self.window.close()
