"""The CUDA kernels' block algorithms, emulated on the CPU, against the reference path.

tests/cuda_emulation.cpp compiles the kernels' shared headers
(renderer/ops/cuda/*_core.h) with the system C++ compiler and runs every
block of the launch grid, each barrier-delimited stage once per emulated
thread. That checks the kernels' index arithmetic, tiling, shared-memory
layout (NaN-poisoned, with a guard zone), output coverage and the 2-bit
gradient codes without a GPU. Not covered here: the float16 element
conversions, the launch itself and real thread concurrency (test_cuda_ops.py).
Random cases are drawn anew every run (see cuda_cases.py for the seed).
"""

from __future__ import annotations

import importlib
import math

import cuda_cases
import cuda_emulator
import numpy as np
import pytest
import torch

from renderer.ops import bias_act, filtered_lrelu, upfirdn2d

flrelu_module = importlib.import_module('renderer.ops.filtered_lrelu')  # the package exports the function
upfirdn_module = importlib.import_module('renderer.ops.upfirdn2d')

NUM_CASES = 60

pytestmark = pytest.mark.skipif(cuda_emulator.compiler() is None, reason='no C++ compiler to build the emulation')


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    return cuda_emulator.build(tmp_path_factory.mktemp('emulation'))


def _t(a):
    return None if a is None else torch.tensor(a, dtype=torch.float64)


def _ref_flrelu(case):
    return filtered_lrelu(_t(case['x']), _t(case['fu']), _t(case['fd']), _t(case['b']), up=case['up'],
                          down=case['down'], padding=case['padding'], gain=case['gain'], slope=case['slope'],
                          clamp=case['clamp'], flip_filter=case['flip_filter'], impl='ref').numpy()


def _magnitude(case):
    """The op on absolute values, without clamp: a bound on the sums' terms, which sets float32's error."""
    a = lambda v: None if v is None else np.abs(v)  # noqa: E731
    return _ref_flrelu(dict(case, x=a(case['x']), fu=a(case['fu']), fd=a(case['fd']), b=a(case['b']),
                            gain=abs(case['gain']), slope=1.0, clamp=None))


def _emu_flrelu(emu, case, **kwargs):
    return emu.filtered_lrelu(case['x'], case['fu'], case['fd'], case['b'], case['up'], case['down'],
                              case['padding'], case['gain'], case['slope'], case['clamp'], case['flip_filter'],
                              **kwargs)


def _assert_close_f32(got, expected, msg, magnitude=None):
    """float32 agreement: 1e-5 relative to the largest output (or term magnitude, when given)."""
    scale = max(1.0, float(np.abs(expected).max(initial=0)), float(np.abs(magnitude).max(initial=0))
                if magnitude is not None else 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=msg)


def _pre_activation(case):
    """float64 reference of the values fed to the leaky ReLU (after the gain): [N, C, mid_h, mid_w]."""
    x = _t(case['x'])
    if case['b'] is not None:
        x = x + _t(case['b']).reshape(1, -1, 1, 1)
    mid = upfirdn2d(x, _t(case['fu']), up=case['up'], padding=case['padding'], gain=case['up'] ** 2,
                    flip_filter=case['flip_filter'], impl='ref')
    return mid.numpy() * case['gain']


def _reference_codes(case):
    """(codes, near_tie): 2-bit codes from the float64 pre-activation, and where float32 may decide otherwise."""
    v = _pre_activation(case)
    a = np.where(v > 0, v, v * case['slope'])
    clamp = np.inf if case['clamp'] is None else case['clamp']
    codes = (~(v > 0)).astype(np.uint8) | ((np.abs(a) > clamp).astype(np.uint8) << 1)
    tol = 2e-5 * max(1.0, float(np.abs(v).max(initial=0)))
    # Exact zeros (samples no input reaches, or gain 0) are zeros in float32 too: no tie.
    near_tie = (v != 0) & ((np.abs(v) < tol) | (np.abs(np.abs(a) - clamp) < tol))
    return codes, near_tie


def _backward(y, gy, *leaves):
    """y.backward(gy); the reference returns a constant (no grad_fn) when no input reaches any output."""
    if y.requires_grad:
        y.backward(gy)
    for leaf in leaves:
        if leaf is not None and leaf.grad is None:
            leaf.grad = torch.zeros_like(leaf)


def _covered(n, down, taps, out_len):
    """Mid samples inside the footprint of some output along one axis."""
    cover = np.zeros(n, dtype=bool)
    for o in range(out_len):
        cover[o * down:o * down + taps] = True
    return cover


