"""bias_act: add a per-channel bias, apply an activation, scale by a gain, clamp."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from . import common


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
    common.resolve_impl('bias_act', impl, x)
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    return _bias_act_ref(x, b, dim % x.ndim if b is not None else dim, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, dim, spec, alpha, gain, clamp):
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
