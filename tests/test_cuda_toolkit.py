"""Finding the CUDA toolkit and ninja, and checking nvcc against PyTorch (renderer/ops/cuda_toolkit.py).

Toolkits here are folders made by the tests, with a shell-script nvcc that answers
`--version` and `-dryrun` as the real one does; they run as real programs.
"""

from __future__ import annotations

import os
import shutil
import stat
import types
from pathlib import Path

import pytest
import torch

from renderer.ops import cuda_build, cuda_toolkit
from renderer.ops.cuda_toolkit import Toolkit, ToolkitError


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_toolkit(root: Path, release: str = '12.6', build: str = '12.6.85', headers: bool = True) -> Path:
    """A toolkit folder whose bin/nvcc prints what nvcc prints."""
    _executable(root / 'bin' / 'nvcc', f'''#!/bin/sh
case "$1" in
  --version) echo "nvcc: NVIDIA (R) Cuda compiler driver"
             echo "Cuda compilation tools, release {release}, V{build}"
             echo "Build cuda_{release}.r{release}/compiler.0_0" ;;
  -dryrun)   here=$(cd "$(dirname "$0")" && pwd)
             echo "#\\$ _NVVM_BRANCH_=nvvm" >&2
             echo "#\\$ _HERE_=$here" >&2
             echo "#\\$ TOP=$here/.." >&2 ;;
  *) exit 1 ;;
esac
''')
    if headers:
        (root / 'include').mkdir(parents=True, exist_ok=True)
        (root / 'include' / 'cuda_runtime_api.h').write_text('/* runtime API */\n')
    return root


def wrapper(path: Path, target: Path) -> Path:
    """A script that runs nvcc from elsewhere, as /usr/local/bin/nvcc does on some machines."""
    return _executable(path, f'#!/bin/sh\nexec {target} "$@"\n')


@pytest.fixture
def no_standard_toolkits(monkeypatch, tmp_path):
    """The machine's own /usr/local/cuda must not be found by these tests."""
    monkeypatch.setattr(cuda_toolkit, 'STANDARD_ROOTS', (str(tmp_path / 'usr-local-cuda'),))
    monkeypatch.setattr(cuda_toolkit, 'STANDARD_GLOB', (str(tmp_path / 'usr-local'), 'cuda-*'))


def which_only(found: dict):
    return lambda name: None if found.get(name) is None else str(found[name])


def test_a_wrapper_script_leads_to_the_real_toolkit(tmp_path, no_standard_toolkits):
    root = make_toolkit(tmp_path / 'opt' / 'cuda-12.6')
    nvcc = wrapper(tmp_path / 'usr' / 'bin' / 'nvcc', root / 'bin' / 'nvcc')
    toolkit = cuda_toolkit.find_toolkit(env={}, which=which_only({'nvcc': nvcc}))
    assert toolkit == Toolkit(root=root, version=(12, 6), build='V12.6.85')
    assert toolkit.nvcc == root / 'bin' / 'nvcc' and toolkit.version_text == '12.6'


def test_a_symlinked_nvcc_leads_to_its_toolkit(tmp_path, no_standard_toolkits):
    root = make_toolkit(tmp_path / 'cuda-12.4', release='12.4', build='12.4.99')
    (tmp_path / 'bin').mkdir()
    (tmp_path / 'bin' / 'nvcc').symlink_to(root / 'bin' / 'nvcc')
    toolkit = cuda_toolkit.find_toolkit(env={}, which=which_only({'nvcc': tmp_path / 'bin' / 'nvcc'}))
    assert toolkit.root.resolve() == root.resolve() and toolkit.version == (12, 4)


def test_cuda_home_comes_first_and_must_be_a_toolkit(tmp_path, no_standard_toolkits):
    home = make_toolkit(tmp_path / 'home-cuda', release='12.8', build='12.8.1')
    other = make_toolkit(tmp_path / 'other')
    which = which_only({'nvcc': other / 'bin' / 'nvcc'})
    assert cuda_toolkit.find_toolkit(env={'CUDA_HOME': str(home)}, which=which).root == home
    broken = make_toolkit(tmp_path / 'no-headers', headers=False)
    with pytest.raises(ToolkitError, match='CUDA_HOME=.*no-headers is not a CUDA toolkit.*cuda_runtime_api.h'):
        cuda_toolkit.find_toolkit(env={'CUDA_HOME': str(broken)}, which=which)
    assert cuda_toolkit.find_toolkit(env={'CUDA_PATH': str(home)}, which=lambda name: None).root == home


def test_a_toolkit_without_headers_is_passed_over(tmp_path, monkeypatch):
    """nvcc on PATH whose folder lacks the headers (a bare compiler): the standard location is used."""
    bare = make_toolkit(tmp_path / 'bare', headers=False)
    full = make_toolkit(tmp_path / 'usr-local' / 'cuda-12.6')
    older = make_toolkit(tmp_path / 'usr-local' / 'cuda-12.10', release='12.10', build='12.10.0')
    monkeypatch.setattr(cuda_toolkit, 'STANDARD_ROOTS', (str(tmp_path / 'missing'),))
    monkeypatch.setattr(cuda_toolkit, 'STANDARD_GLOB', (str(tmp_path / 'usr-local'), 'cuda-*'))
    toolkit = cuda_toolkit.find_toolkit(env={}, which=which_only({'nvcc': bare / 'bin' / 'nvcc'}))
    assert toolkit.root == older, 'the newest versioned folder first (12.10 > 12.6)'
    shutil.rmtree(older)
    assert cuda_toolkit.find_toolkit(env={}, which=which_only({'nvcc': bare / 'bin' / 'nvcc'})).root == full


