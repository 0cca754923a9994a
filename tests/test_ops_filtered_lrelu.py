"""filtered_lrelu (impl='ref') against the independent NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_ops as ref
import torch

from renderer.ops import filtered_lrelu, upfirdn2d

NUM_CASES = 50


def _random_filter(rng):
    kind = rng.choice(['none', '1d', '1d', '2d'])
    if kind == 'none':
        return None
    taps = int(rng.integers(1, 9))
    if kind == '1d':
        return rng.standard_normal(taps)
    return rng.standard_normal((taps, taps))


def _random_padding(rng):
    form = rng.integers(3)
    if form == 0:
        return int(rng.integers(-3, 8))
    if form == 1:
        return [int(v) for v in rng.integers(-3, 8, size=2)]
    return [int(v) for v in rng.integers(-3, 8, size=4)]


def _taps(f):
    return (1, 1) if f is None else (f.shape[-1], f.shape[0])


def draw_case(index):
    """A random valid filtered_lrelu case; redraws until the output is non-empty."""
    rng = np.random.default_rng(2000 + index)
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        fu, fd = _random_filter(rng), _random_filter(rng)
        up, down = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        padding = _random_padding(rng)
        (fux, fuy), (fdx, fdy) = _taps(fu), _taps(fd)
        x0, x1, y0, y1 = ref.as_padding(padding)
        out_w = (w * up + x0 + x1 - (fux - 1) - (fdx - 1) + (down - 1)) // down
        out_h = (h * up + y0 + y1 - (fuy - 1) - (fdy - 1) + (down - 1)) // down
        if out_w < 1 or out_h < 1:
            continue
        x = rng.standard_normal((n, c, h, w))
        b = rng.standard_normal(c) if rng.random() < 0.6 else None
        gain = float(rng.choice([1.0, math.sqrt(2), 0.7, 2.5, -0.8]))
        slope = float(rng.choice([0.0, 0.2, 1.0, 0.45]))
        clamp = None if rng.random() < 0.4 else float(rng.choice([0.05, 0.3, 1.0]))
        flip = bool(rng.integers(2))
        return dict(x=x, fu=fu, fd=fd, b=b, up=up, down=down, padding=padding, gain=gain,
                    slope=slope, clamp=clamp, flip_filter=flip)


def _describe(case):
    shape = lambda a: None if a is None else a.shape  # noqa: E731
    return (f"x {case['x'].shape} fu {shape(case['fu'])} fd {shape(case['fd'])} b {shape(case['b'])} "
            f"up {case['up']} down {case['down']} pad {case['padding']} gain {case['gain']} "
            f"slope {case['slope']} clamp {case['clamp']} flip {case['flip_filter']}")


def _run(case, dtype):
    fdtype = torch.float64 if dtype == torch.float64 else torch.float32
    t = lambda a, dt: None if a is None else torch.tensor(a, dtype=dt)  # noqa: E731
    x, b = t(case['x'], dtype), t(case['b'], dtype)
    fu, fd = t(case['fu'], fdtype), t(case['fd'], fdtype)
    kwargs = {k: case[k] for k in ('up', 'down', 'padding', 'gain', 'slope', 'clamp', 'flip_filter')}
    y = filtered_lrelu(x, fu, fd, b, impl='ref', **kwargs)
    expected = ref.filtered_lrelu(x.double().numpy(), None if fu is None else fu.double().numpy(),
                                  None if fd is None else fd.double().numpy(),
                                  None if b is None else b.double().numpy(), **kwargs)
    assert y.dtype == dtype
    assert tuple(y.shape) == expected.shape, _describe(case)
    return y.double().numpy(), expected


@pytest.mark.parametrize('index', range(NUM_CASES))
def test_matches_reference_float64(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=_describe(case))


@pytest.mark.parametrize('index', range(0, NUM_CASES, 3))
def test_matches_reference_float32(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float32)
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5 * scale, err_msg=_describe(case))


@pytest.mark.parametrize('index', range(0, NUM_CASES, 5))
def test_matches_reference_float16(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float16)
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2 * scale, err_msg=_describe(case))


def test_case_generator_covers_the_space():
    cases = [draw_case(i) for i in range(NUM_CASES)]
    assert {c['slope'] for c in cases} == {0.0, 0.2, 1.0, 0.45}
    assert any(c['gain'] < 0 for c in cases)
    assert {c['up'] for c in cases} == {1, 2, 3, 4} and {c['down'] for c in cases} == {1, 2, 3, 4}
    assert any(c['clamp'] is None for c in cases)
    pads = [ref.as_padding(c['padding']) for c in cases]
    assert any(min(p) < 0 for p in pads)
    assert {c['flip_filter'] for c in cases} == {False, True}
    assert any(c['fu'] is not None and c['fu'].ndim == 2 for c in cases)
    assert any(c['fd'] is not None and c['fd'].ndim == 1 for c in cases)
    assert any(c['fu'] is None for c in cases) and any(c['b'] is None for c in cases)
    # The clamp actually clips in a good share of the clamped cases.
    clipped = 0
    for c in cases:
        if c['clamp'] is not None:
            pre = ref.filtered_lrelu_pre(c['x'], c['fu'], c['b'], c['up'], c['padding'], c['gain'], c['flip_filter'])
            pre = np.where(pre >= 0, pre, pre * c['slope'])
            clipped += bool(np.any(np.abs(pre) > c['clamp']))
    assert clipped >= 10


def test_pipeline_equals_composition_of_upfirdn2d():
    """With linear activation and no clamp the op is two upfirdn2d calls and a gain."""
    rng = np.random.default_rng(11)
    x = torch.tensor(rng.standard_normal((1, 2, 5, 6)))
    b = torch.tensor(rng.standard_normal(2))
    fu, fd = torch.tensor(rng.standard_normal(6)), torch.tensor(rng.standard_normal(4))
    y = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[3, 2, 1, 4], gain=1.3, slope=1, impl='ref')
    mid = upfirdn2d(x + b.reshape(1, -1, 1, 1), fu, up=2, padding=[3, 2, 1, 4], gain=4, impl='ref')
    expected = upfirdn2d(mid * 1.3, fd, down=2, impl='ref')
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


def test_stylegan3_layer_shapes():
    """A spec-style layer: padding from the section 2 formula gives the requested output size."""
    in_size, out_size, k, up, down = 36, 36, 3, 2, 2
    up_taps, down_taps = 12, 12
    total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
    lo = (total + up) // 2
    pad = [lo, total - lo, lo, total - lo]
    x = torch.randn(1, 2, in_size + k - 1, in_size + k - 1, generator=torch.Generator().manual_seed(0))
    fu = torch.ones(up_taps) / up_taps
    fd = torch.ones(down_taps) / down_taps
    y = filtered_lrelu(x, fu, fd, up=up, down=down, padding=pad, clamp=256, impl='ref')
    assert y.shape == (1, 2, out_size, out_size)


# --- gradients ----------------------------------------------------------------------------

def _gradcheck_inputs(seed, clamp):
    """Draw inputs whose pre-activation values stay clear of 0 and of +-clamp."""
    fu = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=torch.float64) / 2
    fd = torch.tensor([[0.1, 0.3], [0.2, 0.4]], dtype=torch.float64)
    kwargs = dict(up=2, down=2, padding=[2, 1, 1, 2], gain=1.2, slope=0.3, clamp=clamp)
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        x = rng.standard_normal((1, 2, 3, 4))
        b = rng.standard_normal(2)
        pre = ref.filtered_lrelu_pre(x, fu.numpy(), b, kwargs['up'], kwargs['padding'], kwargs['gain'])
        act = np.where(pre >= 0, pre, pre * kwargs['slope'])
        # Padding zeros give exact 0 pre-activations with zero gradient: ignore those
        # (leaky ReLU of an exact, input-independent 0 is smooth enough for gradcheck).
        moving = np.abs(pre) > 1e-12
        margin_zero = np.abs(pre[moving]).min()
        margin_clamp = np.inf if clamp is None else np.abs(np.abs(act) - clamp).min()
        clipped = clamp is not None and np.any(np.abs(act) > clamp)
        if margin_zero > 1e-3 and margin_clamp > 1e-3 and (clamp is None or clipped):
            return torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True), fu, fd, kwargs
    raise AssertionError('no suitable seed')


@pytest.mark.parametrize('clamp', [None, 0.6])
def test_gradcheck(clamp):
    x, b, fu, fd, kwargs = _gradcheck_inputs(0, clamp)
    assert torch.autograd.gradcheck(lambda xx, bb: filtered_lrelu(xx, fu, fd, bb, impl='ref', **kwargs), (x, b))


def test_gradcheck_no_filters():
    rng = np.random.default_rng(12)
    x = torch.tensor(rng.uniform(0.1, 1.0, (1, 2, 3, 3)) * rng.choice([-1, 1], (1, 2, 3, 3)), requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda xx, bb: filtered_lrelu(xx, b=bb, slope=0.2, impl='ref'), (x, b))


# --- aliasing and layouts -----------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
@pytest.mark.parametrize('variant', ['identity', 'bias', 'filters', 'gain0'])
def test_does_not_modify_input(dtype, layout, variant):
    rng = np.random.default_rng(13)
    x = torch.tensor(rng.standard_normal((2, 3, 4, 5)) * 3, dtype=dtype)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    b = torch.tensor(rng.standard_normal(3), dtype=dtype) if variant == 'bias' else None
    fu = torch.ones(2, dtype=dtype) / 2 if variant == 'filters' else None
    fd = torch.ones(2, 2, dtype=dtype) / 4 if variant == 'filters' else None
    gain = 0.0 if variant == 'gain0' else 1.0
    before = x.clone()
    y = filtered_lrelu(x, fu, fd, b, up=1, down=1, gain=gain, slope=0.2, clamp=0.5, impl='ref')
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    y.add_(1)  # the result must not alias the input
    torch.testing.assert_close(x, before, rtol=0, atol=0)


def test_layouts_give_same_result():
    rng = np.random.default_rng(14)
    big = torch.tensor(rng.standard_normal((2, 3, 9, 12)))
    x = big[:, :, ::2, 1::2]
    assert not x.is_contiguous()
    b = torch.tensor(rng.standard_normal(6))[::2]
    fu, fd = torch.tensor(rng.standard_normal(4)), torch.tensor(rng.standard_normal((3, 3)))
    kwargs = dict(up=2, down=2, padding=[3, 2, 2, 3], gain=1.4, slope=0.2, clamp=0.8, impl='ref')
    expected = filtered_lrelu(x.contiguous(), fu, fd, b.contiguous(), **kwargs)
    torch.testing.assert_close(filtered_lrelu(x, fu, fd, b, **kwargs), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(filtered_lrelu(x.contiguous(memory_format=torch.channels_last), fu, fd, b, **kwargs),
                               expected, rtol=1e-12, atol=1e-12)
    fu_nc = torch.tensor(rng.standard_normal(8))[::2]
    torch.testing.assert_close(filtered_lrelu(x, fu_nc, fd, b, **kwargs),
                               filtered_lrelu(x.contiguous(), fu_nc.contiguous(), fd, b, **kwargs),
                               rtol=1e-12, atol=1e-12)


# --- errors -------------------------------------------------------------------------------

X = torch.zeros(1, 2, 4, 4)


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(x=torch.zeros(2, 4, 4)), ValueError, r'\bx\b'),
    (dict(x=np.zeros((1, 2, 4, 4))), TypeError, r'\bx\b'),
    (dict(up=1.5), ValueError, r'\bup\b'),
    (dict(down=1.5), ValueError, r'\bdown\b'),
    (dict(up=0), ValueError, r'\bup\b'),
    (dict(down=-1), ValueError, r'\bdown\b'),
    (dict(up=[1, 2]), ValueError, r'\bup\b'),
    (dict(padding=[1, 2, 3]), ValueError, r'\bpadding\b'),
    (dict(fu=torch.ones(1, 2, 2)), ValueError, r'\bfu\b'),
    (dict(fd=torch.ones(2, 2, 2)), ValueError, r'\bfd\b'),
    (dict(fu=torch.ones(5), fd=torch.ones(2)), ValueError, r'filter'),
    (dict(fu=torch.ones(3), padding=[-2, 0, 0, 0]), ValueError, r'filter'),
    (dict(b=torch.ones(3)), ValueError, r'\bb\b'),
    (dict(clamp=-1.0), ValueError, r'\bclamp\b'),
    (dict(impl='bogus'), ValueError, r'\bimpl\b'),
])
def test_bad_input_raises(kwargs, exc, match):
    args = dict(x=X, impl='ref')
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        filtered_lrelu(**args)


def test_cuda_impl_on_cpu_tensor_raises():
    with pytest.raises(RuntimeError, match='cuda'):
        filtered_lrelu(X, impl='cuda')
