"""Polyphase resampling: the engine of the reference (pure-PyTorch) ops.

Resampling a signal by `up`, padding, filtering and keeping every `down`-th
sample is computed without ever multiplying inserted zeros and without
computing samples that decimation throws away: each output phase is a
strided correlation of the *original* samples with one polyphase component
of the filter.

Derivation (1-D, one axis). With g the filter in correlation order (taps
k = 0..K-1) and z the zero-stuffed input (z[t] = x[t/u] when u divides t):
    out[m] = sum_k g[k] * z[m*d + k - p0].
Outputs split into P = u / gcd(u, d) phases s (m = P*q + s). Within a phase
only taps k = k0 + u*j with k0 = (p0 - s*d) mod u meet an input sample, so
    out[P*q + s] = sum_j g[k0 + u*j] * x[D*q + c_s + j],
with stride D = d / gcd(u, d) and offset c_s = (s*d - p0 + k0) / u.

Tensors are processed as depthwise convolutions in channels-last layout,
which is what oneDNN (CPU) and cuDNN run fastest for one filter per channel.
bfloat16 data stay bfloat16 (oneDNN accumulates in float32 within each pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Phase:
    """One output phase along one axis: taps g[k0::up], input offset, output count."""
    first_tap: int
    offset: int
    count: int


@dataclass(frozen=True)
class AxisPlan:
    out_len: int
    num_phases: int      # P: outputs interleave with this period
    stride: int          # D: input stride between outputs of one phase
    up: int
    phases: tuple[Phase, ...]


def plan_axis(length: int, taps: int, up: int, down: int, pad0: int, pad1: int) -> AxisPlan:
    """Plan the polyphase computation of one axis (see module docstring)."""
    out_len = (length * up + pad0 + pad1 - taps + down) // down
    g = math.gcd(up, down)
    num_phases, stride = up // g, down // g
    phases = []
    for s in range(num_phases):
        first_tap = (pad0 - s * down) % up
        offset = (s * down - pad0 + first_tap) // up
        count = max(0, (out_len - s + num_phases - 1) // num_phases)
        phases.append(Phase(first_tap, offset, count))
    return AxisPlan(out_len, num_phases, stride, up, tuple(phases))


def window(x: torch.Tensor, y0: int, height: int, x0: int, width: int) -> torch.Tensor:
    """Rows [y0, y0 + height) and columns [x0, x0 + width) of x, zero outside x."""
    h, w = x.shape[2:]
    if (y0, height, x0, width) == (0, h, 0, w):
        return x
    iy0, iy1 = min(max(y0, 0), h), max(min(y0 + height, h), 0)
    ix0, ix1 = min(max(x0, 0), w), max(min(x0 + width, w), 0)
    if iy1 <= iy0 or ix1 <= ix0:
        return x.new_zeros([x.shape[0], x.shape[1], height, width]).contiguous(memory_format=torch.channels_last)
    x = x[:, :, iy0:iy1, ix0:ix1]
    return F.pad(x, [ix0 - x0, x0 + width - ix1, iy0 - y0, y0 + height - iy1])


def _phase_conv(x: torch.Tensor, g: torch.Tensor, py: Phase, px: Phase,
                plan_y: AxisPlan, plan_x: AxisPlan) -> torch.Tensor:
    """Compute one (y, x) output phase: [N, C, count_y, count_x]."""
    n, c = x.shape[:2]
    sub = g[py.first_tap::plan_y.up, px.first_tap::plan_x.up]
    taps_y, taps_x = sub.shape
    if taps_y == 0 or taps_x == 0:
        return x.new_zeros([n, c, py.count, px.count])
    height, width = x.shape[2:]
    need_y = plan_y.stride * (py.count - 1) + taps_y
    need_x = plan_x.stride * (px.count - 1) + taps_x
    x = window(x, py.offset, need_y, px.offset, need_x)
    weight = sub.to(x.dtype).reshape(1, 1, taps_y, taps_x).expand(c, 1, taps_y, taps_x)
    return F.conv2d(x, weight, stride=(plan_y.stride, plan_x.stride), groups=c)


def resample(x: torch.Tensor, g: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
             padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Zero-stuff by `up`, pad, correlate with the 2-D filter `g` [ky, kx], decimate by `down`.

    x: [N, C, H, W], any memory layout; returns channels-last [N, C, H', W'].
    `g` is in correlation order (already flipped for a true convolution) and
    already scaled by any gain.
    """
    ux, uy = up
    dx, dy = down
    px0, px1, py0, py1 = padding
    x = x.contiguous(memory_format=torch.channels_last)
    if dx == 1 and dy == 1 and (ux > 1 or uy > 1):
        plan = _plan_transposed(x.shape[2:], g.shape, up, padding)
        if plan is not None:
            return _upsample_transposed(x, g, up, plan)
    plan_x = plan_axis(x.shape[3], g.shape[1], ux, dx, px0, px1)
    plan_y = plan_axis(x.shape[2], g.shape[0], uy, dy, py0, py1)
    if plan_x.num_phases == 1 and plan_y.num_phases == 1:
        return _phase_conv(x, g, plan_y.phases[0], plan_x.phases[0], plan_y, plan_x)
    out = torch.empty([x.shape[0], x.shape[1], plan_y.out_len, plan_x.out_len], dtype=x.dtype,
                      device=x.device, memory_format=torch.channels_last)
    for sy, py in enumerate(plan_y.phases):
        for sx, px in enumerate(plan_x.phases):
            if py.count and px.count:
                out[:, :, sy::plan_y.num_phases, sx::plan_x.num_phases] = _phase_conv(x, g, py, px, plan_y, plan_x)
    return out


