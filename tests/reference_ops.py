"""Independent float64 NumPy reference of the resampling ops, for tests only.

Written directly from docs/generator.md section 3, as literally as possible:
explicit zero insertion, explicit zero padding / cropping, explicit
convolution loops and decimation by slicing. Speed is irrelevant; inputs in
the tests are tiny. Nothing here may import from `renderer.ops`.
"""

from __future__ import annotations

import math

import numpy as np


def as_pair(value):
    """Factor given as int or [x, y] -> (x, y)."""
    if isinstance(value, (list, tuple)):
        assert len(value) == 2
        return int(value[0]), int(value[1])
    return int(value), int(value)


def as_padding(padding):
    """Padding given as int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(padding, (list, tuple)):
        if len(padding) == 2:
            return int(padding[0]), int(padding[0]), int(padding[1]), int(padding[1])
        assert len(padding) == 4
        return tuple(int(p) for p in padding)
    p = int(padding)
    return p, p, p, p


def _to_numpy(a):
    if a is None:
        return None
    if hasattr(a, 'detach'):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def zero_insert(x, ux, uy):
    """Step 1: insert `u - 1` zeros after every sample along each axis."""
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * uy, w * ux))
    for i in range(h):
        for j in range(w):
            z[:, :, i * uy, j * ux] = x[:, :, i, j]
    return z


def pad_or_crop(z, x0, x1, y0, y1):
    """Step 2: zero padding; a negative amount crops. padded[i] = z[i - pad_lo]."""
    n, c, h, w = z.shape
    out_h, out_w = h + y0 + y1, w + x0 + x1
    p = np.zeros((n, c, max(out_h, 0), max(out_w, 0)))
    for i in range(out_h):
        si = i - y0
        if not 0 <= si < h:
            continue
        for j in range(out_w):
            sj = j - x0
            if 0 <= sj < w:
                p[:, :, i, j] = z[:, :, si, sj]
    return p


def convolve_valid(p, f2d, flip_filter):
    """Step 3: 2-D convolution keeping only outputs whose footprint lies fully inside.

    True convolution: out[i, j] = sum_{a, b} f[a, b] * p[i + ky-1-a, j + kx-1-b];
    with flip_filter (correlation): out[i, j] = sum_{a, b} f[a, b] * p[i + a, j + b].
    f2d is indexed [y, x].
    """
    n, c, h, w = p.shape
    ky, kx = f2d.shape
    out_h, out_w = h - ky + 1, w - kx + 1
    out = np.zeros((n, c, max(out_h, 0), max(out_w, 0)))
    for i in range(out_h):
        for j in range(out_w):
            acc = np.zeros((n, c))
            for a in range(ky):
                for b in range(kx):
                    if flip_filter:
                        acc += f2d[a, b] * p[:, :, i + a, j + b]
                    else:
                        acc += f2d[a, b] * p[:, :, i + ky - 1 - a, j + kx - 1 - b]
            out[:, :, i, j] = acc
    return out


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Reference upfirdn2d on float64 NumPy arrays [N, C, H, W]."""
    x = _to_numpy(x)
    f = _to_numpy(f)
    ux, uy = as_pair(up)
    dx, dy = as_pair(down)
    x0, x1, y0, y1 = as_padding(padding)
    y = zero_insert(x, ux, uy)
    y = pad_or_crop(y, x0, x1, y0, y1)
    if f is None:
        y = convolve_valid(y, np.ones((1, 1)), flip_filter)
    elif f.ndim == 1:
        # Separable: along x (a [1, taps] kernel), then along y (a [taps, 1] kernel).
        y = convolve_valid(y, f.reshape(1, -1), flip_filter)
        y = convolve_valid(y, f.reshape(-1, 1), flip_filter)
    else:
        assert f.ndim == 2
        y = convolve_valid(y, f, flip_filter)
    # The filter scaled by gain ** (ndim / 2) in every pass multiplies the
    # result by gain overall (linearity); applying it once avoids complex roots.
    y = y * gain
    return y[:, :, ::dy, ::dx]


def upfirdn2d_out_size(w, h, taps_x, taps_y, up, down, padding):
    ux, uy = as_pair(up)
    dx, dy = as_pair(down)
    x0, x1, y0, y1 = as_padding(padding)
    return (w * ux + x0 + x1 - taps_x + dx) // dx, (h * uy + y0 + y1 - taps_y + dy) // dy


def filtered_lrelu_pre(x, fu=None, b=None, up=1, padding=0, gain=math.sqrt(2), flip_filter=False):
    """Everything up to (and including) the gain: the values fed to the leaky ReLU."""
    x = _to_numpy(x)
    if b is not None:
        x = x + _to_numpy(b).reshape(1, -1, 1, 1)
    y = upfirdn2d(x, fu, up=up, padding=padding, gain=up ** 2, flip_filter=flip_filter)
    return y * gain


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2),
                   slope=0.2, clamp=None, flip_filter=False):
    """Reference filtered_lrelu: bias -> upfirdn2d(fu, up, padding, gain=up**2) -> *gain
    -> leaky ReLU(slope) -> clamp -> upfirdn2d(fd, down)."""
    y = filtered_lrelu_pre(x, fu, b, up, padding, gain, flip_filter)
    y = np.where(y >= 0, y, y * slope)
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return upfirdn2d(y, _to_numpy(fd), down=down, flip_filter=flip_filter)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# name -> (function(x, alpha), default alpha, default gain)
ACTIVATIONS = {
    'linear': (lambda x, a: x, 0.0, 1.0),
    'relu': (lambda x, a: np.maximum(x, 0), 0.0, math.sqrt(2)),
    'lrelu': (lambda x, a: np.where(x >= 0, x, x * a), 0.2, math.sqrt(2)),
    'tanh': (lambda x, a: np.tanh(x), 0.0, 1.0),
    'sigmoid': (lambda x, a: 1 / (1 + np.exp(-x)), 0.0, 1.0),
    'elu': (lambda x, a: np.where(x >= 0, x, np.expm1(x)), 0.0, 1.0),
    'selu': (lambda x, a: SELU_SCALE * np.where(x >= 0, x, SELU_ALPHA * np.expm1(x)), 0.0, 1.0),
    'softplus': (lambda x, a: np.logaddexp(0, x), 0.0, 1.0),
    'swish': (lambda x, a: x / (1 + np.exp(-x)), 0.0, math.sqrt(2)),
}


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """Reference bias_act: add per-channel bias along `dim`, activation, gain, clamp."""
    x = _to_numpy(x)
    func, def_alpha, def_gain = ACTIVATIONS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + _to_numpy(b).reshape(shape)
    y = func(x, alpha) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return y
