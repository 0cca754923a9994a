"""Compare a built CUDA kernel with the reference path before it is trusted with real work.

Each op registers a few small cases (`register`): fixed random inputs in the configurations
the generators use. `compare` runs every case through the kernel and through the reference
path on the same device, forward and, where the case asks, the gradients with respect to
its inputs, and reports the worst relative difference

    ||kernel - reference||_2 / ||reference||_2

per output. An L2 measure is used rather than the largest single difference because the
two paths may legitimately disagree at a handful of points (a value that rounds to the
other side of a clamp or of zero flips its gradient); a wrong kernel is wrong everywhere.
Tolerances: FORWARD_TOLERANCE in float32 (the kernels accumulate in float32, differences
are ~1e-6), HALF_TOLERANCE in float16, GRADIENT_TOLERANCE for gradients.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

FORWARD_TOLERANCE = 1e-3
HALF_TOLERANCE = 2e-2
GRADIENT_TOLERANCE = 5e-2


@dataclass(frozen=True)
class CheckCase:
    """One call of an op: `op(*args, **kwargs)`; gradients are compared for the args at `grad_args`."""
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad_args: tuple[int, ...] = ()


@dataclass(frozen=True)
class CheckReport:
    op: str
    ok: bool
    worst: float                # Largest relative difference seen (inf: shapes differ or not finite).
    case: str                   # The case and quantity where it was seen.
    tolerance: float            # The tolerance of that quantity.
    error: Optional[str] = None  # The kernel raised instead of returning.

    def describe(self) -> str:
        if self.error is not None:
            return f'the kernel failed on case {self.case}: {self.error}'
        return (f'relative difference {self.worst:.3g} from the reference path in {self.case} '
                f'(tolerance {self.tolerance:g})')


# op name -> (the op function, a function device -> its cases)
_REGISTRY: dict[str, tuple[Callable[..., torch.Tensor], Callable[[torch.device], list[CheckCase]]]] = {}


def register(op: str, function: Callable[..., torch.Tensor], cases: Callable[[torch.device], list[CheckCase]]) -> None:
    """Register the cases that check op's kernel (each op module does this at import)."""
    _REGISTRY[op] = (function, cases)


def registered(op: str) -> bool:
    return op in _REGISTRY


def random_tensor(shape: Sequence[int], seed: int, device: torch.device, dtype: torch.dtype = torch.float32,
                  scale: float = 1.0) -> torch.Tensor:
    """Normal random numbers drawn on the CPU (the same on every device), then moved."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(list(shape), generator=generator, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def relative_difference(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want|| in float64; inf when the shapes differ or got is not finite where want is."""
    if got.shape != want.shape:
        return math.inf
    got, want = got.detach().double(), want.detach().double()
    if not torch.isfinite(got).all():
        return math.inf
    scale = torch.linalg.vector_norm(want).item()
    return torch.linalg.vector_norm(got - want).item() / max(scale, 1e-30)


def _run(function: Callable[..., torch.Tensor], case: CheckCase) -> list[tuple[str, torch.Tensor]]:
    """The output, then the gradient of each of grad_args, for an upstream gradient fixed by the case."""
    args = [a.detach().clone().requires_grad_(i in case.grad_args) if isinstance(a, torch.Tensor) else a
            for i, a in enumerate(case.args)]
    with torch.inference_mode(False), torch.enable_grad():
        out = function(*args, **case.kwargs)
        results = [('output', out)]
        if case.grad_args:
            upstream = random_tensor(out.shape, seed=len(case.name), device=out.device, dtype=out.dtype)
            grads = torch.autograd.grad(out, [args[i] for i in case.grad_args], upstream, allow_unused=True)
            results += [(f'gradient of argument {i}', g) for i, g in zip(case.grad_args, grads) if g is not None]
    return results


def compare(op: str, cases: Sequence[CheckCase], kernel: Callable[..., torch.Tensor],
            reference: Callable[..., torch.Tensor]) -> CheckReport:
    """Run every case through `kernel` and `reference`; ok when every quantity is within its tolerance."""
    worst = CheckReport(op, True, 0.0, '', FORWARD_TOLERANCE)
    for case in cases:
        want = _run(reference, case)
        try:
            got = _run(kernel, case)
        except Exception as e:  # noqa: BLE001 - a kernel that raises is as untrustworthy as a wrong one
            return CheckReport(op, False, math.inf, f"'{case.name}'", 0.0, f'{type(e).__name__}: {e}')
        got_names = [name for name, _ in got]
        for name, expected in want:
            tolerance = _tolerance(name, expected.dtype)
            actual = dict(got).get(name)
            difference = math.inf if actual is None else relative_difference(actual, expected)
            where = f"'{case.name}' ({name})"
            if not difference <= tolerance:
                return CheckReport(op, False, difference, where, tolerance)
            if difference / tolerance > worst.worst / worst.tolerance:
                worst = CheckReport(op, True, difference, where, tolerance)
        if len(got_names) != len(want):
            return CheckReport(op, False, math.inf, f"'{case.name}' (gradients)", 0.0,
                               f'the kernel gave {len(got_names)} results, the reference {len(want)}')
    return worst


def _tolerance(name: str, dtype: torch.dtype) -> float:
    if name != 'output':
        return GRADIENT_TOLERANCE
    return HALF_TOLERANCE if dtype in (torch.float16, torch.bfloat16) else FORWARD_TOLERANCE


def check(op: str, device: torch.device, kernel: Optional[Callable[..., torch.Tensor]] = None,
          reference: Optional[Callable[..., torch.Tensor]] = None) -> CheckReport:
    """Check op's kernel (impl='cuda', unless `kernel` is given) against impl='ref' on `device`."""
    function, cases = _REGISTRY[op]
    kernel = kernel or functools.partial(function, impl='cuda')
    reference = reference or functools.partial(function, impl='ref')
    return compare(op, cases(device), kernel, reference)
