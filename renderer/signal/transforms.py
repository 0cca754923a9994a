"""2-D affine transforms of the image plane in image units ([-0.5, 0.5], y down).

StyleGAN3's `synthesis.input.transform` maps output coordinates to input
coordinates, so transforming the *image* by M means setting it to inv(M).
"""

from __future__ import annotations

import math

import numpy as np

from renderer.errors import RequestError


def image_transform(translate: tuple[float, float] = (0.0, 0.0), rotate_deg: float = 0.0,
                    scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0,
                    mirror: tuple[bool, bool] = (False, False)) -> np.ndarray:
    """3x3 float64 matrix moving image content: mirror, scale, shear, rotate, then translate.

    rotate_deg is counter-clockwise as seen on screen (y points down); translate is
    in image widths. Raises ValueError for a non-finite or singular transform.
    """
    values = [*translate, rotate_deg, *scale, shear]
    if not all(math.isfinite(float(v)) for v in values):
        raise RequestError(f'transform parameters must be finite, got translate={translate}, rotate={rotate_deg}, '
                         f'scale={scale}, shear={shear}')
    sx = scale[0] * (-1 if mirror[0] else 1)
    sy = scale[1] * (-1 if mirror[1] else 1)
    m_scale = np.diag([sx, sy, 1.0])
    m_shear = np.array([[1.0, shear, 0], [0, 1, 0], [0, 0, 1]])
    a = math.radians(rotate_deg)
    c, s = math.cos(a), math.sin(a)
    m_rotate = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # counter-clockwise on a y-down screen
    m_translate = np.array([[1.0, 0, translate[0]], [0, 1, translate[1]], [0, 0, 1]])
    m = m_translate @ m_rotate @ m_shear @ m_scale
    det = np.linalg.det(m[:2, :2])
    if abs(det) < 1e-6:
        raise RequestError(f'the transform is singular (determinant {det:.3g}): scale={scale}, shear={shear}')
    return m


def is_identity(m: np.ndarray) -> bool:
    return bool(np.allclose(m, np.eye(3), rtol=0, atol=1e-12))
