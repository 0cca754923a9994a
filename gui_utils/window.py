"""A GLFW window with an OpenGL 3.3 core context, a frame-loop helper and file-drop support.

Import `imgui_bundle` before `glfw`: it points PYGLFW_LIBRARY at its own GLFW
build, so that the window and the ImGui backend share one copy of GLFW.
"""

from __future__ import annotations

import time
from typing import Optional

# isort: off
import imgui_bundle  # noqa: F401  (must precede `import glfw`, see the module docstring)
import glfw
# isort: on
import numpy as np
import OpenGL.GL as gl


class WindowError(RuntimeError):
    """GLFW could not start or could not create a window (no display, no OpenGL 3.3)."""


class Window:
    """One GLFW window; sizes are in screen coordinates unless named `framebuffer_*`."""

    def __init__(self, title: str = 'Visualizer', width: int = 1280, height: int = 800,
                 vsync: bool = True, visible: bool = True):
        if not glfw.init():
            raise WindowError('GLFW could not initialise (is a display available? try xvfb-run)')
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.VISIBLE, visible)
        self.handle = glfw.create_window(width, height, title, None, None)
        if not self.handle:
            glfw.terminate()
            raise WindowError('GLFW could not create a window with an OpenGL 3.3 core context')
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if vsync else 0)
        self.dropped_paths: list[str] = []  # Files dropped since the last take_dropped_paths().
        glfw.set_drop_callback(self.handle, self._on_drop)
        self._closed = False

    def _on_drop(self, _window: object, paths: list[str]) -> None:
        self.dropped_paths.extend(paths)

    def take_dropped_paths(self) -> list[str]:
        paths, self.dropped_paths = self.dropped_paths, []
        return paths

    @property
    def size(self) -> tuple[int, int]:
        return glfw.get_window_size(self.handle)

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        """Pixels of the framebuffer; larger than `size` on high-DPI displays."""
        return glfw.get_framebuffer_size(self.handle)

    @property
    def content_scale(self) -> float:
        """The desktop's UI scale for this window (1.0 = 96 dpi)."""
        return max(glfw.get_window_content_scale(self.handle))

    @property
    def ui_scale(self) -> float:
        """How much to enlarge the UI in screen units: the content scale not already covered by a
        framebuffer larger than the window (macOS retina: 1; a 150 % Linux/Windows desktop: 1.5)."""
        width = max(self.size[0], 1)
        framebuffer_scale = self.framebuffer_size[0] / width
        return max(self.content_scale / max(framebuffer_scale, 1e-6), 0.5)

    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    def request_close(self) -> None:
        glfw.set_window_should_close(self.handle, True)

    def begin_frame(self, clear_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0),
                    wait_s: Optional[float] = None) -> bool:
        """Take events (waiting up to `wait_s` seconds for one; None: don't wait), set the viewport to the
        whole framebuffer and clear it. Returns whether the wait ended early, i.e. something happened."""
        woke = False
        if wait_s is None:
            glfw.poll_events()
        else:
            start = time.perf_counter()
            glfw.wait_events_timeout(wait_s)
            woke = time.perf_counter() - start < wait_s * 0.9
        glfw.make_context_current(self.handle)
        width, height = self.framebuffer_size
        gl.glViewport(0, 0, width, height)
        gl.glClearColor(*clear_rgb, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        return woke

    def wake(self) -> None:
        """End a `begin_frame` wait from any thread (GLFW's empty event)."""
        if not self._closed:
            glfw.post_empty_event()

    def end_frame(self) -> None:
        glfw.swap_buffers(self.handle)

    def read_pixels(self) -> np.ndarray:
        """The back buffer as uint8 [H, W, 3], top row first (call before end_frame)."""
        return read_framebuffer(*self.framebuffer_size)

    def hide(self) -> None:
        """Take the window off the screen at once (closing the rest may take a moment)."""
        if not self._closed:
            glfw.hide_window(self.handle)
            glfw.poll_events()

    def close(self) -> None:
        """Destroy the window and stop GLFW; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        glfw.destroy_window(self.handle)
        glfw.terminate()


def read_framebuffer(width: int, height: int) -> np.ndarray:
    """Read the current read buffer into uint8 [height, width, 3], flipped so row 0 is the top."""
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
    return np.ascontiguousarray(pixels[::-1])
