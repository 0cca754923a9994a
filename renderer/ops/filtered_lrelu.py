"""filtered_lrelu: bias, upsample, leaky ReLU, clamp and downsample in one op.

Semantics (docs/generator.md section 3):
    x + b -> upfirdn2d(fu, up, padding, gain=up**2) -> * gain -> leaky ReLU(slope)
      -> clamp to [-clamp, clamp] -> upfirdn2d(fd, down)
The padding applies at the upsampled rate and covers both filters:
output width = (W*up + x0 + x1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down.

The reference path runs the upsampling and the downsampling as polyphase
passes (see polyphase.py); the nonlinearity is the only full-rate work.
The CUDA kernel (cuda/filtered_lrelu_core.h) fuses everything tile by tile in
shared memory: the upsampled signal never reaches device memory. For the
backward pass it keeps 2 bits per upsampled sample (negative branch, clamped);
the gradient is the transposed chain of upfirdn2d calls (`input_gradient`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from renderer.ops import common, cuda_build, self_check
from renderer.ops.upfirdn2d import apply_kernels, correlation_kernels, upfirdn2d

CUDA_MAX_FACTOR = 4   # the kernel's shared-memory tiles always fit within these limits
CUDA_MAX_TAPS = 24


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
    unsupported = _cuda_unsupported(x, fu, fd, up_x, down_x) if x.device.type == 'cuda' else None
    if common.resolve_impl('filtered_lrelu', impl, x, unsupported) == 'cuda':
        p = FlreluParams(up_x, down_x, pad, float(gain), float(slope), None if clamp is None else float(clamp),
                         bool(flip_filter))
        return _FilteredLReluCuda.apply(x, fu, fd, None if b is None else b.to(x.dtype), p)
    return _filtered_lrelu_ref(x, fu, fd, b, up_x, down_x, pad, float(gain), float(slope), clamp, flip_filter)


def _filtered_lrelu_ref(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    y = common.in_accumulation_precision(x)
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


# --- CUDA kernel --------------------------------------------------------------------------

def _cuda_unsupported(x, fu, fd, up, down) -> Optional[str]:
    """Why the kernel cannot run this call, or None."""
    if x.dtype not in (torch.float16, torch.float32):
        return f'{x.dtype} input (the kernel takes float16 and float32)'
    if max(up, down) > CUDA_MAX_FACTOR:
        return f'up/down factors above {CUDA_MAX_FACTOR}'
    for f, name in ((fu, 'fu'), (fd, 'fd')):
        if f is not None:
            if max(f.shape) > CUDA_MAX_TAPS:
                return f'{name} with more than {CUDA_MAX_TAPS} taps'
            if f.requires_grad and torch.is_grad_enabled():
                return f'gradients with respect to {name}'
    return None


@dataclass(frozen=True)
class FlreluParams:
    up: int
    down: int
    pad: tuple[int, int, int, int]       # (x0, x1, y0, y1) at the upsampled rate
    gain: float
    slope: float
    clamp: Optional[float]
    flip: bool


def input_gradient(gy: torch.Tensor, fu: Optional[torch.Tensor], fd: Optional[torch.Tensor],
                   act_grad: Callable[[torch.Tensor], torch.Tensor], p: FlreluParams, in_hw: Sequence[int],
                   upfirdn: Callable = upfirdn2d) -> torch.Tensor:
    """Gradient of filtered_lrelu with respect to x + b, from the gradient `gy` of its output.

    The transposed chain: the adjoint of the down filter (upfirdn by `down`
    with the other filter orientation) gives the gradient at the upsampled
    rate; `act_grad` multiplies it by the activation's derivative (gain,
    slope, 0 where clamped); the adjoint of the up filter brings it back to
    the input rate.
    """
    (fux, fuy), (fdx, fdy) = common.filter_size(fu), common.filter_size(fd)
    h, w = in_hw
    mid_w = w * p.up + p.pad[0] + p.pad[1] - fux + 1
    mid_h = h * p.up + p.pad[2] + p.pad[3] - fuy + 1
    out_h, out_w = gy.shape[2:]
    g = upfirdn(gy, fd, up=p.down, padding=[fdx - 1, mid_w - out_w * p.down, fdy - 1, mid_h - out_h * p.down],
                flip_filter=not p.flip)
    g = act_grad(g)
    pad = [fux - 1 - p.pad[0], fux - 1 - p.pad[1], fuy - 1 - p.pad[2], fuy - 1 - p.pad[3]]
    return upfirdn(g, fu, down=p.up, padding=pad, flip_filter=not p.flip, gain=p.up * p.up)


class _FilteredLReluCuda(torch.autograd.Function):
    """The fused kernel; with gradients required it also returns the 2-bit activation codes."""

    @staticmethod
    def forward(ctx, x, fu, fd, b, p: FlreluParams):
        need_mask = ctx.needs_input_grad[0] or ctx.needs_input_grad[3]
        clamp = math.inf if p.clamp is None else p.clamp
        y, mask = cuda_build.extension().filtered_lrelu_forward(
            x, fu, fd, b, p.up, p.down, *p.pad, p.flip, p.gain, p.slope, clamp, need_mask)
        ctx.save_for_backward(mask, fu, fd)
        ctx.p = p
        ctx.x_info = (tuple(x.shape[2:]), x.dtype, None if b is None else b.dtype)
        return y

    @staticmethod
    def backward(ctx, gy):
        mask, fu, fd = ctx.saved_tensors
        p = ctx.p
        in_hw, x_dtype, b_dtype = ctx.x_info
        gx = gb = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[3]:
            g = input_gradient(gy.float(), fu, fd, lambda g: _ActGrad.apply(g, mask, p.gain, p.slope), p, in_hw)
            if ctx.needs_input_grad[0]:
                gx = g.to(x_dtype)
            if ctx.needs_input_grad[3]:
                gb = g.sum(dim=[0, 2, 3]).to(b_dtype)
        return gx, None, None, gb, None


class _ActGrad(torch.autograd.Function):
    """g * activation derivative, from the codes; linear in g, so its gradient is itself."""

    @staticmethod
    def forward(ctx, g, mask, gain, slope):
        ctx.save_for_backward(mask)
        ctx.gain, ctx.slope = gain, slope
        return cuda_build.extension().filtered_lrelu_mask_grad(g.float().contiguous(), mask, gain, slope)

    @staticmethod
    def backward(ctx, gg):
        mask, = ctx.saved_tensors
        return _ActGrad.apply(gg, mask, ctx.gain, ctx.slope), None, None, None


# --- self-check of the kernel before its first use (renderer.ops.self_check) ------------------

def _self_check_cases(device: torch.device) -> list[self_check.CheckCase]:
    x = self_check.random_tensor([2, 3, 14, 12], 21, device)
    b = self_check.random_tensor([3], 22, device)
    fu = self_check.random_tensor([12], 23, device, scale=0.3)
    fd = self_check.random_tensor([12], 24, device, scale=0.3)
    fd2 = self_check.random_tensor([12, 12], 25, device, scale=0.1)
    f5 = self_check.random_tensor([5], 26, device, scale=0.5)
    sg3 = dict(up=2, down=2, padding=[10, 10, 10, 10], gain=math.sqrt(2), slope=0.2)
    return [   # The generators' configurations (up 2 down 2, up 4 down 2, 12 taps) and a generic one.
        self_check.CheckCase('up 2 down 2, 12 taps, bias', (x, fu, fd, b), sg3, grad_args=(0, 3)),
        self_check.CheckCase('up 2 down 2, clamp 0.5', (x, fu, fd, b), dict(sg3, clamp=0.5)),
        self_check.CheckCase('up 4 down 2, 2-D down filter', (x, fu, fd2, b),
                             dict(up=4, down=2, padding=[20, 19, 21, 18], gain=1.0, slope=0.2), grad_args=(0,)),
        self_check.CheckCase('up 1 down 1, 5 taps, flipped', (x, f5, f5, None),
                             dict(padding=[4, 3, 2, 4], slope=0.45, flip_filter=True)),
        self_check.CheckCase('up 2 down 2 float16', (x.half(), fu, fd, b.half()), dict(sg3, clamp=256.0)),
    ]


self_check.register('filtered_lrelu', filtered_lrelu, _self_check_cases)