def _taps(f):
    return (1, 1) if f is None else ((f.shape[0], f.shape[0]) if f.ndim == 1 else (f.shape[1], f.shape[0]))


# --- filtered_lrelu forward ---------------------------------------------------------------

@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_filtered_lrelu_matches_reference(emu, index):
    case = cuda_cases.draw_filtered_lrelu(index)
    y, _, info = _emu_flrelu(emu, case, write_mask=bool(index % 2))
    _assert_close_f32(y, _ref_flrelu(case), f'{cuda_cases.describe(case)} plan {info}', _magnitude(case))


@pytest.mark.parametrize('index', range(NUM_CASES // 3), ids=cuda_cases.case_ids(NUM_CASES // 3))
def test_filtered_lrelu_odd_thread_counts_and_small_grids(emu, index):
    """Stages must partition their work over any number of threads; grids smaller than the tile count loop."""
    case = cuda_cases.draw_filtered_lrelu(index, max_size=40)
    rng = cuda_cases.rng_for(index, 11)
    threads = int(rng.choice([1, 7, 32, 100, 256]))
    y, _, info = _emu_flrelu(emu, case, threads=threads, max_grid=(int(rng.integers(1, 3)), int(rng.integers(1, 3))))
    _assert_close_f32(y, _ref_flrelu(case), f'{cuda_cases.describe(case)} threads {threads} plan {info}',
                      _magnitude(case))


@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_codes(emu, index):
    """Every code byte is written; codes match the reference wherever the footprint of an output reaches.

    (Between footprints, when fd has fewer taps than `down`, the kernel may store
    codes of samples nobody uses; their gradient is 0 either way.)
    """
    case = cuda_cases.draw_filtered_lrelu(index)
    y0, mask0, info = _emu_flrelu(emu, case, mask_fill=0)
    _, mask1, _ = _emu_flrelu(emu, case, mask_fill=255)
    np.testing.assert_array_equal(mask0, mask1, err_msg='some code bytes were never written')
    codes = cuda_emulator.unpack_mask(mask0, info['mid_w'])
    expected, near_tie = _reference_codes(case)
    assert codes.shape == expected.shape
    (fdx, fdy) = _taps(case['fd'])
    cover = (_covered(info['mid_h'], case['down'], fdy, info['out_h'])[:, None]
             & _covered(info['mid_w'], case['down'], fdx, info['out_w'])[None, :])
    cover = np.broadcast_to(cover, codes.shape)
    check = cover & ~near_tie
    np.testing.assert_array_equal(codes[check], expected[check], err_msg=cuda_cases.describe(case))
    rows = np.arange(info['mid_h'])[:, None] >= (info['out_h'] - 1) * case['down'] + fdy
    cols = np.arange(info['mid_w'])[None, :] >= (info['out_w'] - 1) * case['down'] + fdx
    beyond = np.broadcast_to(rows | cols, codes.shape)
    assert np.all(codes[beyond] == 0), 'codes beyond the last footprint must be 0'


@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_fast_path(emu, index):
    """The compile-time specialisations (the networks' configurations), forward and codes."""
    case = cuda_cases.draw_filtered_lrelu_fast(index)
    rng = cuda_cases.rng_for(index, 20)
    threads = int(rng.choice([256, 256, 33, 96]))
    y, mask, info = _emu_flrelu(emu, case, threads=threads, max_grid=(int(rng.integers(1, 3)), 65535))
    assert info['fast'] == index % len(cuda_cases.FAST_CONFIGS)
    msg = f'{cuda_cases.describe(case)} threads {threads} plan {info}'
    _assert_close_f32(y, _ref_flrelu(case), msg, _magnitude(case))
    y_generic, mask_generic, info_generic = _emu_flrelu(emu, case, force_generic=True)
    assert info_generic['fast'] == -1
    _assert_close_f32(y, y_generic, msg, _magnitude(case))
    codes, generic_codes = (cuda_emulator.unpack_mask(m, info['mid_w']) for m in (mask, mask_generic))
    _, near_tie = _reference_codes(case)
    np.testing.assert_array_equal(codes[~near_tie], generic_codes[~near_tie], err_msg=msg)
    _, mask_other_fill, _ = _emu_flrelu(emu, case, threads=threads, mask_fill=255)
    np.testing.assert_array_equal(mask, mask_other_fill, err_msg='some code bytes were never written')


def test_filtered_lrelu_noncontiguous_input(emu):
    rng = cuda_cases.rng_for(0, 12)
    big = rng.standard_normal((2, 6, 21, 30)).astype(np.float32)
    x = big[:, ::2, 1::2, ::3]  # strided in every axis
    assert not x.flags['C_CONTIGUOUS']
    case = dict(x=x, fu=rng.standard_normal(8).astype(np.float32),
                fd=rng.standard_normal((5, 5)).astype(np.float32), b=rng.standard_normal(3).astype(np.float32),
                up=2, down=2, padding=[5, 4, 3, 6], gain=math.sqrt(2), slope=0.2, clamp=1.5, flip_filter=False)
    y, _, _ = _emu_flrelu(emu, case)
    _assert_close_f32(y, _ref_flrelu(dict(case, x=np.ascontiguousarray(x))), 'strided x')
    cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last strides
    y, _, _ = _emu_flrelu(emu, dict(case, x=cl))
    _assert_close_f32(y, _ref_flrelu(dict(case, x=np.ascontiguousarray(cl))), 'channels-last x')


@pytest.mark.parametrize('layer', [
    (38, 2, 2, 12, (12,), [9, 8, 9, 8]),             # StyleGAN3-T 1024, layers 0-1 (spatial size cut below)
    (38, 4, 2, 24, (12,), [-6, -9, -6, -9]),          # layers doubling the sampling rate
    (46, 2, 2, 12, (12,), [-11, -12, -11, -12]),      # last critically sampled layer (cropping)
    (36, 2, 2, 12, (12, 12), [11, 10, 11, 10]),       # StyleGAN3-R: radial (2-D) down filter
    (36, 4, 2, 24, (12, 12), [-2, -5, -2, -5]),
    (40, 1, 1, None, None, [0, 0, 0, 0]),            # ToRGB
])
def test_filtered_lrelu_network_layer_types(emu, layer):
    size, up, down, fu_taps, fd_shape, pad = layer
    rng = cuda_cases.rng_for(size + up, 13)
    fu = None if fu_taps is None else (np.hanning(fu_taps + 2)[1:-1] / np.hanning(fu_taps + 2).sum()).astype(np.float32)
    fd = None if fd_shape is None else rng.uniform(0, 1, fd_shape).astype(np.float32)
    if fd is not None:
        fd /= fd.sum()
    case = dict(x=(rng.standard_normal((1, 3, size, size)) * 100).astype(np.float32), fu=fu, fd=fd,
                b=rng.standard_normal(3).astype(np.float32), up=up, down=down, padding=pad,
                gain=1.0 if up == 1 else math.sqrt(2), slope=1.0 if up == 1 else 0.2, clamp=256.0, flip_filter=False)
    y, _, info = _emu_flrelu(emu, case)
    assert np.abs(y).max() <= 256
    assert (info['fast'] >= 0) == (fu is not None), 'network layers with filters take the fast path'
    _assert_close_f32(y, _ref_flrelu(case), f'{layer} plan {info}')


def test_filtered_lrelu_tiles_always_fit(emu):
    """Within the limits that 'auto' routes to the kernel, a tile always fits in 48 KB of shared memory."""
    x = np.zeros((1, 1, 2000, 2000), dtype=np.float32)
    limit = flrelu_module.CUDA_MAX_TAPS
    for up in range(1, flrelu_module.CUDA_MAX_FACTOR + 1):
        for down in range(1, flrelu_module.CUDA_MAX_FACTOR + 1):
            for fu in (np.ones(limit, np.float32), np.ones((limit, limit), np.float32)):
                for fd in (np.ones(limit, np.float32), np.ones((limit, limit), np.float32)):
                    _, _, info = emu.filtered_lrelu(x, fu, fd, up=up, down=down, padding=limit, dry_run=True)
                    assert info['fits'], (up, down, fu.shape, fd.shape, info)


# --- filtered_lrelu backward --------------------------------------------------------------

def _flrelu_params(case):
    return flrelu_module.FlreluParams(case['up'], case['down'], tuple(cuda_emulator._padding(case['padding'])),
                                      case['gain'], case['slope'], case['clamp'], case['flip_filter'])


def _factor(case, codes):
    return np.where(codes & 2, 0.0, np.where(codes & 1, case['gain'] * case['slope'], case['gain']))


def _ref_upfirdn2d(*args, **kwargs):
    return upfirdn2d(*args, impl='ref', **kwargs)


@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_gradient_composition_reference_pieces(index):
    """input_gradient (the CUDA backward's chain) with reference pieces equals autograd of the reference.

    Pure float64: checks the padding, flip and gain algebra of the transposed chain.
    """
    case = cuda_cases.draw_filtered_lrelu(index)
    codes, _ = _reference_codes(case)
    x = _t(case['x']).requires_grad_(True)
    b = None if case['b'] is None else _t(case['b']).requires_grad_(True)
    kwargs = {k: case[k] for k in ('up', 'down', 'padding', 'gain', 'slope', 'clamp', 'flip_filter')}
    y = filtered_lrelu(x, _t(case['fu']), _t(case['fd']), b, impl='ref', **kwargs)
    gy = torch.tensor(cuda_cases.rng_for(index, 15).standard_normal(y.shape))
    _backward(y, gy, x, b)
    factor = torch.tensor(_factor(case, codes))
    got = flrelu_module.input_gradient(gy, _t(case['fu']), _t(case['fd']), lambda g: g * factor, _flrelu_params(case),
                                       case['x'].shape[2:], upfirdn=_ref_upfirdn2d)
    torch.testing.assert_close(got, x.grad, rtol=1e-10, atol=1e-10)
    if b is not None:
        torch.testing.assert_close(got.sum(dim=[0, 2, 3]), b.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_gradient_composition(emu, index):
    """The backward chain run with the emulated kernels (upfirdn2d, code-based activation gradient).

    Expected: the same chain in float64 with the reference codes; at near-ties
    (a pre-activation within float32 noise of 0 or of the clamp) either code
    is a correct gradient, so the kernel's own code is taken there.
    """
    case = cuda_cases.draw_filtered_lrelu(index)
    _, mask, info = _emu_flrelu(emu, case)
    codes, near_tie = _reference_codes(case)
    kernel_codes = cuda_emulator.unpack_mask(mask, info['mid_w'])
    codes = np.where(near_tie, kernel_codes, codes)
    gy = cuda_cases.rng_for(index, 14).standard_normal((*case['x'].shape[:2], info['out_h'], info['out_w']))
    p = _flrelu_params(case)
    factor = torch.tensor(_factor(case, codes))
    expected = flrelu_module.input_gradient(torch.tensor(gy), _t(case['fu']), _t(case['fd']), lambda g: g * factor, p,
                                            case['x'].shape[2:], upfirdn=_ref_upfirdn2d).numpy()

    def emu_upfirdn(g, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
        out, _ = emu.upfirdn2d(g.numpy().astype(np.float32), None if f is None else f.numpy(), up, down, padding,
                               flip_filter, gain)
        return torch.tensor(out)

    def emu_act_grad(g):
        return torch.tensor(emu.mask_grad(g.numpy(), mask, case['gain'], case['slope']))

    f32 = lambda a: None if a is None else torch.tensor(a, dtype=torch.float32)  # noqa: E731
    got = flrelu_module.input_gradient(torch.tensor(gy, dtype=torch.float32), f32(case['fu']), f32(case['fd']),
                                       emu_act_grad, p, case['x'].shape[2:], upfirdn=emu_upfirdn).numpy()
    a = lambda v: None if v is None else np.abs(v)  # noqa: E731
    magnitude = flrelu_module.input_gradient(torch.tensor(np.abs(gy)), _t(a(case['fu'])), _t(a(case['fd'])),
                                             lambda g: g * abs(case['gain']), p, case['x'].shape[2:],
                                             upfirdn=_ref_upfirdn2d).numpy()
    _assert_close_f32(got, expected, cuda_cases.describe(case), magnitude)


def test_mask_grad_codes(emu):
    g = np.arange(2 * 3 * 5, dtype=np.float32).reshape(1, 2, 3, 5) + 1
    codes = np.array([0, 1, 2, 3, 1] * 6, dtype=np.uint8).reshape(1, 2, 3, 5)
    mask = np.zeros((1, 2, 3, 2), dtype=np.uint8)
    for col in range(5):
        mask[..., col // 4] |= codes[..., col] << (2 * (col % 4))
    got = emu.mask_grad(g, mask, 1.5, 0.25)
    factor = np.array([1.5, 1.5 * 0.25, 0, 0])[codes]
    np.testing.assert_array_equal(got, g * factor.astype(np.float32))


# --- upfirdn2d ----------------------------------------------------------------------------

def _ref_upfirdn(case, x=None):
    return upfirdn2d(_t(case['x'] if x is None else x), _t(case['f']), up=case['up'], down=case['down'],
                     padding=case['padding'], flip_filter=case['flip_filter'], gain=case['gain'], impl='ref').numpy()


@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_upfirdn2d_matches_reference(emu, index):
    case = cuda_cases.draw_upfirdn2d(index)
    rng = cuda_cases.rng_for(index, 16)
    threads = int(rng.choice([256, 256, 7, 64]))
    y, info = emu.upfirdn2d(case['x'], case['f'], case['up'], case['down'], case['padding'], case['flip_filter'],
                            case['gain'], threads=threads, max_grid=(int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    _assert_close_f32(y, _ref_upfirdn(case), f'{cuda_cases.describe(case)} threads {threads} plan {info}')


def test_upfirdn2d_noncontiguous_input(emu):
    rng = cuda_cases.rng_for(0, 17)
    big = rng.standard_normal((3, 4, 17, 23)).astype(np.float32)
    x = big[::2, 1:, ::2, 3::2]
    case = dict(x=x, f=rng.standard_normal(5).astype(np.float32), up=[2, 1], down=[1, 2], padding=[3, 1, -1, 2],
                flip_filter=True, gain=2.0)
    y, _ = emu.upfirdn2d(x, case['f'], case['up'], case['down'], case['padding'], True, 2.0)
    _assert_close_f32(y, _ref_upfirdn(case, np.ascontiguousarray(x)), 'strided x')


def test_upfirdn2d_tiles_always_fit(emu):
    x = np.zeros((1, 1, 3000, 3000), dtype=np.float32)
    taps = upfirdn_module.CUDA_MAX_TAPS
    for factor in range(1, upfirdn_module.CUDA_MAX_FACTOR + 1):
        for f in (np.ones(taps, np.float32), np.ones((taps, taps), np.float32)):
            for up, down in ((factor, 1), (1, factor), (factor, factor)):
                _, info = emu.upfirdn2d(x, f, up, down, padding=taps, dry_run=True)
                assert info['fits'], (up, down, f.shape, info)


@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_upfirdn2d_transposed_params_give_the_gradient(index):
    """transposed_params (used by the CUDA backward) reproduces autograd of the reference path."""
    case = cuda_cases.draw_upfirdn2d(index)
    x = _t(case['x']).requires_grad_(True)
    f = _t(case['f'])
    y = upfirdn2d(x, f, up=case['up'], down=case['down'], padding=case['padding'], flip_filter=case['flip_filter'],
                  gain=case['gain'], impl='ref')
    gy = torch.tensor(cuda_cases.rng_for(index, 18).standard_normal(y.shape))
    _backward(y, gy, x)
    p = upfirdn_module.UpfirdnParams(tuple(cuda_emulator._pair(case['up'])), tuple(cuda_emulator._pair(case['down'])),
                                     tuple(cuda_emulator._padding(case['padding'])), case['flip_filter'], case['gain'])
    q = upfirdn_module.transposed_params(p, x.shape[2:], y.shape[2:], _taps(case['f']))
    got = upfirdn2d(gy, f, up=q.up, down=q.down, padding=q.pad, flip_filter=q.flip, gain=q.gain, impl='ref')
    torch.testing.assert_close(got, x.grad, rtol=1e-10, atol=1e-10)


# --- bias_act -----------------------------------------------------------------------------

@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_bias_act_forward_and_gradient(emu, index):
    case = cuda_cases.draw_bias_act(index)
    from renderer.ops.bias_act import ACTIVATIONS
    spec = ACTIVATIONS[case['act']]
    alpha = spec.def_alpha if case['alpha'] is None else case['alpha']
    gain = spec.def_gain if case['gain'] is None else case['gain']
    x = _t(case['x']).requires_grad_(True)
    y = bias_act(x, _t(case['b']), dim=case['dim'], act=case['act'], alpha=alpha, gain=gain, clamp=case['clamp'],
                 impl='ref')
    gy = cuda_cases.rng_for(index, 19).standard_normal(y.shape)
    _backward(y, torch.tensor(gy), x)
    got = emu.bias_act(case['x'], case['b'], case['dim'], case['act'], alpha, gain, case['clamp'])
    _assert_close_f32(got, y.detach().numpy(), cuda_cases.describe(case))
    got_grad = emu.bias_act(case['x'], case['b'], case['dim'], case['act'], alpha, gain, case['clamp'],
                            gy=gy.astype(np.float32))
    clamp = np.inf if case['clamp'] is None else case['clamp']
    tie = np.abs(np.abs(y.detach().numpy()) - clamp) < 1e-4  # at the clamp either gradient is right
    _assert_close_f32(np.where(tie, 0, got_grad), np.where(tie, 0, x.grad.numpy()), cuda_cases.describe(case))
