"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of 2-D images.

Semantics (docs/generator.md section 3), per channel:
1. insert `up - 1` zeros after every sample (both axes);
2. pad with zeros by `padding` (negative values crop);
3. convolve with `f` (a true convolution unless `flip_filter`; a 1-D filter is
   separable, applied along x then y; `f` is scaled by `gain ** (f.ndim / 2)`),
   keeping only outputs whose footprint lies fully inside;
4. keep every `down`-th sample.
Output width = (W * up + x0 + x1 - taps_x + down) // down; likewise height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from renderer.ops import common, cuda_build, self_check
from renderer.ops.polyphase import resample

CUDA_MAX_FACTOR = 8   # the kernel's shared-memory tiles always fit within these limits
CUDA_MAX_TAPS = 64


def correlation_kernels(f: Optional[torch.Tensor], gain: float, flip_filter: bool,
                        like: torch.Tensor) -> list[torch.Tensor]:
    """The passes that apply `f`: each a 2-D kernel in correlation order, gain folded in.

    A 1-D filter gives two passes ([1, taps] along x, then [taps, 1] along y);
    a 2-D filter gives one; None gives one 1x1 pass of value `gain`.
    Kernels are float32 (float64 for float64 inputs) on `like`'s device.
    """
    dtype = common.accumulation_dtype(like)
    if f is None:
        return [torch.full([1, 1], float(gain), dtype=dtype, device=like.device)]
    f = f.to(device=like.device, dtype=dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return [f * gain]
    return [(f * gain).reshape(1, -1), f.reshape(-1, 1)]


def upfirdn2d(x: torch.Tensor, f: Optional[torch.Tensor], up: common.IntOrPair = 1,
              down: common.IntOrPair = 1, padding: Union[int, Sequence[int]] = 0,
              flip_filter: bool = False, gain: float = 1, impl: str = 'auto') -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of 2-D images.

    Args:
        x: [batch, channels, height, width], float16/32/64, CPU or CUDA.
        f: None (identity), 1-D [taps] (separable) or 2-D [taps_y, taps_x] filter.
        up: upsampling factor, int or [x, y].
        down: downsampling factor, int or [x, y].
        padding: int, [x, y] or [x0, x1, y0, y1], at the upsampled rate.
        flip_filter: False = convolution, True = correlation.
        gain: overall scaling of the signal magnitude (use up**2 to upsample).
        impl: 'auto', 'ref' (pure PyTorch) or 'cuda'.
    Returns:
        [batch, channels, out_height, out_width] in x's dtype.
    """
    common.check_input(x)
    common.check_filter(f, 'f')
    ux, uy = common.parse_factor(up, 'up')
    dx, dy = common.parse_factor(down, 'down')
    pad = common.parse_padding(padding)
    common.check_impl(impl)
    taps_x, taps_y = common.filter_size(f)
    out_w = (x.shape[3] * ux + pad[0] + pad[1] - taps_x + dx) // dx
    out_h = (x.shape[2] * uy + pad[2] + pad[3] - taps_y + dy) // dy
    if out_w < 1 or out_h < 1:
        raise ValueError(f'upfirdn2d: filter of {taps_x}x{taps_y} taps is larger than the padded input '
                         f'({x.shape[3]}x{x.shape[2]} with up={up}, padding={padding})')
    unsupported = _cuda_unsupported(x, f, (ux, uy, dx, dy)) if x.device.type == 'cuda' else None
    if common.resolve_impl('upfirdn2d', impl, x, unsupported) == 'cuda':
        return _Upfirdn2dCuda.apply(x, f, UpfirdnParams((ux, uy), (dx, dy), pad, bool(flip_filter), float(gain)))
    return _upfirdn2d_ref(x, f, (ux, uy), (dx, dy), pad, flip_filter, gain)


# --- CUDA kernel --------------------------------------------------------------------------

def _cuda_unsupported(x: torch.Tensor, f: Optional[torch.Tensor], factors: tuple[int, ...]) -> Optional[str]:
    """Why the kernel cannot run this call, or None."""
    if x.dtype not in (torch.float16, torch.float32):
        return f'{x.dtype} input (the kernel takes float16 and float32)'
    if max(factors) > CUDA_MAX_FACTOR:
        return f'up/down factors above {CUDA_MAX_FACTOR}'
    if f is not None:
        if max(f.shape) > CUDA_MAX_TAPS:
            return f'filters of more than {CUDA_MAX_TAPS} taps'
        if f.requires_grad and torch.is_grad_enabled():
            return 'gradients with respect to the filter'
    return None


@dataclass(frozen=True)
class UpfirdnParams:
    up: tuple[int, int]                  # (x, y)
    down: tuple[int, int]
    pad: tuple[int, int, int, int]       # (x0, x1, y0, y1)
    flip: bool
    gain: float


def transposed_params(p: UpfirdnParams, in_hw: Sequence[int], out_hw: Sequence[int],
                      taps: tuple[int, int]) -> UpfirdnParams:
    """Parameters of the adjoint (gradient) of upfirdn2d with `p` from [.., out_hw] back to [.., in_hw].

    The adjoint upsamples by `down`, correlates with the other orientation of
    the filter and downsamples by `up`; padding is chosen so that the taps
    line up and the result has exactly in_hw samples.
    """
    (h, w), (oh, ow), (fx, fy) = in_hw, out_hw, taps
    (ux, uy), (dx, dy), (px0, _, py0, _) = p.up, p.down, p.pad
    pad = (fx - 1 - px0, w * ux - ow * dx + px0 - ux + 1, fy - 1 - py0, h * uy - oh * dy + py0 - uy + 1)
    return UpfirdnParams(up=p.down, down=p.up, pad=pad, flip=not p.flip, gain=p.gain)


class _Upfirdn2dCuda(torch.autograd.Function):
    """upfirdn2d kernel; the gradient is upfirdn2d with transposed parameters (so any order works)."""

    @staticmethod
    def forward(ctx, x, f, p: UpfirdnParams):
        y = cuda_build.extension().upfirdn2d(x, f, *p.up, *p.down, *p.pad, p.flip, p.gain)
        ctx.save_for_backward(f)
        ctx.p = p
        ctx.in_hw = tuple(x.shape[2:])
        return y

    @staticmethod
    def backward(ctx, gy):
        f, = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            q = transposed_params(ctx.p, ctx.in_hw, gy.shape[2:], common.filter_size(f))
            gx = _Upfirdn2dCuda.apply(gy, f, q)
        return gx, None, None


def _upfirdn2d_ref(x, f, up, down, pad, flip_filter, gain):
    kernels = correlation_kernels(f, gain, flip_filter, x)
    return apply_kernels(common.in_accumulation_precision(x), kernels, up, down, pad).to(x.dtype)


def apply_kernels(x: torch.Tensor, kernels: list[torch.Tensor], up: tuple[int, int],
                  down: tuple[int, int], pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Run the passes from `correlation_kernels` with polyphase resampling.

    Always returns a new tensor (never `x` itself), so callers may modify it in place.
    """
    if len(kernels) == 1:
        k = kernels[0]
        if k.numel() == 1 and up == (1, 1) and down == (1, 1) and not any(pad):
            return x * k.reshape([])  # a 0-dim tensor: keeps x's dtype, no device-to-host copy
        return resample(x, k, up, down, pad)
    x = resample(x, kernels[0], (up[0], 1), (down[0], 1), (pad[0], pad[1], 0, 0))
    return resample(x, kernels[1], (1, up[1]), (1, down[1]), (0, 0, pad[2], pad[3]))


def upsample2d(x: torch.Tensor, f: Optional[torch.Tensor], up: common.IntOrPair = 2,
               padding: Union[int, Sequence[int]] = 0, flip_filter: bool = False,
               gain: float = 1, impl: str = 'auto') -> torch.Tensor:
    """Upsample by `up` keeping the image centred: output = input size * up (for padding 0).

    The filter's footprint is compensated with padding
    [x0 + (taps + up - 1) // 2, x1 + (taps - up) // 2, ...]; DC gain is up**2 * gain.
    """
    ux, uy = common.parse_factor(up, 'up')
    px0, px1, py0, py1 = common.parse_padding(padding)
    taps_x, taps_y = common.filter_size(f)
    pad = [px0 + (taps_x + ux - 1) // 2, px1 + (taps_x - ux) // 2,
           py0 + (taps_y + uy - 1) // 2, py1 + (taps_y - uy) // 2]
    return upfirdn2d(x, f, up=(ux, uy), padding=pad, flip_filter=flip_filter,
                     gain=gain * ux * uy, impl=impl)


# --- self-check of the kernel before its first use (renderer.ops.self_check) ------------------

def _self_check_cases(device: torch.device) -> list[self_check.CheckCase]:
    x = self_check.random_tensor([2, 3, 11, 13], 11, device)
    f12 = self_check.random_tensor([12], 12, device, scale=0.3)
    f2d = self_check.random_tensor([4, 4], 13, device, scale=0.3)
    return [
        self_check.CheckCase('up 2, 12 taps', (x, f12), dict(up=2, padding=[6, 5], gain=4), grad_args=(0,)),
        self_check.CheckCase('down 2, 4x4 taps, flipped', (x, f2d), dict(down=2, padding=1, flip_filter=True),
                             grad_args=(0,)),
        self_check.CheckCase('up 1x2, down 3, uneven padding', (x, f12[:5].contiguous()),
                             dict(up=[1, 2], down=3, padding=[2, 0, 3, -1])),
        self_check.CheckCase('up 2 float16', (x.half(), f12), dict(up=2, padding=[6, 5], gain=4)),
    ]


self_check.register('upfirdn2d', upfirdn2d, _self_check_cases)
