"""Modulated convolution shared by both generators (docs/generator.md section 4).

For weight [O, I, k, k] and styles s [N, I]:
    w'[n, o, i] = w[o, i] * s[n, i]
    demodulated: w' *= rsqrt(sum over (i, k, k) of w'^2 + 1e-8)
executed as one grouped convolution over the batch (each sample convolved
with its own modulated weights), exactly as the published networks do.
The modulated weights are computed in float32 and rounded once to the input's
dtype; a bfloat16 input on a CPU without native bfloat16 products is convolved
in float32 and the result rounded to bfloat16 (precision.convolution_dtype).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from renderer.networks.precision import convolution_dtype


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   input_gain: Optional[torch.Tensor] = None, padding: int = 0, transpose: bool = False,
                   stride: int = 1) -> torch.Tensor:
    """x [N, I, H, W], weight [O, I, k, k], styles [N, I] -> [N, O, H', W'] in x's dtype.

    `input_gain` (a scalar tensor) scales the input after demodulation.
    transpose=True runs a stride-`stride` transposed convolution with the same weights
    (a scatter with w, no flip). A single sample keeps x's memory layout.
    """
    batch_size, in_channels = styles.shape
    out_channels, _, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, in_channels, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if input_gain is not None:
        w = w * input_gain.reshape(1, 1, 1, 1, 1)
    dtype, compute = x.dtype, convolution_dtype(x)
    w, x = w.to(compute), x.to(compute)
    if batch_size == 1:
        return _conv(x, w[0], padding, transpose, stride, groups=1).to(dtype)
    x = x.reshape(1, batch_size * in_channels, *x.shape[2:])
    if transpose:
        w = w.transpose(1, 2).reshape(batch_size * in_channels, out_channels, kh, kw)
        y = F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=batch_size)
    else:
        y = _conv(x, w.reshape(batch_size * out_channels, in_channels, kh, kw), padding, False, stride,
                  groups=batch_size)
    return y.reshape(batch_size, out_channels, *y.shape[2:]).to(dtype)


def _conv(x: torch.Tensor, w: torch.Tensor, padding: int, transpose: bool, stride: int, groups: int):
    if transpose:
        return F.conv_transpose2d(x, w.transpose(0, 1), stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, padding=padding, stride=stride, groups=groups)
