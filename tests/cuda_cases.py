"""Random cases over the parameter space of the resampling ops, drawn anew every run.

The base seed comes from $AFV_TEST_SEED when set, else from the clock; it is
part of every test id (`seed<base>+<index>`), so a failure is reproduced with
`AFV_TEST_SEED=<base> python -m pytest -k 'seed<base>+<index>'`.
Shared by the CPU emulation tests and the GPU tests.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

BASE_SEED = int(os.environ.get('AFV_TEST_SEED', time.time_ns() % 1_000_000))


def case_ids(count: int) -> list[str]:
    return [f'seed{BASE_SEED}+{i}' for i in range(count)]


def rng_for(index: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([BASE_SEED, salt, index])


def random_filter(rng, max_taps=12, allow_none=True):
    kinds = ['1d', '1d', '2d'] + (['none'] if allow_none else [])
    kind = rng.choice(kinds)
    if kind == 'none':
        return None
    taps = int(rng.integers(1, max_taps + 1))
    if kind == '1d':
        return rng.standard_normal(taps).astype(np.float32)
    return rng.standard_normal((taps, int(rng.integers(1, max_taps + 1)))).astype(np.float32) \
        if rng.random() < 0.3 else rng.standard_normal((taps, taps)).astype(np.float32)


def _taps(f):
    """(taps_x, taps_y)."""
    if f is None:
        return 1, 1
    return (f.shape[0], f.shape[0]) if f.ndim == 1 else (f.shape[1], f.shape[0])


def draw_filtered_lrelu(index: int, max_size: int = 20, factors=(1, 2, 3, 4), max_taps: int = 12) -> dict:
    """A valid filtered_lrelu case (non-empty output). Filters may be non-square 2-D."""
    rng = rng_for(index, 1)
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, max_size + 1)), int(rng.integers(1, max_size + 1))
        fu = random_filter(rng, max_taps)
        fd = random_filter(rng, max_taps)
        up, down = int(rng.choice(factors)), int(rng.choice(factors))
        pad = [int(v) for v in rng.integers(-4, 13, size=4)]
        (fux, fuy), (fdx, fdy) = _taps(fu), _taps(fd)
        out_w = (w * up + pad[0] + pad[1] - (fux - 1) - (fdx - 1) + (down - 1)) // down
        out_h = (h * up + pad[2] + pad[3] - (fuy - 1) - (fdy - 1) + (down - 1)) // down
        if out_w < 1 or out_h < 1:
            continue
        return dict(
            x=(rng.standard_normal((n, c, h, w)) * 2).astype(np.float32),
            fu=fu, fd=fd,
            b=rng.standard_normal(c).astype(np.float32) if rng.random() < 0.7 else None,
            up=up, down=down, padding=pad,
            gain=float(rng.choice([1.0, math.sqrt(2), 0.7, 2.5, -0.8, 0.0])),
            slope=float(rng.choice([0.0, 0.2, 1.0, 0.45])),
            clamp=None if rng.random() < 0.4 else float(rng.choice([0.0, 0.05, 0.3, 1.0, 4.0])),
            flip_filter=bool(rng.integers(2)),
        )


FAST_CONFIGS = ((2, 2, 12, False), (4, 2, 24, False), (2, 2, 12, True), (4, 2, 24, True))  # up, down, fu taps, fd 2-D


def draw_filtered_lrelu_fast(index: int, max_size: int = 40) -> dict:
    """A case in one of the kernel's compile-time configurations (fd: 12 taps), other parameters random."""
    rng = rng_for(index, 4)
    up, down, fu_taps, fd_2d = FAST_CONFIGS[index % len(FAST_CONFIGS)]
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        h, w = int(rng.integers(1, max_size + 1)), int(rng.integers(1, max_size + 1))
        pad = [int(v) for v in rng.integers(-12, 14, size=4)]
        out_w = (w * up + pad[0] + pad[1] - (fu_taps - 1) - 11 + (down - 1)) // down
        out_h = (h * up + pad[2] + pad[3] - (fu_taps - 1) - 11 + (down - 1)) // down
        if out_w < 1 or out_h < 1:
            continue
        return dict(
            x=(rng.standard_normal((n, c, h, w)) * 2).astype(np.float32),
            fu=rng.standard_normal(fu_taps).astype(np.float32),
            fd=rng.standard_normal((12, 12) if fd_2d else 12).astype(np.float32),
            b=rng.standard_normal(c).astype(np.float32) if rng.random() < 0.7 else None,
            up=up, down=down, padding=pad,
            gain=float(rng.choice([1.0, math.sqrt(2), -0.8])),
            slope=float(rng.choice([0.0, 0.2, 1.0])),
            clamp=None if rng.random() < 0.4 else float(rng.choice([0.0, 0.3, 4.0])),
            flip_filter=bool(rng.integers(2)),
        )


def draw_upfirdn2d(index: int, max_size: int = 20, factors=(1, 2, 3, 4), max_taps: int = 12) -> dict:
    """A valid upfirdn2d case (non-empty output), factors and padding per axis."""
    rng = rng_for(index, 2)
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, max_size + 1)), int(rng.integers(1, max_size + 1))
        f = random_filter(rng, max_taps)
        up = [int(v) for v in rng.choice(factors, size=2)]
        down = [int(v) for v in rng.choice(factors, size=2)]
        pad = [int(v) for v in rng.integers(-4, 13, size=4)]
        fx, fy = _taps(f)
        out_w = (w * up[0] + pad[0] + pad[1] - fx + down[0]) // down[0]
        out_h = (h * up[1] + pad[2] + pad[3] - fy + down[1]) // down[1]
        if out_w < 1 or out_h < 1:
            continue
        return dict(x=rng.standard_normal((n, c, h, w)).astype(np.float32), f=f, up=up, down=down, padding=pad,
                    flip_filter=bool(rng.integers(2)), gain=float(rng.choice([1.0, 4.0, 0.5, -2.0])))


ACT_NAMES = ('linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish')


def draw_bias_act(index: int) -> dict:
    rng = rng_for(index, 3)
    ndim = int(rng.integers(1, 5))
    shape = [int(v) for v in rng.integers(1, 7, size=ndim)]
    dim = int(rng.integers(0, ndim))
    return dict(x=(rng.standard_normal(shape) * 3).astype(np.float32),
                b=rng.standard_normal(shape[dim]).astype(np.float32) if rng.random() < 0.7 else None,
                dim=dim, act=str(rng.choice(ACT_NAMES)),
                alpha=None if rng.random() < 0.5 else float(rng.uniform(0, 0.5)),
                gain=None if rng.random() < 0.5 else float(rng.choice([1.0, 0.5, 2.0, -1.0])),
                clamp=None if rng.random() < 0.5 else float(rng.choice([0.0, 0.3, 1.0, 3.0])))


def describe(case: dict) -> str:
    parts = []
    for key, value in case.items():
        if isinstance(value, np.ndarray):
            parts.append(f'{key}{list(value.shape)}')
        else:
            parts.append(f'{key}={value}')
    return f'seed {BASE_SEED}: ' + ' '.join(parts)
