"""CUDA kernels against the reference path, on a GPU (skipped without one).

Random cases are drawn anew every run over the spec's parameter space (seed
in the test ids, see cuda_cases.py): odd sizes, negative padding, clamp,
every filter form, tiny and large tensors, non-contiguous inputs. The
expected values are the reference path in float64 on the same device, from
the same (rounded) inputs. Tolerances: float32 1e-5 and float16 1e-2,
relative to the largest magnitude in the computation (the op applied to
absolute values, without clamp), which is what float32 sums are accurate to.
Gradients are compared with autograd through the reference path; where a
pre-activation lies within float32 noise of a kink (0 or the clamp), either
one-sided derivative is right, and the kernel's choice is taken there.

AFV_CUDA_TESTS_DRY_RUN=1 runs the same tests on the CPU with the reference
path in place of the kernels (checks the tests themselves, not the kernels).
"""

from __future__ import annotations

import importlib
import math
import os

import cuda_cases
import numpy as np
import pytest
import torch

from renderer.ops import bias_act, cuda_build, filtered_lrelu, implementation_status, upfirdn2d

flrelu_module = importlib.import_module('renderer.ops.filtered_lrelu')
upfirdn_module = importlib.import_module('renderer.ops.upfirdn2d')

DRY_RUN = os.environ.get('AFV_CUDA_TESTS_DRY_RUN') == '1'
DEVICE = 'cpu' if DRY_RUN else 'cuda'
IMPL = 'ref' if DRY_RUN else 'cuda'
NUM_CASES = 40
BIG = 1 if not DRY_RUN else 0.1  # size scale of the large-tensor tests (small in a dry run on the CPU)


def _big(n: int) -> int:
    return max(1, int(n * BIG))

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not DRY_RUN and not torch.cuda.is_available(),
                       reason='needs a CUDA device (torch.cuda.is_available() is False)'),
]


