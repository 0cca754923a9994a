"""Argument parsing and implementation selection shared by the custom ops.

Conventions used by every op in this package:
- factors (`up`, `down`) are an int or `[x, y]`;
- `padding` is an int, `[x, y]` meaning `[x, x, y, y]`, or `[x0, x1, y0, y1]`;
  negative values crop;
- filters are `None` (identity), 1-D `[taps]` (separable: applied along x,
  then along y) or 2-D `[taps_y, taps_x]`.
"""

from __future__ import annotations

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
    """x upcast to its accumulation dtype on the CPU (where float16 convolutions are slow and
    inexact); CUDA tensors are returned as they are."""
    return x.to(accumulation_dtype(x)) if x.device.type == 'cpu' else x