def test_no_toolkit_says_where_it_looked(tmp_path, no_standard_toolkits):
    bare = make_toolkit(tmp_path / 'bare', headers=False)
    with pytest.raises(ToolkitError) as info:
        cuda_toolkit.find_toolkit(env={}, which=which_only({'nvcc': bare / 'bin' / 'nvcc'}))
    message = str(info.value)
    assert str(bare) in message and 'usr-local-cuda' in message and 'CUDA_HOME' in message
    with pytest.raises(ToolkitError, match='no CUDA toolkit'):
        cuda_toolkit.find_toolkit(env={}, which=lambda name: None)


def test_nvcc_that_prints_no_release_is_reported(tmp_path, no_standard_toolkits):
    root = make_toolkit(tmp_path / 'cuda')
    _executable(root / 'bin' / 'nvcc', '#!/bin/sh\necho "something else"\n')
    with pytest.raises(ToolkitError, match='printed no CUDA release'):
        cuda_toolkit.find_toolkit(env={'CUDA_HOME': str(root)})


def test_major_versions_must_match():
    toolkit = Toolkit(Path('/opt/cuda-13.0'), (13, 0), 'V13.0.88')
    assert cuda_toolkit.check_versions(toolkit, '13.2', '2.13.0+cu132') is None     # minor differences build
    message = cuda_toolkit.check_versions(toolkit, '12.6', '2.13.0+cu126')
    assert '/opt/cuda-13.0 is CUDA 13.0' in message and 'built with CUDA 12.6' in message
    assert 'install the CUDA 12.x toolkit' in message and 'whl/cu130' in message


def test_probe_reports_a_version_mismatch_before_any_build(monkeypatch, tmp_path):
    root = make_toolkit(tmp_path / 'cuda-13.0', release='13.0', build='13.0.88')
    monkeypatch.setenv('CUDA_HOME', str(root))
    monkeypatch.delenv('AFV_CUDA_OPS', raising=False)
    monkeypatch.setattr(torch.version, 'cuda', '12.6')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(cuda_build, 'build_extension', lambda *a, **k: pytest.fail('must not build'))
    cuda_build.reset_state()
    try:
        reason = cuda_build.probe_environment()
        assert 'is CUDA 13.0' in reason and 'CUDA 12.6' in reason
        with pytest.raises(cuda_build.CudaOpsUnavailable, match='is CUDA 13.0'):
            cuda_build.load_extension()
    finally:
        cuda_build.reset_state()


def test_probe_finds_ninja_beside_python_and_passes_the_tools_on(monkeypatch, tmp_path):
    root = make_toolkit(tmp_path / 'cuda-12.6')
    venv_python = _executable(tmp_path / 'venv' / 'bin' / 'python', '#!/bin/sh\n')
    ninja = _executable(tmp_path / 'venv' / 'bin' / 'ninja', '#!/bin/sh\necho 1.11.1\n')
    monkeypatch.setenv('CUDA_HOME', str(root))
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))          # neither nvcc nor ninja on PATH
    monkeypatch.setattr(cuda_toolkit.sys, 'executable', str(venv_python))   # as if run from that venv
    monkeypatch.delenv('AFV_CUDA_OPS', raising=False)
    monkeypatch.setattr(torch.version, 'cuda', '12.6')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i: (9, 0))
    cuda_build.reset_state()
    try:
        assert cuda_build.probe_environment() is None
        env = cuda_build.current_env()
        assert env.archs == ('sm_90',) and env.nvcc_version == 'V12.6.85'
        assert env.toolkit_root == str(root) and env.ninja == str(ninja)
    finally:
        cuda_build.reset_state()


def test_find_ninja(tmp_path):
    python = _executable(tmp_path / 'bin' / 'python', '#!/bin/sh\n')
    assert cuda_toolkit.find_ninja(lambda name: '/usr/bin/ninja', str(python)) == Path('/usr/bin/ninja')
    assert cuda_toolkit.find_ninja(lambda name: None, str(python)) is None
    (tmp_path / 'bin' / 'ninja').write_text('not executable')
    assert cuda_toolkit.find_ninja(lambda name: None, str(python)) is None
    ninja = _executable(tmp_path / 'bin' / 'ninja', '#!/bin/sh\n')
    assert cuda_toolkit.find_ninja(lambda name: None, str(python)) == ninja


def test_the_build_is_told_where_the_tools_are(monkeypatch, tmp_path):
    monkeypatch.delenv('CUDA_HOME', raising=False)
    monkeypatch.setenv('PATH', '/usr/bin')
    fake_cpp_extension = types.SimpleNamespace(CUDA_HOME=None)
    env = cuda_build.BuildEnv(('sm_90',), '2.13.0', '12.6', toolkit_root=str(tmp_path / 'cuda'),
                              ninja=str(tmp_path / 'venv' / 'bin' / 'ninja'))
    with cuda_build.build_tools(env, fake_cpp_extension):
        assert os.environ['CUDA_HOME'] == str(tmp_path / 'cuda') == fake_cpp_extension.CUDA_HOME
        assert os.environ['PATH'].split(os.pathsep) == [str(tmp_path / 'cuda' / 'bin'), str(tmp_path / 'venv' / 'bin'),
                                                        '/usr/bin']
    assert 'CUDA_HOME' not in os.environ and os.environ['PATH'] == '/usr/bin'
    assert fake_cpp_extension.CUDA_HOME is None


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='no nvcc on this machine')
def test_the_toolkit_of_this_machine():
    toolkit = cuda_toolkit.find_toolkit()
    assert (toolkit.root / 'include' / 'cuda_runtime_api.h').is_file() and toolkit.nvcc.is_file()
    assert toolkit.version[0] >= 11 and toolkit.build.startswith('V')