@pytest.fixture(scope='module', autouse=True)
def kernels():
    """Build or load the kernels once; exact float32 convolutions in the reference path."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if not DRY_RUN:
        try:
            cuda_build.load_extension()
        except cuda_build.CudaOpsUnavailable as exc:
            pytest.fail(f'the CUDA kernels cannot be used on this CUDA machine: {exc.reason}')
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _dev(a, dtype):
    return None if a is None else torch.tensor(a, device=DEVICE).to(dtype)


def _f64(t):
    return None if t is None else t.detach().double()


def _abs(t):
    return None if t is None else t.abs()


def assert_close(got, expected, dtype, msg, magnitude=None):
    """1e-5 (float32) or 1e-2 (float16) relative to the largest magnitude involved."""
    tol = 1e-2 if dtype == torch.float16 else 1e-5
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    scale = max(1.0, expected.abs().max().item() if expected.numel() else 0.0)
    if magnitude is not None and magnitude.numel():
        scale = max(scale, magnitude.detach().abs().max().item())
    assert got.shape == expected.shape, f'{msg}: shape {tuple(got.shape)} != {tuple(expected.shape)}'
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol * scale, msg=lambda m: f'{msg}\n{m}')


# --- filtered_lrelu ---------------------------------------------------------------------------------

FLRELU_KEYS = ('up', 'down', 'padding', 'gain', 'slope', 'clamp', 'flip_filter')


def _flrelu_inputs(case, dtype):
    return (_dev(case['x'], dtype), _dev(case['fu'], torch.float32), _dev(case['fd'], torch.float32),
            _dev(case['b'], dtype))


def _double(t):
    """float64, keeping the autograd graph (unlike _f64)."""
    return None if t is None else t.double()


def _flrelu_ref64(x, fu, fd, b, case, **overrides):
    kwargs = {k: case[k] for k in FLRELU_KEYS}
    kwargs.update(overrides)
    return filtered_lrelu(_double(x), _f64(fu), _f64(fd), _double(b), impl='ref', **kwargs)


def _flrelu_magnitude(x, fu, fd, b, case):
    return _flrelu_ref64(_abs(_f64(x)), _abs(fu), _abs(fd), _abs(_f64(b)), case, gain=abs(case['gain']), slope=1.0,
                         clamp=None)


def _flrelu_codes64(x, fu, b, case):
    """float64 codes (bit 0 negative branch, bit 1 clamped) and the near-tie positions."""
    xb = _f64(x) + (0 if b is None else _f64(b).reshape(1, -1, 1, 1))
    v = upfirdn2d(xb, _f64(fu), up=case['up'], padding=case['padding'], gain=case['up'] ** 2,
                  flip_filter=case['flip_filter'], impl='ref') * case['gain']
    a = torch.where(v > 0, v, v * case['slope'])
    clamp = math.inf if case['clamp'] is None else case['clamp']
    codes = (~(v > 0)).to(torch.uint8) | ((a.abs() > clamp).to(torch.uint8) << 1)
    tol = 2e-5 * max(1.0, v.abs().max().item())
    near_tie = (v != 0) & ((v.abs() < tol) | ((a.abs() - clamp).abs() < tol))
    return codes, near_tie


def _kernel_codes(x, fu, fd, b, case):
    """The 2-bit codes the kernel stores for the backward pass, unpacked."""
    if DRY_RUN:
        pytest.skip('dry run: no kernel codes to resolve a kink tie with')
    pad = flrelu_module.common.parse_padding(case['padding'])
    clamp = math.inf if case['clamp'] is None else case['clamp']
    _, mask = cuda_build.extension().filtered_lrelu_forward(
        x, fu, fd, None if b is None else b.to(x.dtype), case['up'], case['down'], *pad, case['flip_filter'],
        case['gain'], case['slope'], clamp, True)
    mid_w = x.shape[3] * case['up'] + pad[0] + pad[1] - (1 if fu is None else fu.shape[-1]) + 1
    cols = torch.arange(mid_w, device=mask.device)
    return (mask[..., cols // 4] >> (2 * (cols % 4)).to(torch.uint8)) & 3


def _expected_flrelu_grads(x, fu, fd, b, case, gy):
    """float64 gradients (x, b): autograd of the reference, or the same chain with kink ties resolved."""
    codes, near_tie = _flrelu_codes64(x, fu, b, case)
    if not near_tie.any():
        x64 = _f64(x).requires_grad_(True)
        b64 = None if b is None else _f64(b).requires_grad_(True)
        y64 = _flrelu_ref64(x64, fu, fd, b64, case)
        if y64.requires_grad:
            y64.backward(gy.double())
        gx = x64.grad if x64.grad is not None else torch.zeros_like(x64)
        gb = None if b is None else (b64.grad if b64.grad is not None else torch.zeros_like(b64))
        return gx, gb
    kernel = _kernel_codes(x, fu, fd, b, case)
    if kernel is not None:
        codes = torch.where(near_tie, kernel, codes)
    factor = torch.where(codes & 2 > 0, 0.0, torch.where(codes & 1 > 0, case['gain'] * case['slope'], case['gain']))
    p = flrelu_module.FlreluParams(case['up'], case['down'], flrelu_module.common.parse_padding(case['padding']),
                                   case['gain'], case['slope'], case['clamp'], case['flip_filter'])
    g = flrelu_module.input_gradient(gy.double(), _f64(fu), _f64(fd), lambda t: t * factor.double(), p,
                                     x.shape[2:], upfirdn=lambda *a, **k: upfirdn2d(*a, impl='ref', **k))
    return g, (None if b is None else g.sum(dim=[0, 2, 3]))


def _check_flrelu(case, dtype, backward):
    x, fu, fd, b = _flrelu_inputs(case, dtype)
    msg = f'{dtype} {cuda_cases.describe(case)}'
    if backward:
        x.requires_grad_(True)
        if b is not None:
            b.requires_grad_(True)
    y = filtered_lrelu(x, fu, fd, b, impl=IMPL, **{k: case[k] for k in FLRELU_KEYS})
    assert y.dtype == dtype and y.device.type == DEVICE
    assert_close(y, _flrelu_ref64(_f64(x), fu, fd, _f64(b), case), dtype, msg, _flrelu_magnitude(x, fu, fd, b, case))
    if backward:
        if DRY_RUN and not y.requires_grad:
            pytest.skip('dry run: the reference returned a constant')
        # Scaled so that the bias gradient (a sum over batch and pixels) stays finite in float16.
        scale = 1 / math.sqrt(y.shape[0] * y.shape[2] * y.shape[3])
        gy = (torch.randn(y.shape, generator=torch.Generator().manual_seed(cuda_cases.BASE_SEED)) * scale)
        gy = gy.to(DEVICE, dtype)
        y.backward(gy)
        gx, gb = _expected_flrelu_grads(x.detach(), fu, fd, None if b is None else b.detach(), case, gy)
        p = flrelu_module.FlreluParams(case['up'], case['down'], flrelu_module.common.parse_padding(case['padding']),
                                       case['gain'], case['slope'], case['clamp'], case['flip_filter'])
        magnitude = flrelu_module.input_gradient(
            gy.double().abs(), _abs(_f64(fu)), _abs(_f64(fd)), lambda t: t * abs(case['gain']), p, x.shape[2:],
            upfirdn=lambda *a, **k: upfirdn2d(*a, impl='ref', **k))
        assert x.grad is not None and x.grad.dtype == dtype
        assert_close(x.grad, gx, dtype, f'x gradient, {msg}', magnitude)
        if b is not None:
            assert_close(b.grad, gb, dtype, f'b gradient, {msg}', magnitude.sum(dim=[0, 2, 3]))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_filtered_lrelu_forward(index, dtype):
    _check_flrelu(cuda_cases.draw_filtered_lrelu(index), dtype, backward=False)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_fast_configurations(index, dtype):
    _check_flrelu(cuda_cases.draw_filtered_lrelu_fast(index, max_size=80), dtype, backward=index % 2 == 0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('index', range(NUM_CASES // 2), ids=cuda_cases.case_ids(NUM_CASES // 2))
def test_filtered_lrelu_backward(index, dtype):
    _check_flrelu(cuda_cases.draw_filtered_lrelu(index, factors=(1, 2, 4)), dtype, backward=True)


def test_filtered_lrelu_tiny_inputs():
    box = np.ones(12, np.float32) / 12
    for fu, fd, up, down, pad in [(None, None, 1, 1, 0), (np.ones(3, np.float32) / 3, None, 2, 1, 2),
                                  (None, np.ones((2, 2), np.float32), 1, 2, 1), (box, box, 2, 2, 11)]:
        case = dict(x=np.full((1, 1, 1, 1), -1.5, np.float32), fu=fu, fd=fd, b=np.ones(1, np.float32), up=up,
                    down=down, padding=pad, gain=math.sqrt(2), slope=0.2, clamp=0.5, flip_filter=False)
        _check_flrelu(case, torch.float32, backward=True)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_filtered_lrelu_large_input(dtype):
    rng = cuda_cases.rng_for(0, 30)
    case = dict(x=rng.standard_normal((3, _big(24), _big(301), _big(257))).astype(np.float32),
                fu=np.hanning(26)[1:-1].astype(np.float32), fd=rng.uniform(0, 1, (12, 12)).astype(np.float32),
                b=rng.standard_normal(_big(24)).astype(np.float32), up=4, down=2, padding=[7, -3, 5, 9],
                gain=math.sqrt(2), slope=0.2, clamp=1.0, flip_filter=False)
    _check_flrelu(case, dtype, backward=True)


def test_filtered_lrelu_noncontiguous_inputs():
    rng = cuda_cases.rng_for(0, 31)
    big = _dev(rng.standard_normal((2, 10, 41, 37)), torch.float32)
    fu, fd = _dev(rng.standard_normal(12), torch.float32), _dev(rng.standard_normal(12), torch.float32)
    b = _dev(rng.standard_normal(10), torch.float32)[::2]
    kwargs = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=2.0, impl=IMPL)
    for x in (big[:, ::2, 1::2, ::3], big[:, 1::2].contiguous(memory_format=torch.channels_last),
              big[:, ::2].transpose(2, 3)):
        expected = filtered_lrelu(x.contiguous(), fu, fd, b.contiguous(), **kwargs)
        torch.testing.assert_close(filtered_lrelu(x, fu, fd, b, **kwargs), expected, rtol=0, atol=0)
    fu_strided = _dev(rng.standard_normal(24), torch.float32)[::2]
    torch.testing.assert_close(filtered_lrelu(big, fu_strided, fd, None, **kwargs),
                               filtered_lrelu(big, fu_strided.contiguous(), fd, None, **kwargs), rtol=0, atol=0)


def _network_layers():
    from renderer.networks import stylegan3
    layers = []
    configs = {'T': {}, 'R': dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)}
    for name, kwargs in configs.items():
        torch.manual_seed(0)
        net = stylegan3.SynthesisNetwork(w_dim=8, img_resolution=1024, img_channels=3, **kwargs)
        for layer_name in net.layer_names:
            layer = getattr(net, layer_name)
            layers.append(pytest.param(layer, id=f'stylegan3-{name.lower()}-1024-{layer_name}'))
    return layers


NETWORK_LAYERS = _network_layers() if DRY_RUN or torch.cuda.is_available() else []


def _flrelu_out_size(layer, size):
    taps = lambda f: 1 if f is None else f.shape[-1]  # noqa: E731
    pad = layer.padding
    return (size * layer.up_factor + pad[0] + pad[1] - (taps(layer.up_filter) - 1) - (taps(layer.down_filter) - 1)
            + layer.down_factor - 1) // layer.down_factor


@pytest.mark.parametrize('layer', NETWORK_LAYERS)
def test_filtered_lrelu_real_layer_shapes(layer):
    """Every filtered_lrelu of StyleGAN3-T/R 1024 at batch 1, in the layer's precision."""
    size = int(layer.in_size[0]) + layer.conv_kernel - 1
    if DRY_RUN:
        size = min(size, 60)
        if _flrelu_out_size(layer, size) < 1:
            pytest.skip('dry run: cropped layer too small')
    dtype = torch.float16 if layer.use_fp16 else torch.float32
    rng = cuda_cases.rng_for(size, 32)
    channels = layer.out_channels if not DRY_RUN else min(layer.out_channels, 2)
    to_np = lambda t: None if t is None else t.numpy()  # noqa: E731
    case = dict(x=(rng.standard_normal((1, channels, size, size)) * 3).astype(np.float32),
                fu=to_np(layer.up_filter), fd=to_np(layer.down_filter),
                b=(rng.standard_normal(channels) * 0.1).astype(np.float32), up=layer.up_factor,
                down=layer.down_factor, padding=layer.padding, gain=1.0 if layer.is_torgb else math.sqrt(2),
                slope=1.0 if layer.is_torgb else 0.2, clamp=float(layer.conv_clamp), flip_filter=False)
    _check_flrelu(case, dtype, backward=layer.out_channels <= 64)


