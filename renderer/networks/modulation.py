"""Modulated convolution shared by both generators (generator-spec section 4).

For weight [O, I, k, k] and styles s [N, I]:
    w'[n, o, i] = w[o, i] * s[n, i]
    demodulated: w' *= d[n, o] = rsqrt(sum over (i, k, k) of w'^2 + 1e-8)
A single sample runs as one convolution with its own modulated weights; a
batch scales the activations instead (x * s, shared-weight convolution, * d),
which is the same linear map and runs as one efficient batched convolution.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   input_gain: Optional[torch.Tensor] = None, padding: int = 0, transpose: bool = False,
                   stride: int = 1) -> torch.Tensor:
    """x [N, I, H, W], weight [O, I, k, k], styles [N, I] -> [N, O, H', W'] in x's dtype.

    `input_gain` (a scalar tensor) scales the input after demodulation.
    transpose=True runs a stride-`stride` transposed convolution with the same weights.
    The memory layout of x (contiguous or channels-last) is kept.
    """
    batch_size, in_channels = styles.shape
    scale = styles.reshape(batch_size, 1, in_channels, 1, 1)
    if input_gain is not None:
        gain = input_gain.reshape(1, 1, 1, 1, 1)
    if demodulate:
        # sum over (i, k, k) of (w[o, i] * s[n, i])^2 = s^2 @ (sum over k, k of w^2)^T
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    if batch_size == 1:
        w = weight.unsqueeze(0) * scale
        if demodulate:
            w = w * dcoefs.reshape(1, -1, 1, 1, 1)
        if input_gain is not None:
            w = w * gain
        return _conv(x, w[0].to(x.dtype), padding, transpose, stride)
    s = styles if input_gain is None else styles * input_gain
    x = x * s.to(x.dtype).reshape(batch_size, in_channels, 1, 1)
    x = _conv(x, weight.to(x.dtype), padding, transpose, stride)
    if demodulate:
        x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
    return x


def _conv(x: torch.Tensor, w: torch.Tensor, padding: int, transpose: bool, stride: int) -> torch.Tensor:
    """Correlation with w [O, I, k, k]; transposed: scatter with the same w (no flip)."""
    if transpose:
        return F.conv_transpose2d(x, w.transpose(0, 1), stride=stride, padding=padding)
    return F.conv2d(x, w, padding=padding, stride=stride)
