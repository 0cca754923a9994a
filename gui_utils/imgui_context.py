"""Dear ImGui + ImPlot context bound to a `Window`, with DPI-aware fonts from imgui_bundle's assets.

ImGui 1.92 rasterises glyphs on demand, so fonts stay crisp at any size: when
the window's UI scale changes (moved to another monitor, desktop scaling) we set
`style.font_scale_dpi` and scale the style sizes, and the atlas re-renders the
glyphs it needs; on a framebuffer larger than the window (retina) glyphs are
rasterised at the framebuffer density by the backend's framebuffer scale.
"""

from __future__ import annotations

import os
from typing import Optional

import imgui_bundle
from imgui_bundle import imgui, implot
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

from .window import Window

FONT_FILE = os.path.join(os.path.dirname(imgui_bundle.__file__), 'assets', 'fonts', 'DroidSans.ttf')
BASE_FONT_SIZE = 15.0  # Pixels at a content scale of 1.


class ImGuiContext:
    """Owns the ImGui and ImPlot contexts and the OpenGL renderer backend for one window."""

    def __init__(self, window: Window, ini_filename: Optional[str] = '', font_size: float = BASE_FONT_SIZE):
        """ini_filename: where ImGui saves window layout; '' or None disables imgui.ini."""
        self.window = window
        self.context = imgui.create_context()
        self.plot_context = implot.create_context()
        imgui.get_io().set_ini_filename(ini_filename or '')
        imgui.style_colors_dark()
        self.font_size = font_size
        self.font = self._load_font()
        self.backend = GlfwRenderer(window.handle, attach_callbacks=True)
        self.dpi_scale = 0.0
        self._closed = False

    def _load_font(self) -> Optional[imgui.ImFont]:
        if not os.path.isfile(FONT_FILE):
            return None  # Fall back to ImGui's built-in font.
        return imgui.get_io().fonts.add_font_from_file_ttf(FONT_FILE, self.font_size)

    def _update_dpi_scale(self) -> None:
        scale = self.window.ui_scale
        if scale != self.dpi_scale:
            style = imgui.get_style()
            style.scale_all_sizes(scale / (self.dpi_scale or 1.0))  # Padding, spacing, rounding.
            self.dpi_scale = scale
            style.font_scale_dpi = scale
            style.font_size_base = self.font_size

    @property
    def em(self) -> float:
        """Current font size in screen units; use it for every layout size."""
        return imgui.get_font_size()

    def new_frame(self) -> None:
        imgui.set_current_context(self.context)
        self._update_dpi_scale()
        self.backend.process_inputs()
        imgui.new_frame()
        if self.font is not None:
            imgui.push_font(self.font, 0.0)

    def render(self) -> None:
        if self.font is not None:
            imgui.pop_font()
        imgui.render()
        self.backend.render(imgui.get_draw_data())

    def close(self) -> None:
        """Free the GL objects and both contexts; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self.backend.shutdown()
        implot.destroy_context(self.plot_context)
        imgui.destroy_context(self.context)