# --- upfirdn2d ---------------------------------------------------------------------------------------

UPFIRDN_KEYS = ('up', 'down', 'padding', 'flip_filter', 'gain')


def _check_upfirdn(case, dtype, backward=True):
    x, f = _dev(case['x'], dtype), _dev(case['f'], torch.float32)
    kwargs = {k: case[k] for k in UPFIRDN_KEYS}
    msg = f'{dtype} {cuda_cases.describe(case)}'
    x.requires_grad_(backward)
    y = upfirdn2d(x, f, impl=IMPL, **kwargs)
    x64 = _f64(x).requires_grad_(True)
    y64 = upfirdn2d(x64, _f64(f), impl='ref', **kwargs)
    magnitude = upfirdn2d(_f64(x).abs(), _abs(_f64(f)), impl='ref', **dict(kwargs, gain=abs(case['gain'])))
    assert y.dtype == dtype
    assert_close(y, y64, dtype, msg, magnitude)
    if backward:
        if DRY_RUN and not y.requires_grad:
            pytest.skip('dry run: the reference returned a constant')
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(cuda_cases.BASE_SEED)).to(DEVICE, dtype)
        y.backward(gy)
        if y64.requires_grad:
            y64.backward(gy.double())
        expected = x64.grad if x64.grad is not None else torch.zeros_like(x64)
        assert_close(x.grad, expected, dtype, f'gradient, {msg}')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_upfirdn2d_forward_backward(index, dtype):
    _check_upfirdn(cuda_cases.draw_upfirdn2d(index), dtype)


