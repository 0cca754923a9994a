"""Building, caching and selecting the CUDA kernels, without a GPU (renderer/ops/cuda_build.py).

The compiler is injected (`builder=`), so the cache naming, the atomic
publication of a build, recovery from interrupted builds and the fallback
policy are all tested here; the real build runs in test_cuda_ops.py.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
import warnings
from pathlib import Path

import pytest
import torch

from renderer.ops import common, cuda_build
from renderer.ops.cuda_build import BuildEnv, CudaFallbackWarning, CudaOpsUnavailable

ROOT = Path(__file__).resolve().parents[1]
ENV = BuildEnv(archs=('sm_80',), torch_version='2.13.0+cu126', cuda_version='12.6')
FAKE_CUDA_TENSOR = types.SimpleNamespace(device=torch.device('cuda'))  # all that resolve_impl looks at


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch, tmp_path):
    monkeypatch.setenv('AFV_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('AFV_CUDA_OPS', raising=False)
    cuda_build.reset_state()
    yield
    cuda_build.reset_state()


def _sources(tmp_path, text='int x;'):
    src = tmp_path / 'src'
    src.mkdir(exist_ok=True)
    (src / 'a.cu').write_text(text)
    (src / 'b.cpp').write_text('int y;')
    return [src / 'a.cu', src / 'b.cpp']


def fake_builder(calls: list):
    """Writes a Python module in place of a compiled extension."""
    def build(name, sources, build_dir, env):
        calls.append(build_dir)
        path = build_dir / f'{name}.py'
        path.write_text('VALUE = 42\n')
        return cuda_build.import_module_file(name, path)
    return build


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, CudaFallbackWarning)]


def _tmp_dirs(root: Path):
    return sorted(root.glob(cuda_build.TMP_PREFIX + '*'))


# --- cache folder and naming ----------------------------------------------------------------

def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('AFV_CACHE_DIR', str(tmp_path / 'afv'))
    assert cuda_build.extensions_dir() == tmp_path / 'afv' / 'torch_extensions'
    monkeypatch.delenv('AFV_CACHE_DIR')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert cuda_build.extensions_dir() == tmp_path / 'xdg' / 'alias-free-viz' / 'torch_extensions'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert cuda_build.cache_root() == tmp_path / 'home' / '.cache' / 'alias-free-viz'


def test_build_dir_name_depends_on_sources_arch_and_versions(tmp_path):
    sources = _sources(tmp_path)
    digest = cuda_build.source_digest(sources)
    name = cuda_build.build_dir_name('ext', digest, ENV)
    assert name.startswith(f'ext-{digest[:16]}-sm_80-torch2.13.0_cu126-cu12.6-py')
    assert cuda_build.source_digest(list(reversed(sources))) == digest
    others = {
        cuda_build.build_dir_name('ext', cuda_build.source_digest(_sources(tmp_path, 'int x; ')), ENV),
        cuda_build.build_dir_name('ext', digest, BuildEnv(('sm_90',), ENV.torch_version, ENV.cuda_version)),
        cuda_build.build_dir_name('ext', digest, BuildEnv(('sm_80', 'sm_90'), ENV.torch_version, ENV.cuda_version)),
        cuda_build.build_dir_name('ext', digest, BuildEnv(ENV.archs, '2.14.0', ENV.cuda_version)),
        cuda_build.build_dir_name('ext', digest, BuildEnv(ENV.archs, ENV.torch_version, '13.0')),
        cuda_build.build_dir_name('ext', digest, BuildEnv(ENV.archs, ENV.torch_version, ENV.cuda_version, '312')),
        cuda_build.build_dir_name('ext', digest, dataclasses.replace(ENV, nvcc_version='V12.6.85')),
        cuda_build.build_dir_name('ext', digest, dataclasses.replace(ENV, nvcc_version='V12.6.77')),
        cuda_build.build_dir_name('ext', digest, dataclasses.replace(ENV, cuda_cflags=('-O2',))),
        cuda_build.build_dir_name('ext', digest, dataclasses.replace(ENV, cflags=('-O3', '-g'))),
    }
    assert name not in others and len(others) == 10
    # Where the tools are found does not matter, only what they are.
    assert cuda_build.build_dir_name('ext', digest, dataclasses.replace(ENV, toolkit_root='/x', ninja='/y')) == name


def test_the_hash_covers_every_kernel_source():
    hashed = {p.name for p in cuda_build.hashed_sources()}
    assert set(cuda_build.COMPILED_SOURCES) <= hashed
    headers = {p.name for p in cuda_build.SOURCE_DIR.glob('*.h')}
    assert headers and headers <= hashed


# --- import and CPU use never build -------------------------------------------------------------

def test_import_and_cpu_use_never_build(tmp_path):
    script = textwrap.dedent('''
        import sys, torch
        import renderer, renderer.ops, renderer.networks
        from renderer.ops import bias_act, filtered_lrelu, upfirdn2d, implementation_status
        from renderer.networks import stylegan3
        x = torch.randn(1, 2, 8, 8)
        filtered_lrelu(x, torch.ones(4) / 4, torch.ones(4) / 4, up=2, down=2, padding=3)
        upfirdn2d(x, torch.ones(3) / 3, padding=1)
        bias_act(x, torch.zeros(2), act='lrelu')
        G = stylegan3.Generator(8, 0, 8, 16, 3, channel_base=64, channel_max=8)
        G(torch.randn(1, 8), None)
        implementation_status()
        assert 'torch.utils.cpp_extension' not in sys.modules, 'cpp_extension was imported'
        print('ok')
    ''')
    env = dict(os.environ, AFV_CACHE_DIR=str(tmp_path / 'cache'), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr
    assert not (tmp_path / 'cache').exists(), 'something was written to the build cache'


# --- fallback policy ------------------------------------------------------------------------------

def test_auto_falls_back_with_exactly_one_warning_per_op(monkeypatch):
    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: 'no CUDA device (test)')
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        for _ in range(3):
            assert common.resolve_impl('filtered_lrelu', 'auto', FAKE_CUDA_TENSOR) == 'ref'
    found = _fallback_warnings(record)
    assert len(found) == 1
    message = str(found[0].message)
    assert 'filtered_lrelu' in message and 'no CUDA device (test)' in message
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        assert common.resolve_impl('upfirdn2d', 'auto', FAKE_CUDA_TENSOR) == 'ref'
        assert common.resolve_impl('upfirdn2d', 'auto', FAKE_CUDA_TENSOR) == 'ref'
    assert len(_fallback_warnings(record)) == 1
    status = cuda_build.implementation_status()
    assert status['filtered_lrelu']['impl'] == 'ref'
    assert status['filtered_lrelu']['reason'] == 'no CUDA device (test)'
    assert status['filtered_lrelu']['last_call'] == dict(impl='ref', reason='no CUDA device (test)')
    assert status['bias_act']['last_call'] is None


def test_cuda_impl_raises_with_the_reason(monkeypatch):
    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: 'no CUDA device (test)')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # forcing the kernel never warns: it raises
        with pytest.raises(CudaOpsUnavailable, match=r"bias_act: impl='cuda' is not available: no CUDA device"):
            common.resolve_impl('bias_act', 'cuda', FAKE_CUDA_TENSOR)
    assert issubclass(CudaOpsUnavailable, RuntimeError)


def test_cuda_impl_with_cpu_tensor_raises():
    with pytest.raises(RuntimeError, match="needs a CUDA tensor"):
        common.resolve_impl('upfirdn2d', 'cuda', torch.zeros(1))


def test_unsupported_calls_take_the_reference_path_and_say_why(monkeypatch):
    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: pytest.fail('must not probe'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert common.resolve_impl('upfirdn2d', 'auto', FAKE_CUDA_TENSOR, 'torch.float64 input') == 'ref'
    monkeypatch.undo()
    assert cuda_build._State.last_call['upfirdn2d'] == ('ref', 'not supported by the kernel: torch.float64 input')
    with pytest.raises(RuntimeError, match=r"does not support this call: torch.float64 input"):
        common.resolve_impl('upfirdn2d', 'cuda', FAKE_CUDA_TENSOR, 'torch.float64 input')


def test_ops_name_what_the_kernel_cannot_do():
    from renderer.ops.bias_act import _cuda_unsupported as bias_act_unsupported
    from renderer.ops.filtered_lrelu import _cuda_unsupported as flrelu_unsupported
    from renderer.ops.upfirdn2d import _cuda_unsupported as upfirdn_unsupported
    x32, x64 = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    assert 'float64' in flrelu_unsupported(x64, None, None, 2, 2)
    assert 'factors' in flrelu_unsupported(x32, None, None, 8, 2)
    assert 'fd' in flrelu_unsupported(x32, None, torch.ones(25), 2, 2)
    assert 'fu' in flrelu_unsupported(x32, torch.ones(4, requires_grad=True), None, 2, 2)
    assert flrelu_unsupported(x32.half(), torch.ones(24), torch.ones(12, 12), 4, 2) is None
    assert 'float64' in upfirdn_unsupported(x64, None, (1, 1, 1, 1))
    assert upfirdn_unsupported(x32, torch.ones(4), (2, 2, 1, 1)) is None
    assert 'float64' in bias_act_unsupported(x64) and bias_act_unsupported(x32) is None


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv('AFV_CUDA_OPS', '0')
    assert 'AFV_CUDA_OPS=0' in cuda_build.probe_environment()


def test_build_failure_falls_back_with_the_first_error_line(monkeypatch, tmp_path):
    calls = []

    def failing_builder(name, sources, build_dir, env):
        calls.append(build_dir)
        (build_dir / 'partial.o').write_text('junk')
        raise RuntimeError("Error building extension 'afv_cuda_ops': [1/4] nvcc ...\n"
                           "filtered_lrelu.cu(12): error: identifier \"bogus\" is undefined\n"
                           "1 error detected in the compilation of \"filtered_lrelu.cu\".")

    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: None)
    monkeypatch.setattr(cuda_build, 'current_env', lambda: ENV)
    monkeypatch.setattr(cuda_build, 'torch_builder', failing_builder)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        assert cuda_build.select('filtered_lrelu', 'auto') == 'ref'
        assert cuda_build.select('filtered_lrelu', 'auto') == 'ref'
        assert cuda_build.select('bias_act', 'auto') == 'ref'
    assert len(calls) == 1, 'a failed build must not be retried on every call'
    messages = [str(w.message) for w in _fallback_warnings(record)]
    assert len(messages) == 2
    assert 'CUDA build failed: filtered_lrelu.cu(12): error: identifier "bogus" is undefined' in messages[0]
    assert 'fix:' in messages[0] and 'full log:' in messages[0]
    log = cuda_build.extensions_dir() / f'{cuda_build.EXTENSION}-last-failure.log'
    assert 'is undefined' in log.read_text()
    assert _tmp_dirs(cuda_build.extensions_dir()) == [], 'the failed build folder must be removed'
    with pytest.raises(CudaOpsUnavailable, match='CUDA build failed'):
        cuda_build.select('upfirdn2d', 'cuda')


def test_successful_build_is_used_and_cached(monkeypatch, tmp_path):
    calls, checked = [], []
    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: None)
    monkeypatch.setattr(cuda_build, 'current_env', lambda: ENV)
    monkeypatch.setattr(cuda_build, 'torch_builder', fake_builder(calls))
    # No GPU here to run the kernel's self-check on (tests/test_cuda_self_check.py tests it): it passes.
    monkeypatch.setattr(cuda_build.self_check, 'check', lambda op, device: checked.append((op, device)) or
                        cuda_build.self_check.CheckReport(op, True, 0.0, '', 1e-3))
    assert cuda_build.implementation_status()['bias_act']['state'] == 'not built'
    assert common.resolve_impl('bias_act', 'auto', FAKE_CUDA_TENSOR) == 'cuda'
    assert common.resolve_impl('bias_act', 'auto', FAKE_CUDA_TENSOR) == 'cuda'
    assert checked == [('bias_act', torch.device('cuda'))], 'checked once, on the first use'
    assert cuda_build.extension().VALUE == 42
    status = cuda_build.implementation_status()
    assert status['bias_act'] == dict(impl='cuda', state='loaded', reason=status['bias_act']['reason'],
                                      last_call=dict(impl='cuda', reason=None))
    final = cuda_build.extensions_dir() / cuda_build.build_dir_name(
        cuda_build.EXTENSION, cuda_build.source_digest(cuda_build.hashed_sources()), ENV)
    assert str(final) in status['bias_act']['reason'] and cuda_build.TMP_PREFIX not in status['bias_act']['reason']
    assert Path(cuda_build.extension().__file__).is_file()
    cuda_build.reset_state()  # as a new process: the cached build is imported, not rebuilt
    assert cuda_build.implementation_status(build=True)['upfirdn2d']['state'] == 'loaded'
    assert len(calls) == 1
    finals = [p for p in cuda_build.extensions_dir().iterdir() if p.is_dir()]
    assert len(finals) == 1 and (finals[0] / cuda_build.MANIFEST).is_file()


# --- interrupted builds ---------------------------------------------------------------------------

_SLOW_BUILD = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from renderer.ops import cuda_build
    root, started, source = (Path(a) for a in sys.argv[1:4])

    def slow_builder(name, sources, build_dir, env):
        (build_dir / 'lock').write_text(str(os.getpid()))          # what other tools leave behind
        (build_dir / (name + '.py')).write_text('VALUE = ')         # half-written module
        (build_dir / 'build.ninja').write_text('rule cc')
        started.write_text('started')
        time.sleep(600)

    env = cuda_build.BuildEnv(archs=('sm_80',), torch_version='2.13.0+cu126', cuda_version='12.6')
    cuda_build.build_extension('demo', [source], env, root=root, builder=slow_builder)
''')

_QUICK_BUILD = textwrap.dedent('''
    import sys
    from pathlib import Path
    from renderer.ops import cuda_build
    root, source = (Path(a) for a in sys.argv[1:3])

    def builder(name, sources, build_dir, env):
        path = build_dir / (name + '.py')
        path.write_text('VALUE = 42')
        return cuda_build.import_module_file(name, path)

    env = cuda_build.BuildEnv(archs=('sm_80',), torch_version='2.13.0+cu126', cuda_version='12.6')
    print(cuda_build.build_extension('demo', [source], env, root=root, builder=builder).VALUE)
''')


def _start_slow_build(tmp_path, root, source):
    started = tmp_path / 'started'
    proc = subprocess.Popen([sys.executable, '-c', _SLOW_BUILD, str(root), str(started), str(source)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 120
    while not started.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail('the slow build did not start')
        time.sleep(0.05)
    return proc


def _quick_build(root, source):
    """A second build in a fresh process; it must neither hang nor fail."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, '-c', _QUICK_BUILD, str(root), str(source)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '42'
    return time.monotonic() - start