def _plan_transposed_axis(length: int, taps: int, up: int, pad0: int, pad1: int):
    """Input pads (negative = crop), transposed-conv padding and residual crops along one axis.

    A stride-`up` transposed convolution with the filter in convolution order
    computes y_full (length (L-1)*up + taps) and out[m] = y_full[m + taps-1-pad0];
    `start` and `end` count the samples of y_full to drop on each side.
    """
    start = taps - 1 - pad0
    end = (length - 1) * up + taps - (length * up + pad0 + pad1 - taps + 1) - start
    pads = []
    for drop in (start, end):
        if drop < 0:                      # Missing samples: zero inputs beyond the edge.
            n = -(drop // up)
        elif drop > taps - 1:             # Inputs whose footprint lies entirely in the dropped part.
            n = -min((drop - taps + 1 + up - 1) // up, drop // up)
        else:
            n = 0
        pads.append(n)
    start, end = start + pads[0] * up, end + pads[1] * up
    if length + pads[0] + pads[1] < 1:
        return None
    conv_pad = min(start, end, taps - 1)
    return pads, conv_pad, start - conv_pad, end - conv_pad


def _plan_transposed(size, kernel_shape, up, padding):
    plan_x = _plan_transposed_axis(size[1], kernel_shape[1], up[0], padding[0], padding[1])
    plan_y = _plan_transposed_axis(size[0], kernel_shape[0], up[1], padding[2], padding[3])
    if plan_x is None or plan_y is None:
        return None
    return plan_x, plan_y


def _upsample_transposed(x: torch.Tensor, g: torch.Tensor, up: tuple[int, int], plan) -> torch.Tensor:
    """Upsampling without decimation as one strided transposed convolution (no zero products)."""
    (pads_x, conv_x, crop_x0, crop_x1), (pads_y, conv_y, crop_y0, crop_y1) = plan
    x = window(x, -pads_y[0], x.shape[2] + pads_y[0] + pads_y[1], -pads_x[0], x.shape[3] + pads_x[0] + pads_x[1])
    c = x.shape[1]
    taps_y, taps_x = g.shape
    weight = g.flip([0, 1]).to(x.dtype).reshape(1, 1, taps_y, taps_x).expand(c, 1, taps_y, taps_x)
    y = F.conv_transpose2d(x, weight, stride=(up[1], up[0]), padding=(conv_y, conv_x), groups=c)
    if crop_x0 or crop_x1 or crop_y0 or crop_y1:
        y = y[:, :, crop_y0:y.shape[2] - crop_y1, crop_x0:y.shape[3] - crop_x1]
        y = y.contiguous(memory_format=torch.channels_last)
    return y
