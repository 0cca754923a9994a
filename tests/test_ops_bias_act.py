"""bias_act (impl='ref') against the independent NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_ops as ref
import torch

from renderer.ops import bias_act

NUM_CASES = 60
ACTS = sorted(ref.ACTIVATIONS)


def draw_case(index):
    rng = np.random.default_rng(3000 + index)
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, size=ndim))
    dim = int(rng.integers(-ndim, ndim))
    act = ACTS[index % len(ACTS)]  # every activation appears several times
    b = rng.standard_normal(shape[dim]) if rng.random() < 0.7 else None
    alpha = None if rng.random() < 0.5 else float(rng.choice([0.0, 0.1, 0.5, 1.0]))
    gain = None if rng.random() < 0.5 else float(rng.choice([1.0, math.sqrt(2), 0.3, 2.0]))
    clamp = None if rng.random() < 0.4 else float(rng.choice([0.1, 0.5, 1.0]))
    x = rng.standard_normal(shape) * 2
    return dict(x=x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def _describe(case):
    b = case['b']
    return (f"x {case['x'].shape} b {None if b is None else b.shape} dim {case['dim']} act {case['act']} "
            f"alpha {case['alpha']} gain {case['gain']} clamp {case['clamp']}")


def _run(case, dtype):
    x = torch.tensor(case['x'], dtype=dtype)
    b = None if case['b'] is None else torch.tensor(case['b'], dtype=dtype)
    kwargs = {k: case[k] for k in ('dim', 'act', 'alpha', 'gain', 'clamp')}
    y = bias_act(x, b, impl='ref', **kwargs)
    expected = ref.bias_act(x.double().numpy(), None if b is None else b.double().numpy(), **kwargs)
    assert y.dtype == dtype
    assert tuple(y.shape) == expected.shape
    return y.double().numpy(), expected


@pytest.mark.parametrize('index', range(NUM_CASES))
def test_matches_reference_float64(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=_describe(case))


@pytest.mark.parametrize('index', range(0, NUM_CASES, 2))
def test_matches_reference_float32(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=_describe(case))


@pytest.mark.parametrize('index', range(0, NUM_CASES, 4))
def test_matches_reference_float16(index):
    case = draw_case(index)
    got, expected = _run(case, torch.float16)
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2, err_msg=_describe(case))


def test_case_generator_covers_the_space():
    cases = [draw_case(i) for i in range(NUM_CASES)]
    assert {c['act'] for c in cases} == set(ACTS)
    assert any(c['dim'] < 0 and c['b'] is not None for c in cases)
    assert any(c['b'] is None for c in cases)
    assert any(c['clamp'] is not None and np.abs(ref.bias_act(**{k: c[k] for k in c if k != 'clamp'})).max()
               > c['clamp'] for c in cases)


@pytest.mark.parametrize('act,alpha,gain', [
    ('linear', 0, 1), ('relu', 0, math.sqrt(2)), ('lrelu', 0.2, math.sqrt(2)), ('tanh', 0, 1),
    ('sigmoid', 0, 1), ('elu', 0, 1), ('selu', 0, 1), ('softplus', 0, 1), ('swish', 0, math.sqrt(2)),
])
def test_default_alpha_and_gain(act, alpha, gain):
    x = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(1, 13)
    torch.testing.assert_close(bias_act(x, act=act, impl='ref'),
                               bias_act(x, act=act, alpha=alpha, gain=gain, impl='ref'), rtol=0, atol=0)


def test_known_values():
    x = torch.tensor([[-2.0, -0.5, 0.0, 1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([0.5], dtype=torch.float64)
    y = bias_act(x, b, dim=0, act='lrelu', clamp=2.0, impl='ref')
    s = math.sqrt(2)
    expected = torch.tensor([[-1.5 * 0.2 * s, 0.0, 0.5 * s, 2.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('act', ACTS)
def test_gradcheck(act):
    rng = np.random.default_rng(15)
    # |x + b| >= 0.2 keeps lrelu / relu away from their kinks; the clamp 1.9 sits away from
    # every |output| (checked below) so both sides of it are exercised smoothly.
    base = rng.uniform(0.3, 1.5, (2, 3, 2)) * rng.choice([-1, 1], (2, 3, 2))
    b = np.array([0.05, -0.1, 0.08])
    x = torch.tensor(base - b.reshape(1, 3, 1) + rng.uniform(-0.05, 0.05, (2, 3, 2)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    clamp = 1.9 if act in ('linear', 'lrelu', 'relu', 'selu', 'softplus', 'swish') else None
    if clamp is not None:
        out = ref.bias_act(x.detach().numpy(), b, act=act, gain=1.7)
        assert np.abs(np.abs(out) - clamp).min() > 1e-3
    assert torch.autograd.gradcheck(
        lambda xx, bb: bias_act(xx, bb, act=act, gain=1.7, clamp=clamp, impl='ref'), (x, bt))


@pytest.mark.parametrize('act', ['linear', 'lrelu'])
@pytest.mark.parametrize('with_bias', [False, True])
def test_does_not_modify_input(act, with_bias):
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)) * 3
    b = torch.ones(3) if with_bias else None
    before = x.clone()
    bias_act(x, b, act=act, clamp=0.5, impl='ref')
    bias_act(x, b, act=act, gain=2.0, impl='ref')
    torch.testing.assert_close(x, before, rtol=0, atol=0)


def test_layouts_give_same_result():
    rng = np.random.default_rng(16)
    big = torch.tensor(rng.standard_normal((2, 6, 5, 8)))
    x = big[:, ::2, :, 1::2]
    assert not x.is_contiguous()
    b = torch.tensor(rng.standard_normal(3))
    kwargs = dict(act='lrelu', clamp=0.7, impl='ref')
    expected = bias_act(x.contiguous(), b, **kwargs)
    torch.testing.assert_close(bias_act(x, b, **kwargs), expected, rtol=0, atol=0)
    torch.testing.assert_close(bias_act(x.contiguous(memory_format=torch.channels_last), b, **kwargs),
                               expected, rtol=0, atol=0)


X = torch.zeros(2, 3, 4)


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(x=[1.0, 2.0]), TypeError, r'\bx\b'),
    (dict(x=torch.zeros(2, 3, dtype=torch.int64)), TypeError, r'\bx\b'),
    (dict(act='bogus'), ValueError, r'\bact\b'),
    (dict(clamp=-1.0), ValueError, r'\bclamp\b'),
    (dict(b=torch.zeros(4)), ValueError, r'\bb\b'),
    (dict(b=torch.zeros(3, 1)), ValueError, r'\bb\b'),
    (dict(b=torch.zeros(3), dim=3), ValueError, r'\bdim\b'),
    (dict(impl='bogus'), ValueError, r'\bimpl\b'),
])
def test_bad_input_raises(kwargs, exc, match):
    args = dict(x=X)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        bias_act(**args)


def test_cuda_impl_on_cpu_tensor_raises():
    with pytest.raises(RuntimeError, match='cuda'):
        bias_act(X, impl='cuda')