def test_upfirdn2d_tiny_and_large():
    rng = cuda_cases.rng_for(0, 33)
    _check_upfirdn(dict(x=np.ones((1, 1, 1, 1), np.float32), f=None, up=1, down=1, padding=0, flip_filter=False,
                        gain=3.0), torch.float32)
    _check_upfirdn(dict(x=np.ones((1, 1, 1, 1), np.float32), f=np.ones(4, np.float32), up=2, down=1, padding=[2, 1],
                        flip_filter=False, gain=4.0), torch.float32)
    _check_upfirdn(dict(x=rng.standard_normal((2, _big(16), _big(515), _big(389))).astype(np.float32),
                        f=rng.standard_normal((4, 4)).astype(np.float32), up=2, down=1, padding=[2, 1, 2, 1],
                        flip_filter=False, gain=4.0), torch.float16)


def test_upfirdn2d_noncontiguous_input():
    rng = cuda_cases.rng_for(0, 34)
    big = _dev(rng.standard_normal((3, 8, 33, 29)), torch.float32)
    f = _dev(rng.standard_normal(4), torch.float32)
    for x in (big[::2, 1::2, ::2, 3:], big.contiguous(memory_format=torch.channels_last), big.transpose(2, 3)):
        kwargs = dict(up=2, padding=[2, 1, 2, 1], gain=4, impl=IMPL)
        torch.testing.assert_close(upfirdn2d(x, f, **kwargs), upfirdn2d(x.contiguous(), f, **kwargs), rtol=0, atol=0)


