"""bias_act: add a per-channel bias, apply an activation, scale by a gain, clamp.

The CUDA kernel (cuda/bias_act_core.h) is element-wise, float32 arithmetic;
its gradient kernel recomputes the activation's derivative from x + b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from renderer.ops import common, cuda_build, self_check


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    'linear': Activation(lambda x, a: x, 0, 1),
    'relu': Activation(lambda x, a: F.relu(x), 0, math.sqrt(2)),
    'lrelu': Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    'tanh': Activation(lambda x, a: torch.tanh(x), 0, 1),
    'sigmoid': Activation(lambda x, a: torch.sigmoid(x), 0, 1),
    'elu': Activation(lambda x, a: F.elu(x), 0, 1),
    'selu': Activation(lambda x, a: F.selu(x), 0, 1),
    'softplus': Activation(lambda x, a: F.softplus(x), 0, 1),
    'swish': Activation(lambda x, a: torch.sigmoid(x) * x, 0, math.sqrt(2)),
}


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = 'linear',
             alpha: Optional[float] = None, gain: Optional[float] = None,
             clamp: Optional[float] = None, impl: str = 'auto') -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp).

    Args:
        x: any shape, floating point.
        b: None or a 1-D bias with x.shape[dim] entries, broadcast along `dim`.
        act: one of ACTIVATIONS ('linear', 'relu', 'lrelu', 'tanh', ...).
        alpha: slope of 'lrelu' (default 0.2); unused by the others.
        gain: scale after the activation; default: the activation's own
            (sqrt(2) for 'relu', 'lrelu', 'swish'; 1 otherwise).
        clamp: None or a non-negative bound applied last.
        impl: 'auto', 'ref' or 'cuda'.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f'bias_act: x must be a floating-point tensor, got {type(x).__name__}')
    if act not in ACTIVATIONS:
        raise ValueError(f'bias_act: unknown act {act!r}; expected one of {sorted(ACTIVATIONS)}')
    if clamp is not None and clamp < 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp}')
    if b is not None:
        if not (-x.ndim <= dim < x.ndim):
            raise ValueError(f'bias_act: dim {dim} out of range for a {x.ndim}-D input')
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: b must have shape [{x.shape[dim]}] to match x.shape[{dim}], '
                             f'got {list(b.shape)}')
    common.check_impl(impl)
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    dim = dim % x.ndim if b is not None else dim
    trivial = b is None and act == 'linear' and gain == 1 and clamp is None  # y = x: nothing to run
    unsupported = None
    if x.device.type == 'cuda':
        unsupported = 'identity (nothing to compute)' if trivial else _cuda_unsupported(x)
    if common.resolve_impl('bias_act', impl, x, unsupported) == 'cuda':
        p = BiasActParams(dim, act, alpha, gain, None if clamp is None else float(clamp))
        return _BiasActCuda.apply(x, b, p)
    return _bias_act_ref(x, b, dim, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, dim, spec, alpha, gain, clamp):
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# --- CUDA kernel --------------------------------------------------------------------------

ACT_IDS = {name: i for i, name in enumerate(ACTIVATIONS)}  # the order of AfvAct in cuda/bias_act.h
PIECEWISE_LINEAR = ('linear', 'relu', 'lrelu')           # second derivative 0: double backward is exact


def _cuda_unsupported(x: torch.Tensor) -> Optional[str]:
    if x.dtype not in (torch.float16, torch.float32):
        return f'{x.dtype} input (the kernel takes float16 and float32)'
    return None


@dataclass(frozen=True)
class BiasActParams:
    dim: int
    act: str
    alpha: float
    gain: float
    clamp: Optional[float]

    def kernel_args(self) -> tuple:
        return (self.dim, ACT_IDS[self.act], self.alpha, self.gain, math.inf if self.clamp is None else self.clamp)


class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, p: BiasActParams):
        x = x.contiguous()
        y = cuda_build.extension().bias_act_forward(x, b, *p.kernel_args())
        ctx.save_for_backward(x, b)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, gy):
        x, b = ctx.saved_tensors
        p = ctx.p
        gx = _BiasActGradCuda.apply(gy, x, b, p)
        gb = None
        if ctx.needs_input_grad[1]:
            dims = [i for i in range(gx.ndim) if i != p.dim]
            gb = (gx.sum(dim=dims) if dims else gx).to(b.dtype)
        return (gx if ctx.needs_input_grad[0] else None), gb, None


class _BiasActGradCuda(torch.autograd.Function):
    """gx = gy * act'(x + b) * gain (0 where clamped); linear in gy."""

    @staticmethod
    def forward(ctx, gy, x, b, p: BiasActParams):
        ctx.save_for_backward(x, b)
        ctx.p = p
        return cuda_build.extension().bias_act_backward(gy.to(x.dtype).contiguous(), x, b, *p.kernel_args())

    @staticmethod
    def backward(ctx, ggx):
        x, b = ctx.saved_tensors
        p = ctx.p
        if p.act not in PIECEWISE_LINEAR:
            raise RuntimeError(f"bias_act: second-order gradients of act={p.act!r} are not implemented by the "
                               f"CUDA kernel; use impl='ref' (or one of {PIECEWISE_LINEAR})")
        return _BiasActGradCuda.apply(ggx, x, b, p), None, None, None


# --- self-check of the kernel before its first use (renderer.ops.self_check) ------------------

def _self_check_cases(device: torch.device) -> list[self_check.CheckCase]:
    x = self_check.random_tensor([2, 6, 5, 7], 1, device, scale=2.0)
    b = self_check.random_tensor([6], 2, device)
    x_last = self_check.random_tensor([3, 4, 9], 3, device)
    b_last = self_check.random_tensor([9], 4, device)
    return [
        self_check.CheckCase('lrelu with bias', (x, b), dict(act='lrelu'), grad_args=(0, 1)),
        self_check.CheckCase('lrelu with bias, clamp 1', (x, b), dict(act='lrelu', clamp=1.0)),
        self_check.CheckCase('linear, gain 0.7, bias on the last dim', (x_last, b_last),
                             dict(act='linear', gain=0.7, dim=2), grad_args=(0,)),
        self_check.CheckCase('tanh', (x, b), dict(act='tanh'), grad_args=(0,)),
        self_check.CheckCase('lrelu float16', (x.half(), b.half()), dict(act='lrelu', clamp=256.0)),
    ]


self_check.register('bias_act', bias_act, _self_check_cases)
