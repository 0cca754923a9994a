"""The self-check of built kernels against the reference path (renderer/ops/self_check.py), on the CPU.

With no GPU here, the "kernel" is injected: the reference path itself (which must pass),
or deliberately wrong versions of it (which must be caught). The op cases are the real
ones that run on the GPU before its first use of each kernel.
"""

from __future__ import annotations

import functools
import math
import types
import warnings

import pytest
import torch

from renderer.ops import bias_act, common, cuda_build, filtered_lrelu, self_check, upfirdn2d
from renderer.ops.cuda_build import CudaFallbackWarning, CudaOpsUnavailable

OPS = {'bias_act': bias_act, 'upfirdn2d': upfirdn2d, 'filtered_lrelu': filtered_lrelu}
CPU = torch.device('cpu')
FAKE_CUDA_TENSOR = types.SimpleNamespace(device=torch.device('cuda', 0))


@pytest.fixture(autouse=True)
def fresh_state():
    cuda_build.reset_state()
    yield
    cuda_build.reset_state()


def reference(op):
    return functools.partial(OPS[op], impl='ref')


def scaled(op, factor):
    return lambda *args, **kwargs: reference(op)(*args, **kwargs) * factor


def shifted(op):
    """Off by one pixel along the last axis: the classic indexing bug."""
    return lambda *args, **kwargs: reference(op)(*args, **kwargs).roll(1, dims=-1)


class _WrongGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        return 1.5 * g


def wrong_gradient(op):
    """The right forward values with a wrong backward pass."""
    return lambda *args, **kwargs: _WrongGradient.apply(reference(op)(*args, **kwargs))


def poisoned(op):
    def kernel(*args, **kwargs):
        y = reference(op)(*args, **kwargs).contiguous().clone()
        y.view(-1)[0] = math.nan
        return y
    return kernel


@pytest.mark.parametrize('op', list(OPS))
def test_the_reference_path_passes_every_case(op):
    report = self_check.check(op, CPU, kernel=reference(op))
    assert report.ok and report.worst == 0.0 and report.error is None
    cases = self_check._REGISTRY[op][1](CPU)
    assert len(cases) >= 4 and any(case.grad_args for case in cases), 'forward and gradients are both checked'
    assert any(isinstance(a, torch.Tensor) and a.dtype == torch.float16 for case in cases for a in case.args)


@pytest.mark.parametrize('op', list(OPS))
@pytest.mark.parametrize('wrong, where', [
    (lambda op: scaled(op, 1.01), 'output'),
    (shifted, 'output'),
    (wrong_gradient, 'gradient'),
    (poisoned, 'output'),
])
def test_a_wrong_kernel_is_caught(op, wrong, where):
    report = self_check.check(op, CPU, kernel=wrong(op))
    assert not report.ok and where in report.case
    assert report.worst > report.tolerance and 'relative difference' in report.describe()


def test_small_rounding_differences_pass():
    report = self_check.check('filtered_lrelu', CPU, kernel=scaled('filtered_lrelu', 1 + 1e-6))
    assert report.ok and 0 < report.worst < 1e-5


def test_a_kernel_that_raises_is_caught():
    def raising(*args, **kwargs):
        raise RuntimeError('CUDA error: an illegal memory access was encountered')
    report = self_check.check('upfirdn2d', CPU, kernel=raising)
    assert not report.ok and 'illegal memory access' in report.describe()


def test_relative_difference():
    want = torch.tensor([3.0, 4.0])
    assert self_check.relative_difference(want, want) == 0
    assert self_check.relative_difference(torch.tensor([3.0, 4.5]), want) == pytest.approx(0.1)
    assert self_check.relative_difference(torch.tensor([3.0]), want) == math.inf
    assert self_check.relative_difference(torch.tensor([math.inf, 4.0]), want) == math.inf


# --- the policy: a kernel that fails is never used in this process ----------------------------------

def _loaded_kernels(monkeypatch, kernels: dict):
    """As after a successful build, with `kernels[op]` standing in for each op's kernel on the CPU."""
    cuda_build._State.module = types.SimpleNamespace(__file__='/cache/afv_cuda_ops.so')
    runs = []

    def check_on_cpu(op, device):
        runs.append((op, device))
        return self_check.compare(op, self_check._REGISTRY[op][1](CPU), kernels[op], reference(op))
    monkeypatch.setattr(self_check, 'check', check_on_cpu)
    return runs


def test_a_kernel_that_fails_its_check_is_never_used(monkeypatch):
    runs = _loaded_kernels(monkeypatch, {'bias_act': scaled('bias_act', 1.1), 'upfirdn2d': reference('upfirdn2d')})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        for _ in range(3):
            assert common.resolve_impl('bias_act', 'auto', FAKE_CUDA_TENSOR) == 'ref'
            assert common.resolve_impl('upfirdn2d', 'auto', FAKE_CUDA_TENSOR) == 'cuda'
    assert runs == [('bias_act', torch.device('cuda', 0)), ('upfirdn2d', torch.device('cuda', 0))], 'once per op'
    found = [str(w.message) for w in record if issubclass(w.category, CudaFallbackWarning)]
    assert len(found) == 1, found
    assert 'bias_act' in found[0] and 'failed its self-check' in found[0] and 'relative difference 0.1' in found[0]
    assert 'please report' in found[0] and torch.__version__ in found[0]
    status = cuda_build.implementation_status()
    assert status['bias_act']['impl'] == 'ref' and status['bias_act']['state'] == 'failed self-check'
    assert status['upfirdn2d']['impl'] == 'cuda' and status['upfirdn2d']['state'] == 'loaded'
    with pytest.raises(CudaOpsUnavailable, match="bias_act: impl='cuda' is not available: the built kernel failed"):
        common.resolve_impl('bias_act', 'cuda', FAKE_CUDA_TENSOR)


def test_each_device_is_checked_on_its_own(monkeypatch):
    runs = _loaded_kernels(monkeypatch, {'upfirdn2d': reference('upfirdn2d')})
    for index in (0, 1, 0, 1):
        tensor = types.SimpleNamespace(device=torch.device('cuda', index))
        assert common.resolve_impl('upfirdn2d', 'auto', tensor) == 'cuda'
    assert [device.index for _, device in runs] == [0, 1]


def test_the_check_itself_runs_the_kernel(monkeypatch):
    """Inside the self-check the op's own calls go to the kernel (no recursion, no fallback)."""
    cuda_build._State.module = types.SimpleNamespace(__file__='/cache/afv_cuda_ops.so')
    seen = []

    def check(op, device):
        seen.append(common.resolve_impl(op, 'cuda', FAKE_CUDA_TENSOR))
        return self_check.CheckReport(op, True, 0.0, '', 1e-3)
    monkeypatch.setattr(self_check, 'check', check)
    assert common.resolve_impl('filtered_lrelu', 'auto', FAKE_CUDA_TENSOR) == 'cuda'
    assert seen == ['cuda']


def test_a_check_that_cannot_run_rejects_the_kernel(monkeypatch):
    cuda_build._State.module = types.SimpleNamespace(__file__='/cache/afv_cuda_ops.so')

    def broken(op, device):
        raise RuntimeError('out of memory')
    monkeypatch.setattr(self_check, 'check', broken)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        assert common.resolve_impl('upfirdn2d', 'auto', FAKE_CUDA_TENSOR) == 'ref'
    assert any('out of memory' in str(w.message) for w in record)
