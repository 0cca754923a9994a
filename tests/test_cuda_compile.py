"""The CUDA sources compile, even on a machine without a GPU.

The .cu files include no torch headers, so plain `nvcc -c` compiles them
(with the flags torch.utils.cpp_extension adds); ptxas warnings such as
register spills are errors. The binding (.cpp) is syntax-checked with the
host compiler against torch's headers and the CUDA runtime headers. Each test
is skipped, with the reason, when its tools are missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from renderer.ops import cuda_build, cuda_toolkit

ARCHS = ('80', '90')  # Ampere (A100) and Hopper (H100)
TORCH_NVCC_FLAGS = ['-D__CUDA_NO_HALF_OPERATORS__', '-D__CUDA_NO_HALF_CONVERSIONS__',
                    '-D__CUDA_NO_BFLOAT16_CONVERSIONS__', '-D__CUDA_NO_HALF2_OPERATORS__', '--expt-relaxed-constexpr']


def _toolkit():
    try:
        return cuda_toolkit.find_toolkit()
    except cuda_toolkit.ToolkitError:
        return None


def _nvcc():
    toolkit = _toolkit()
    return None if toolkit is None else str(toolkit.nvcc)


def _cuda_include():
    toolkit = _toolkit()
    return None if toolkit is None else toolkit.root / 'include'


@pytest.mark.skipif(_nvcc() is None, reason='nvcc not found (CUDA toolkit not installed): CUDA sources not compiled')
@pytest.mark.parametrize('source', [s for s in cuda_build.COMPILED_SOURCES if s.endswith('.cu')])
def test_kernels_compile_with_nvcc(source, tmp_path):
    gencode = [f'-gencode=arch=compute_{a},code=sm_{a}' for a in ARCHS]
    cmd = [_nvcc(), '-c', str(cuda_build.SOURCE_DIR / source), '-o', str(tmp_path / 'out.o'), '-O3', '-std=c++20',
           '-Xcompiler', '-fPIC', *TORCH_NVCC_FLAGS, *gencode, '-Xptxas', '-warn-spills,-warn-lmem-usage',
           '-Werror', 'all-warnings']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f'{" ".join(cmd)}\n{result.stdout}\n{result.stderr}'
    assert (tmp_path / 'out.o').stat().st_size > 0


def _torch_include():
    return Path(torch.__file__).parent / 'include'


@pytest.mark.skipif(shutil.which('g++') is None, reason='g++ not found: binding not checked')
@pytest.mark.skipif(_cuda_include() is None, reason='CUDA runtime headers not found: binding not checked')
@pytest.mark.skipif(not (_torch_include() / 'c10' / 'cuda' / 'CUDAStream.h').is_file(),
                    reason="this PyTorch install has no c10/cuda headers: binding not checked")
def test_binding_compiles_with_torch_headers(tmp_path):
    include = _torch_include()
    extra = []
    if not (include / 'c10' / 'cuda' / 'impl' / 'cuda_cmake_macros.h').is_file():
        # CPU wheels ship c10/cuda without this generated header; its content in CUDA wheels:
        stub = tmp_path / 'stub' / 'c10' / 'cuda' / 'impl'
        stub.mkdir(parents=True)
        (stub / 'cuda_cmake_macros.h').write_text('#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n')
        extra.append(f'-I{tmp_path / "stub"}')
    abi = int(getattr(torch._C, '_GLIBCXX_USE_CXX11_ABI', True))
    cmd = ['g++', '-std=c++20', '-fsyntax-only', '-Wall', '-Werror', '-DTORCH_EXTENSION_NAME=afv_check',
           '-DTORCH_API_INCLUDE_EXTENSION_H', f'-D_GLIBCXX_USE_CXX11_ABI={abi}',
           f'-I{cuda_build.SOURCE_DIR}', '-isystem', str(include), '-isystem',
           str(include / 'torch' / 'csrc' / 'api' / 'include'), '-isystem', sysconfig.get_paths()['include'],
           '-isystem', str(_cuda_include()), *extra, str(cuda_build.SOURCE_DIR / 'bindings.cpp')]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f'{" ".join(cmd)}\n{result.stderr[-5000:]}'


@pytest.mark.skipif(shutil.which('g++') is None, reason='g++ not found')
@pytest.mark.parametrize('header', ['bias_act.h', 'upfirdn2d.h', 'filtered_lrelu.h'])
def test_kernel_interfaces_are_plain_cpp(header, tmp_path):
    """The launcher headers need neither torch nor CUDA (the binding includes them)."""
    src = tmp_path / 'check.cpp'
    src.write_text(f'#include "{header}"\nint main() {{ return 0; }}\n')
    cmd = ['g++', '-std=c++17', '-fsyntax-only', '-Wall', '-Wextra', '-Werror', f'-I{cuda_build.SOURCE_DIR}', str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_kernel_sources_include_no_torch_headers():
    for path in cuda_build.hashed_sources():
        if path.suffix in ('.cu', '.h'):
            text = path.read_text()
            assert '<torch/' not in text and '<ATen/' not in text and '<c10/' not in text, path.name


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-v']))
