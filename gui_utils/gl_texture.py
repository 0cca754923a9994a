"""An OpenGL texture fed from numpy images; same-size updates reuse the storage (glTexSubImage2D)."""

from __future__ import annotations

import numpy as np
import OpenGL.GL as gl

_FORMATS = {3: gl.GL_RGB, 4: gl.GL_RGBA}


def as_rgb_or_rgba(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3 or 4], contiguous; grey [H, W] or [H, W, 1] is repeated to RGB."""
    if image.dtype != np.uint8:
        raise TypeError(f'texture images must be uint8, got {image.dtype}')
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f'texture images must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {image.shape}')
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


class Texture:
    """A 2-D RGB(A) texture; `update` uploads a new image, reallocating only when its shape changes."""

    def __init__(self, image: np.ndarray | None = None, nearest: bool = True):
        self.gl_id = int(gl.glGenTextures(1))
        self.shape: tuple[int, int, int] = (0, 0, 0)  # [H, W, C] of the allocated storage.
        self.allocations = 0                          # Times storage was (re)allocated (glTexImage2D).
        self.sub_updates = 0                          # Times storage was reused (glTexSubImage2D).
        self.nearest = None
        self.set_filter(nearest)
        if image is not None:
            self.update(image)

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def height(self) -> int:
        return self.shape[0]

    def set_filter(self, nearest: bool) -> None:
        """Nearest sampling keeps pixels square at integer zoom; linear is smoother when shrinking."""
        if nearest == self.nearest:
            return
        self.nearest = nearest
        mode = gl.GL_NEAREST if nearest else gl.GL_LINEAR
        with _bound(self.gl_id):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, mode)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, mode)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)

    def update(self, image: np.ndarray) -> None:
        image = as_rgb_or_rgba(image)
        height, width, channels = image.shape
        fmt = _FORMATS[channels]
        with _bound(self.gl_id):
            gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
            gl.glPixelStorei(gl.GL_UNPACK_ROW_LENGTH, 0)
            if image.shape == self.shape:
                gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, width, height, fmt, gl.GL_UNSIGNED_BYTE, image)
                self.sub_updates += 1
            else:
                gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, fmt, width, height, 0, fmt, gl.GL_UNSIGNED_BYTE, image)
                self.shape = image.shape
                self.allocations += 1

    def delete(self) -> None:
        """Free the GL texture (needs the context current); safe to call more than once."""
        if self.gl_id:
            gl.glDeleteTextures([self.gl_id])
            self.gl_id = 0


class _bound:
    """Bind a texture for the duration of a `with` block, restoring the previous binding."""

    def __init__(self, gl_id: int):
        self.gl_id = gl_id

    def __enter__(self) -> None:
        self.previous = int(gl.glGetIntegerv(gl.GL_TEXTURE_BINDING_2D))
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.gl_id)

    def __exit__(self, *exc: object) -> None:
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.previous)
