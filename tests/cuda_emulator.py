"""ctypes wrapper of tests/cuda_emulation.cpp: the CUDA kernels' block algorithms run on the CPU.

`build(dir)` compiles the harness with the system C++ compiler (no CUDA, no
torch headers) and returns an `Emulator`. Arrays are float32 NumPy arrays;
inputs may be strided views (negative strides excluded).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / 'renderer' / 'ops' / 'cuda'
HARNESS = Path(__file__).resolve().with_name('cuda_emulation.cpp')
ACT_IDS = {name: i for i, name in enumerate(
    ('linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish'))}

_p = ctypes.c_void_p


def compiler() -> Optional[str]:
    return shutil.which('g++') or shutil.which('c++') or shutil.which('clang++')


def build(out_dir: Path) -> 'Emulator':
    lib = Path(out_dir) / 'afv_cuda_emulation.so'
    cmd = [compiler(), '-O2', '-std=c++17', '-shared', '-fPIC', '-Wall', '-Werror', f'-I{CUDA_DIR}',
           str(HARNESS), '-o', str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return Emulator(lib)


def _ptr(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data


def _filter_dims(f: Optional[np.ndarray]) -> tuple[int, int, int]:
    """(taps_x, taps_y, is_2d), as the binding derives them."""
    if f is None:
        return 1, 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0], 0
    return f.shape[1], f.shape[0], 1


def _strides(a: np.ndarray) -> np.ndarray:
    assert all(s >= 0 for s in a.strides)
    return np.array([s // a.itemsize for s in a.strides], dtype=np.int64)


def _padding(padding) -> list[int]:
    if isinstance(padding, int):
        return [padding] * 4
    padding = [int(v) for v in padding]
    return [padding[0], padding[0], padding[1], padding[1]] if len(padding) == 2 else padding


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, (int, np.integer)) else [int(v[0]), int(v[1])]


class EmulationError(RuntimeError):
    pass


class Emulator:
    STATUS = {1: 'empty output', 2: 'no tile fits in shared memory', 3: 'shared-memory guard overwritten'}

    def __init__(self, lib_path: Path):
        self.lib = ctypes.CDLL(str(lib_path))
        self.lib.emu_filtered_lrelu.restype = ctypes.c_int
        self.lib.emu_filtered_lrelu.argtypes = [_p] * 10 + [ctypes.c_int] * 6 + [_p]
        self.lib.emu_upfirdn2d.restype = ctypes.c_int
        self.lib.emu_upfirdn2d.argtypes = [_p] * 6 + [ctypes.c_float] + [ctypes.c_int] * 5 + [_p]
        self.lib.emu_bias_act.restype = None
        self.lib.emu_bias_act.argtypes = [_p] * 4 + [ctypes.c_longlong] * 2 + [ctypes.c_int] * 2 + \
            [ctypes.c_float] * 3 + [ctypes.c_int]
        self.lib.emu_flrelu_mask_grad.restype = None
        self.lib.emu_flrelu_mask_grad.argtypes = [_p] * 3 + [ctypes.c_longlong] + [ctypes.c_int] * 2 + \
            [ctypes.c_float] * 2

    def _check(self, status: int) -> None:
        if status:
            raise EmulationError(self.STATUS.get(status, f'status {status}'))

    # --- filtered_lrelu --------------------------------------------------------------------

    def filtered_lrelu(self, x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2,
                       clamp=None, flip_filter=False, write_mask=True, threads=256, smem_limit=48 * 1024,
                       max_grid=(65535, 65535), fill=np.nan, mask_fill=0, dry_run=False, force_generic=False):
        """Returns (y, mask or None, info dict); info['fast'] is the fast configuration used (-1: generic)."""
        fu = None if fu is None else np.ascontiguousarray(fu, dtype=np.float32)
        fd = None if fd is None else np.ascontiguousarray(fd, dtype=np.float32)
        b = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
        pad = _padding(padding)
        dims = np.array([*x.shape, up, down, *pad, *_filter_dims(fu), *_filter_dims(fd), int(flip_filter)],
                        dtype=np.int32)
        scalars = np.array([gain, slope, np.inf if clamp is None else clamp], dtype=np.float32)
        info = np.zeros(9, dtype=np.int32)
        xs = _strides(x)
        # The dry run plans with the same filters and mask presence (the plan and the fast path depend on them).
        status = self.lib.emu_filtered_lrelu(_ptr(x), None, _ptr(fu), _ptr(fd), None, 1 if write_mask else None,
                                             _ptr(dims), _ptr(xs), _ptr(xs), _ptr(scalars), threads, smem_limit,
                                             *max_grid, 1, int(force_generic), _ptr(info))
        if status == 1:
            self._check(status)
        keys = ('out_h', 'out_w', 'mid_h', 'mid_w', 'mask_row_bytes', 'tile_w', 'tile_h', 'smem_bytes', 'fast')
        meta = dict(zip(keys, info.tolist()))
        if dry_run:
            meta['fits'] = status == 0
            return None, None, meta
        self._check(status)
        n, c = x.shape[:2]
        y = np.full((n, c, meta['out_h'], meta['out_w']), fill, dtype=np.float32)
        mask = np.full((n, c, meta['mid_h'], meta['mask_row_bytes']), mask_fill, dtype=np.uint8) \
            if write_mask else None
        ys = _strides(y)
        status = self.lib.emu_filtered_lrelu(_ptr(x), _ptr(b), _ptr(fu), _ptr(fd), _ptr(y), _ptr(mask), _ptr(dims),
                                             _ptr(xs), _ptr(ys), _ptr(scalars), threads, smem_limit, *max_grid, 0,
                                             int(force_generic), _ptr(info))
        self._check(status)
        return y, mask, meta

    def mask_grad(self, g: np.ndarray, mask: np.ndarray, gain: float, slope: float) -> np.ndarray:
        g = np.ascontiguousarray(g, dtype=np.float32)
        out = np.empty_like(g)
        n, c, mid_h, mid_w = g.shape
        self.lib.emu_flrelu_mask_grad(_ptr(g), _ptr(out), _ptr(np.ascontiguousarray(mask)), n * c * mid_h, mid_w,
                                      mask.shape[-1], gain, slope)
        return out

    # --- upfirdn2d -------------------------------------------------------------------------

    def upfirdn2d(self, x, f=None, up=1, down=1, padding=0, flip_filter=False, gain=1.0, threads=256,
                  smem_limit=48 * 1024, max_grid=(65535, 65535), fill=np.nan, dry_run=False):
        """Returns (y, info dict)."""
        f = None if f is None else np.ascontiguousarray(f, dtype=np.float32)
        dims = np.array([*x.shape, *_pair(up), *_pair(down), *_padding(padding), *_filter_dims(f), int(flip_filter)],
                        dtype=np.int32)
        info = np.zeros(5, dtype=np.int32)
        xs = _strides(x)
        status = self.lib.emu_upfirdn2d(_ptr(x), None, None, _ptr(dims), _ptr(xs), _ptr(xs), gain, threads,
                                        smem_limit, *max_grid, 1, _ptr(info))
        if status == 1:
            self._check(status)
        meta = dict(zip(('out_h', 'out_w', 'tile_w', 'tile_h', 'smem_bytes'), info.tolist()))
        if dry_run:
            meta['fits'] = status == 0
            return None, meta
        self._check(status)
        y = np.full((x.shape[0], x.shape[1], meta['out_h'], meta['out_w']), fill, dtype=np.float32)
        status = self.lib.emu_upfirdn2d(_ptr(x), _ptr(f), _ptr(y), _ptr(dims), _ptr(xs), _ptr(_strides(y)), gain,
                                        threads, smem_limit, *max_grid, 0, _ptr(info))
        self._check(status)
        return y, meta

    # --- bias_act --------------------------------------------------------------------------

    def bias_act(self, x, b=None, dim=1, act='linear', alpha=0.0, gain=1.0, clamp=None, gy=None):
        """Forward (gy None) or the gradient with respect to x (gy given)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        b = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
        gy = None if gy is None else np.ascontiguousarray(gy, dtype=np.float32)
        out = np.empty_like(x)
        inner = int(np.prod(x.shape[dim + 1:], dtype=np.int64)) if x.ndim else 1
        self.lib.emu_bias_act(_ptr(x), _ptr(b), _ptr(gy), _ptr(out), x.size, inner,
                              x.shape[dim] if x.ndim else 1, ACT_IDS[act], alpha, gain,
                              np.inf if clamp is None else clamp, int(gy is not None))
        return out


def unpack_mask(mask: np.ndarray, mid_w: int) -> np.ndarray:
    """[..., bytes] uint8 -> [..., mid_w] 2-bit codes."""
    cols = np.arange(mid_w)
    return (mask[..., cols // 4] >> (2 * (cols % 4)).astype(np.uint8)) & 3
