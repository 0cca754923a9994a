"""gui_utils with a real OpenGL context (under Xvfb): texture updates, zoom math."""

from __future__ import annotations

import numpy as np
import pytest

from gui_utils.draw import fit_zoom, image_rect, step_zoom


@pytest.fixture(scope='module')
def gl_window(xvfb_display):
    from gui_utils.window import Window
    window = Window('test', 64, 64, visible=False)
    try:
        yield window
    finally:
        window.close()


def _read_texture(texture) -> np.ndarray:
    import OpenGL.GL as gl
    gl.glBindTexture(gl.GL_TEXTURE_2D, texture.gl_id)
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glGetTexImage(gl.GL_TEXTURE_2D, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(texture.height, texture.width, 3)


def test_same_size_update_reuses_texture(gl_window, monkeypatch):
    from gui_utils import gl_texture
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # Odd width: checks unpack alignment.
    texture = gl_texture.Texture(first)
    gl_id = texture.gl_id
    calls = []
    real_sub = gl_texture.gl.glTexSubImage2D
    monkeypatch.setattr(gl_texture.gl, 'glTexSubImage2D', lambda *a: (calls.append(a[4:6]), real_sub(*a)))
    second = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    texture.update(second)
    assert texture.gl_id == gl_id and calls == [(7, 5)]
    assert (texture.allocations, texture.sub_updates) == (1, 1)
    np.testing.assert_array_equal(_read_texture(texture), second)
    texture.delete()


def test_new_size_reallocates(gl_window):
    from gui_utils.gl_texture import Texture
    texture = Texture(np.zeros((4, 4, 3), np.uint8))
    grey = np.full((6, 3, 1), 200, np.uint8)
    texture.update(grey)
    assert (texture.width, texture.height, texture.allocations, texture.sub_updates) == (3, 6, 2, 0)
    np.testing.assert_array_equal(_read_texture(texture), np.full((6, 3, 3), 200, np.uint8))
    texture.delete()
    texture.delete()  # Idempotent.


def test_rejects_bad_images(gl_window):
    from gui_utils.gl_texture import Texture
    texture = Texture()
    with pytest.raises(TypeError):
        texture.update(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        texture.update(np.zeros((4, 4, 2), np.uint8))
    texture.delete()


def test_zoom_math():
    assert fit_zoom((256, 256), (800, 780)) == 3
    assert fit_zoom((1024, 1024), (800, 780)) == 0.5
    assert step_zoom(1.0, 1) == 2 and step_zoom(1.0, -1) == 0.5 and step_zoom(0.5, 1) == 1
    assert step_zoom(1 / 3, -1) == 0.25
    assert image_rect((100, 50), (10, 20), (300, 150), 2.0, (5, -5)) == ((65, 40), (265, 140))


def test_the_window_and_imgui_share_one_glfw_library():
    """gui_utils.window imports imgui_bundle before glfw, so glfw loads imgui_bundle's copy of the library."""
    import os
    import subprocess
    import sys
    code = 'import os, gui_utils.window, glfw; print(os.environ["PYGLFW_LIBRARY"]); print(glfw.library.glfw._name)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.split('\n')
    assert out[0] and out[0] == out[1]
