"""filtered_lrelu: bias, upsample, leaky ReLU, clamp and downsample in one op.

Semantics (generator-spec section 3):
    x + b -> upfirdn2d(fu, up, padding, gain=up**2) -> * gain -> leaky ReLU(slope)
      -> clamp to [-clamp, clamp] -> upfirdn2d(fd, down)
The padding applies at the upsampled rate and covers both filters:
output width = (W*up + x0 + x1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down.

The reference path runs the upsampling and the downsampling as polyphase
passes (see polyphase.py); the nonlinearity is the only full-rate work.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from . import common
from .upfirdn2d import apply_kernels, correlation_kernels


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                   b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1,
                   padding: Union[int, Sequence[int]] = 0, gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: Optional[float] = None, flip_filter: bool = False,
                   impl: str = 'auto') -> torch.Tensor:
    """Filtered leaky ReLU of a batch of 2-D images.

    Args:
        x: [batch, channels, height, width], float16/32/64.
        fu: upsampling filter, None, 1-D [taps] (separable) or 2-D [taps, taps].
        fd: downsampling filter, same forms.
        b: None or bias [channels], added before upsampling.
        up: integer upsampling factor (same along x and y).
        down: integer downsampling factor.
        padding: int, [x, y] or [x0, x1, y0, y1], at the upsampled rate.
        gain: multiplier applied before the activation (sqrt(2) for lrelu).
        slope: leaky ReLU slope for negative values (1 = linear).
        clamp: None or a non-negative bound applied after gain and activation.
        flip_filter: False = convolution with fu/fd, True = correlation.
        impl: 'auto', 'ref' or 'cuda'.
    Returns:
        [batch, channels, out_height, out_width] in x's dtype.
    """
    common.check_input(x)
    common.check_filter(fu, 'fu')
    common.check_filter(fd, 'fd')
    up_x, up_y = common.parse_factor(up, 'up')
    down_x, down_y = common.parse_factor(down, 'down')
    if up_x != up_y or down_x != down_y:
        raise ValueError(f'filtered_lrelu: up and down must be the same along x and y, got up={up}, down={down}')
    pad = common.parse_padding(padding)
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f'filtered_lrelu: b must have shape [{x.shape[1]}], got {list(b.shape)}')
    if clamp is not None and clamp < 0:
        raise ValueError(f'filtered_lrelu: clamp must be None or >= 0, got {clamp}')
    if slope < 0:
        raise ValueError(f'filtered_lrelu: slope must be >= 0, got {slope}')
    fu_x, fu_y = common.filter_size(fu)
    fd_x, fd_y = common.filter_size(fd)
    out_w = (x.shape[3] * up_x + pad[0] + pad[1] - (fu_x - 1) - (fd_x - 1) + (down_x - 1)) // down_x
    out_h = (x.shape[2] * up_y + pad[2] + pad[3] - (fu_y - 1) - (fd_y - 1) + (down_y - 1)) // down_y
    if out_w < 1 or out_h < 1:
        raise ValueError(f'filtered_lrelu: filters of {fu_x} and {fd_x} taps are larger than the padded input '
                         f'({x.shape[3]}x{x.shape[2]} with up={up}, padding={padding})')
    common.resolve_impl('filtered_lrelu', impl, x)
    return _filtered_lrelu_ref(x, fu, fd, b, up_x, down_x, pad, float(gain), float(slope), clamp, flip_filter)


def _filtered_lrelu_ref(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    work_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(work_dtype) if x.device.type == 'cpu' else x
    if b is not None:
        y = y + b.to(y.dtype).reshape(1, -1, 1, 1)
    # Leaky ReLU is positively homogeneous, so a positive gain folds into the upsampling filter.
    fold_gain = gain > 0
    up_gain = up * up * (gain if fold_gain else 1)
    y = apply_kernels(y, correlation_kernels(fu, up_gain, flip_filter, y), (up, up), (1, 1), pad)
    if not fold_gain:
        y = y * gain
    if slope != 1:
        y = F.leaky_relu(y, slope) if y.requires_grad else F.leaky_relu_(y, slope)
    if clamp is not None:
        y = y.clamp(-clamp, clamp) if y.requires_grad else y.clamp_(-clamp, clamp)
    y = apply_kernels(y, correlation_kernels(fd, 1, flip_filter, y), (1, 1), (down, down), (0, 0, 0, 0))
    return y.to(x.dtype)

