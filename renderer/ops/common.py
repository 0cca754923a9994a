"""Argument parsing and implementation selection shared by the custom ops.

Conventions used by every op in this package:
- factors (`up`, `down`) are an int or `[x, y]`;
- `padding` is an int, `[x, y]` meaning `[x, x, y, y]`, or `[x0, x1, y0, y1]`;
  negative values crop;
- filters are `None` (identity), 1-D `[taps]` (separable: applied along x,
  then along y) or 2-D `[taps_y, taps_x]`.
"""

from __future__ import annotations

import functools
import numbers
from typing import Optional, Sequence, Union

import torch

from renderer.ops import cuda_build

IntOrPair = Union[int, Sequence[int]]

IMPLS = ('auto', 'ref', 'cuda')


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
            return int(value)
        raise ValueError(f'{name} must be an integer, got {value!r}')
    return int(value)


def parse_factor(value: IntOrPair, name: str) -> tuple[int, int]:
    """Return `(fx, fy)` for an up/down factor given as int or [x, y]; each >= 1."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'{name} must be an int or [x, y], got {value!r}')
        fx, fy = (_as_int(v, name) for v in value)
    else:
        fx = fy = _as_int(value, name)
    if fx < 1 or fy < 1:
        raise ValueError(f'{name} must be >= 1, got {value!r}')
    return fx, fy


def parse_padding(padding: Union[int, Sequence[int]]) -> tuple[int, int, int, int]:
    """Return `(x0, x1, y0, y1)` from an int, `[x, y]` or `[x0, x1, y0, y1]`."""
    if isinstance(padding, (list, tuple)):
        values = [_as_int(v, 'padding') for v in padding]
        if len(values) == 2:
            return values[0], values[0], values[1], values[1]
        if len(values) == 4:
            return values[0], values[1], values[2], values[3]
        raise ValueError(f'padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding!r}')
    p = _as_int(padding, 'padding')
    return p, p, p, p


def check_input(x: torch.Tensor, name: str = 'x') -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    if x.ndim != 4:
        raise ValueError(f'{name} must have shape [batch, channels, height, width], got {list(x.shape)}')
    if not x.is_floating_point():
        raise ValueError(f'{name} must be a floating-point tensor, got {x.dtype}')


def check_filter(f: Optional[torch.Tensor], name: str) -> None:
    if f is None:
        return
    if not isinstance(f, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor or None, got {type(f).__name__}')
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f'{name} must be a non-empty 1-D or 2-D filter, got shape {list(f.shape)}')
    if not f.is_floating_point():
        raise ValueError(f'{name} must be floating point, got {f.dtype}')


def filter_size(f: Optional[torch.Tensor]) -> tuple[int, int]:
    """Return `(taps_x, taps_y)` of a filter (identity: 1, 1)."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')


def resolve_impl(op_name: str, impl: str, x: torch.Tensor, unsupported: Optional[str] = None) -> str:
    """Choose the implementation for one call: 'ref' or 'cuda'.

    'auto' takes the CUDA kernel for CUDA tensors when it can be built (see
    cuda_build) and supports the call (`unsupported` is None), the reference
    path otherwise; CPU tensors always take the reference path. 'cuda' raises
    RuntimeError when the kernel cannot be used, with the reason.
    """
    check_impl(impl)
    if impl == 'ref':
        cuda_build.note_call(op_name, 'ref', "impl='ref' requested")
        return 'ref'
    if x.device.type != 'cuda':
        if impl == 'cuda':
            raise RuntimeError(f"{op_name}: impl='cuda' needs a CUDA tensor, got one on {x.device}")
        cuda_build.note_call(op_name, 'ref', f'{x.device.type} tensor')
        return 'ref'
    if unsupported is not None:
        if impl == 'cuda':
            raise RuntimeError(f"{op_name}: impl='cuda' does not support this call: {unsupported}")
        cuda_build.note_call(op_name, 'ref', f'not supported by the kernel: {unsupported}')
        return 'ref'
    return cuda_build.select(op_name, impl, x.device)


def accumulation_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 tensors, float32 otherwise (reduced precision accumulates in float32)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def in_accumulation_precision(x: torch.Tensor) -> torch.Tensor:
    """x upcast to its accumulation dtype on the CPU when it is float16 (whose CPU convolutions are slow
    and inexact); bfloat16 stays bfloat16 (oneDNN's bfloat16 convolutions accumulate in float32), and
    CUDA tensors are returned as they are."""
    return x.to(accumulation_dtype(x)) if x.device.type == 'cpu' and x.dtype != torch.bfloat16 else x


def cpu_bf16_instructions() -> tuple[str, ...]:
    """The CPU's native bfloat16 instruction sets (Linux /proc/cpuinfo: avx512_bf16, amx_bf16 on x86, bf16 on
    Arm); () when it has none (oneDNN then emulates bfloat16 products with AVX-512) or cannot tell."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('flags', 'Features')):
                    return tuple(sorted(flag for flag in line.split(':', 1)[1].split() if 'bf16' in flag))
    except OSError:
        pass
    return ()


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """The CPU multiplies bfloat16 natively (AVX512_BF16 or AMX, as torch.cpu reports; else /proc/cpuinfo).
    A fact of the machine, looked up once."""
    checks = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    return any(bool(check()) for check in checks if check is not None) or bool(cpu_bf16_instructions())


def convolution_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype to run a dense (modulated) convolution of x in: x's dtype, except bfloat16 on a CPU without
    native bfloat16 products, where oneDNN's emulation takes about 2x the float32 time (benchmarks/generator.py):
    there the products are float32 and the result is rounded to bfloat16 once, as a native bfloat16 convolution
    rounds it. (The depthwise filter passes stay bfloat16: for them the two conversions would cost more.)"""
    if x.dtype == torch.bfloat16 and x.device.type == 'cpu' and not cpu_has_native_bf16():
        return torch.float32
    return x.dtype