def test_killed_build_leaves_nothing_that_blocks_the_next(tmp_path):
    root, source = tmp_path / 'ext', _sources(tmp_path)[0]
    proc = _start_slow_build(tmp_path, root, source)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = _tmp_dirs(root)
    assert len(leftovers) == 1 and (leftovers[0] / 'lock').exists()
    _quick_build(root, source)
    assert _tmp_dirs(root) == [], 'the dead build folder must be cleaned up'
    finals = [p for p in root.iterdir() if p.is_dir()]
    assert len(finals) == 1 and (finals[0] / cuda_build.MANIFEST).is_file()


def test_a_live_build_elsewhere_is_neither_awaited_nor_disturbed(tmp_path):
    root, source = tmp_path / 'ext', _sources(tmp_path)[0]
    proc = _start_slow_build(tmp_path, root, source)
    try:
        _quick_build(root, source)
        assert len(_tmp_dirs(root)) == 1, "the live process's build folder must stay"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_keyboard_interrupt_during_build(tmp_path):
    root, sources = tmp_path / 'ext', _sources(tmp_path)

    def interrupted(name, srcs, build_dir, env):
        (build_dir / 'lock').write_text('1')
        (build_dir / f'{name}.py').write_text('VALUE = ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cuda_build.build_extension('demo', sources, ENV, root=root, builder=interrupted)
    assert list(root.iterdir()) == [], 'nothing may remain after an interrupted build'
    calls = []
    module = cuda_build.build_extension('demo', sources, ENV, root=root, builder=fake_builder(calls))
    assert module.VALUE == 42 and len(calls) == 1


def test_keyboard_interrupt_is_not_turned_into_a_fallback(monkeypatch):
    def interrupted(name, srcs, build_dir, env):
        raise KeyboardInterrupt

    monkeypatch.setattr(cuda_build, 'probe_environment', lambda: None)
    monkeypatch.setattr(cuda_build, 'current_env', lambda: ENV)
    monkeypatch.setattr(cuda_build, 'torch_builder', interrupted)
    with pytest.raises(KeyboardInterrupt):
        cuda_build.select('filtered_lrelu', 'auto')
    assert cuda_build._State.failure is None, 'the next call must try again'


def test_broken_cached_build_is_rebuilt(tmp_path):
    root, sources = tmp_path / 'ext', _sources(tmp_path)
    final = root / cuda_build.build_dir_name('demo', cuda_build.source_digest(sources), ENV)
    final.mkdir(parents=True)
    (final / 'demo.py').write_text('this is not python')
    (final / cuda_build.MANIFEST).write_text('{"module": "demo", "file": "demo.py"}')
    calls = []
    with pytest.warns(RuntimeWarning, match='discarding unusable cached build'):
        module = cuda_build.build_extension('demo', sources, ENV, root=root, builder=fake_builder(calls))
    assert module.VALUE == 42 and len(calls) == 1


def test_folder_without_manifest_is_ignored(tmp_path):
    root, sources = tmp_path / 'ext', _sources(tmp_path)
    final = root / cuda_build.build_dir_name('demo', cuda_build.source_digest(sources), ENV)
    final.mkdir(parents=True)
    (final / 'demo.py').write_text('VALUE = 1')  # e.g. copied by hand, incomplete
    calls = []
    assert cuda_build.build_extension('demo', sources, ENV, root=root, builder=fake_builder(calls)).VALUE == 42
    assert len(calls) == 1


def test_concurrent_finish_keeps_the_first_build(tmp_path):
    """If another process published the same build while we compiled, ours is used and discarded."""
    root, sources = tmp_path / 'ext', _sources(tmp_path)
    final = root / cuda_build.build_dir_name('demo', cuda_build.source_digest(sources), ENV)

    def racing_builder(name, srcs, build_dir, env):
        final.mkdir(parents=True)
        (final / 'demo.py').write_text('VALUE = 1')
        (final / cuda_build.MANIFEST).write_text('{"module": "demo", "file": "demo.py"}')
        return fake_builder([])(name, srcs, build_dir, env)

    assert cuda_build.build_extension('demo', sources, ENV, root=root, builder=racing_builder).VALUE == 42
    assert _tmp_dirs(root) == []
    assert cuda_build.build_extension('demo', sources, ENV, root=root, builder=fake_builder([])).VALUE == 1