def test_upfirdn2d_double_backward():
    """The backward is upfirdn2d again, so second-order gradients work."""
    x = _dev(cuda_cases.rng_for(0, 35).standard_normal((1, 2, 7, 9)), torch.float32).requires_grad_(True)
    f = _dev(np.array([1, 3, 3, 1], np.float32) / 8, torch.float32)
    y = upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 2, 1], gain=4, impl=IMPL)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad(gx.sum(), x)
    x64 = _f64(x).requires_grad_(True)
    y64 = upfirdn2d(x64, _f64(f), up=2, down=1, padding=[2, 1, 2, 1], gain=4, impl='ref')
    (gx64,) = torch.autograd.grad(y64.square().sum(), x64, create_graph=True)
    (ggx64,) = torch.autograd.grad(gx64.sum(), x64)
    assert_close(ggx, ggx64, torch.float32, 'second-order gradient')


# --- bias_act ----------------------------------------------------------------------------------------

def _check_bias_act(case, dtype, make_view=None):
    from renderer.ops.bias_act import ACTIVATIONS
    spec = ACTIVATIONS[case['act']]
    kwargs = dict(dim=case['dim'], act=case['act'], alpha=case['alpha'], gain=case['gain'], clamp=case['clamp'])
    x, b = _dev(case['x'], dtype), _dev(case['b'], dtype)
    if make_view is not None:
        x = make_view(x)
    x.requires_grad_(True)
    if b is not None:
        b.requires_grad_(True)
    y = bias_act(x, b, impl=IMPL, **kwargs)
    x64 = _f64(x).requires_grad_(True)
    b64 = None if b is None else _f64(b).requires_grad_(True)
    y64 = bias_act(x64, b64, impl='ref', **kwargs)
    msg = f'{dtype} {cuda_cases.describe(case)}'
    assert_close(y, y64, dtype, msg)
    scale = 1 / math.sqrt(max(1, y.numel() // max(1, y.shape[case['dim']] if y.ndim else 1)))
    gy = (torch.randn(y.shape, generator=torch.Generator().manual_seed(cuda_cases.BASE_SEED)) * scale).to(DEVICE, dtype)
    if DRY_RUN and not y.requires_grad:
        pytest.skip('dry run: the reference returned x itself')
    y.backward(gy)
    if y64.requires_grad:
        y64.backward(gy.double())
    gain = spec.def_gain if case['gain'] is None else case['gain']
    clamp = math.inf if case['clamp'] is None else case['clamp']
    unclamped = bias_act(_f64(x), _f64(b), impl='ref', **dict(kwargs, clamp=None))
    # At the clamp either one-sided gradient is right; float16 inputs of the reference (dry run) round more.
    tie_tol = 1e-4 if dtype == torch.float32 else (2e-2 if DRY_RUN else 1e-3)
    tie = ((unclamped.abs() - clamp).abs() < tie_tol * max(1.0, abs(gain))).cpu()
    gx64 = x64.grad if x64.grad is not None else torch.zeros_like(x64)
    assert_close(torch.where(tie, 0, x.grad.double().cpu()), torch.where(tie, 0, gx64.cpu()), dtype, f'x grad, {msg}')
    if b is not None and not tie.any():
        assert_close(b.grad, b64.grad if b64.grad is not None else torch.zeros_like(b64), dtype, f'b grad, {msg}',
                     gy.double().abs().sum() * max(1.0, abs(gain)) / max(1, b.numel()))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('index', range(NUM_CASES), ids=cuda_cases.case_ids(NUM_CASES))
def test_bias_act_forward_backward(index, dtype):
    _check_bias_act(cuda_cases.draw_bias_act(index), dtype)


def test_bias_act_noncontiguous_and_large():
    rng = cuda_cases.rng_for(0, 36)
    case = dict(x=rng.standard_normal((4, 64, 33, 35)).astype(np.float32), b=rng.standard_normal(64).astype(np.float32),
                dim=1, act='lrelu', alpha=None, gain=None, clamp=256.0)
    _check_bias_act(case, torch.float32, make_view=lambda t: t.transpose(2, 3))
    _check_bias_act(case, torch.float16, make_view=lambda t: t.contiguous(memory_format=torch.channels_last))
    big = dict(case, x=rng.standard_normal((8, _big(512), 64, 64)).astype(np.float32),
               b=rng.standard_normal(_big(512)).astype(np.float32), act='swish', clamp=1.0)
    _check_bias_act(big, torch.float16)


def test_bias_act_double_backward_piecewise_linear():
    x = _dev(cuda_cases.rng_for(0, 37).standard_normal((3, 5)), torch.float32).requires_grad_(True)
    b = _dev(np.linspace(-1, 1, 5), torch.float32)
    y = bias_act(x, b, act='lrelu', clamp=1.5, impl=IMPL)
    v = torch.ones_like(y, requires_grad=True)
    (gx,) = torch.autograd.grad(y, x, v, create_graph=True)
    (gv,) = torch.autograd.grad(gx.square().sum(), v)
    x64 = _f64(x).requires_grad_(True)
    v64 = torch.ones_like(x64, requires_grad=True)
    (gx64,) = torch.autograd.grad(bias_act(x64, _f64(b), act='lrelu', clamp=1.5, impl='ref'), x64, v64,
                                  create_graph=True)
    (gv64,) = torch.autograd.grad(gx64.square().sum(), v64)
    assert_close(gv, gv64, torch.float32, 'second-order gradient')


# --- networks ----------------------------------------------------------------------------------------

def _psnr(a, b):
    mse = (a.double().cpu() - b.double().cpu()).square().mean().item()
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan3-r', 'stylegan2'])
def test_generator_matches_cpu_reference(arch):
    from net_helpers import make_generator
    G = make_generator(arch, res=64)
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(cuda_cases.BASE_SEED))
    with torch.no_grad():
        expected = G(z, None, noise_mode='const')
        G_dev = G.to(DEVICE)
        got32 = G_dev(z.to(DEVICE), None, noise_mode='const', force_fp32=True)
        got16 = G_dev(z.to(DEVICE), None, noise_mode='const')
    assert_close(got32, expected, torch.float32, f'{arch} fp32', magnitude=expected.abs().max() * 10)
    assert torch.isfinite(got16).all()
    assert _psnr(got16, expected) > 30, f'{arch} fp16 PSNR {_psnr(got16, expected):.1f} dB'
    if not DRY_RUN:
        status = implementation_status()
        ops = ('filtered_lrelu', 'bias_act') if arch.startswith('stylegan3') else ('upfirdn2d', 'bias_act')
        for op in ops:
            assert status[op]['impl'] == 'cuda' and status[op]['last_call']['impl'] == 'cuda', status[op]


def test_layer_capture_with_kernels():
    from net_helpers import make_generator

    from renderer.networks import capture_layers
    G = make_generator('stylegan3-t', res=64).to(DEVICE)
    with torch.no_grad(), capture_layers(G) as layers:
        G(torch.randn([1, G.z_dim], device=DEVICE), None)
    assert len(layers) > 10 and all(torch.isfinite(layer.tensor.float()).all() for layer in layers)


@pytest.mark.skipif(DRY_RUN, reason='CUDA synchronisation checks need a GPU')
@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan3-r', 'stylegan2'])
def test_generator_forward_never_synchronises(arch):
    from net_helpers import make_generator
    G = make_generator(arch, res=64).to(DEVICE)
    z = torch.randn([1, G.z_dim], device=DEVICE)
    with torch.no_grad():
        G(z, None)  # warm-up: kernel build/load, cuDNN heuristics
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            G(z, None)
        finally:
            torch.cuda.set_sync_debug_mode('default')


@pytest.mark.skipif(DRY_RUN, reason='GPU memory needs a GPU')
@pytest.mark.parametrize('config', ['stylegan3-t-1024', 'stylegan3-r-1024'])
def test_generator_1024_peak_memory_under_2gb(config):
    import sys
    sys.path.insert(0, str(cuda_build.SOURCE_DIR.parents[2] / 'benchmarks'))
    import generator as bench
    G = bench.build(config, torch.device('cuda'))
    z = torch.randn([1, G.z_dim], device='cuda')
    with torch.no_grad():
        G(z, None)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        G(z, None)
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    assert peak < 2 * 2 ** 30, f'peak memory {peak / 2 ** 20:.0f} MB'
