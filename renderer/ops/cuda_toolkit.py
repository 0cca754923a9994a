"""Find the CUDA toolkit and ninja that a kernel build needs, and check them against PyTorch.

PyTorch's extension builder finds the toolkit on its own only in the common layouts. Here
a toolkit root is a folder that really holds `include/cuda_runtime_api.h` and `bin/nvcc`;
it is looked for in this order:

1. `$CUDA_HOME`, then `$CUDA_PATH` (when set, it must be a toolkit root: no silent fallback);
2. where the `nvcc` on PATH really lives: nvcc itself is asked (`nvcc -dryrun` prints its
   own folder), which also finds the toolkit behind a wrapper script such as
   `/usr/local/bin/nvcc` -> `exec /usr/local/cuda-13.0/bin/nvcc`; then the folder above its
   resolved path;
3. `/usr/local/cuda`, then `/usr/local/cuda-*` (newest first).

The build is told the root explicitly (CUDA_HOME), so headers and libcudart come from the
same toolkit as nvcc. nvcc's CUDA major version must equal the one PyTorch was built with
(`torch.version.cuda`): a mismatch is reported before anything is compiled, with what to
install. ninja is taken from PATH or from the folder of the running Python (a virtual
environment's `bin/`, where `pip install ninja` puts it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

RUNTIME_HEADER = Path('include') / 'cuda_runtime_api.h'
NVCC_TIMEOUT_S = 60.0
STANDARD_ROOTS = ('/usr/local/cuda',)
STANDARD_GLOB = ('/usr/local', 'cuda-*')

# run(argv) -> (exit status, stdout + stderr); injectable for tests.
Runner = Callable[[Sequence[str]], tuple[int, str]]
Which = Callable[[str], Optional[str]]


class ToolkitError(RuntimeError):
    """No usable CUDA toolkit; the message says why and what to do."""


@dataclass(frozen=True)
class Toolkit:
    root: Path                      # Holds include/cuda_runtime_api.h and bin/nvcc.
    version: tuple[int, int]        # CUDA release of nvcc, e.g. (12, 6).
    build: str                      # nvcc's full version, e.g. 'V12.6.85' (part of the build cache key).

    @property
    def nvcc(self) -> Path:
        return self.root / 'bin' / 'nvcc'

    @property
    def version_text(self) -> str:
        return f'{self.version[0]}.{self.version[1]}'


def _run(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=NVCC_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)
    return done.returncode, done.stdout + done.stderr


def _which(name: str) -> Optional[str]:
    import shutil
    return shutil.which(name)


def is_toolkit_root(root: Path) -> bool:
    return (root / RUNTIME_HEADER).is_file() and (root / 'bin' / 'nvcc').is_file()


def nvcc_home(nvcc: str, run: Runner = _run) -> Optional[Path]:
    """The toolkit root that `nvcc` (possibly a wrapper script) really runs from, as nvcc reports it."""
    status, text = run([nvcc, '-dryrun', '-E', '-x', 'cu', os.devnull])
    if status != 0:
        return None
    match = re.search(r'^#\$ _HERE_=(.+)$', text, re.MULTILINE)
    return Path(match.group(1).strip()).parent if match else None


def candidate_roots(env: Mapping[str, str], which: Which = _which, run: Runner = _run) -> list[tuple[str, Path]]:
    """(where it came from, root) in the order they are tried; `$CUDA_HOME`/`$CUDA_PATH` first."""
    candidates = [(f'${var}', Path(env[var]).expanduser()) for var in ('CUDA_HOME', 'CUDA_PATH') if env.get(var)]
    on_path = which('nvcc')
    if on_path:
        home = nvcc_home(on_path, run)
        if home is not None:
            candidates.append((f'nvcc on PATH ({on_path})', home))
        candidates.append((f'nvcc on PATH ({on_path})', Path(os.path.realpath(on_path)).parent.parent))
    candidates += [('standard location', Path(root)) for root in STANDARD_ROOTS]
    folder, pattern = STANDARD_GLOB
    versioned = sorted(Path(folder).glob(pattern), key=lambda p: _version_key(p.name), reverse=True)
    candidates += [('standard location', root) for root in versioned]
    return candidates


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', name))


def nvcc_version(nvcc: Path, run: Runner = _run) -> tuple[tuple[int, int], str]:
    """((major, minor), full version) from `nvcc --version`."""
    status, text = run([str(nvcc), '--version'])
    release = re.search(r'release (\d+)\.(\d+)', text)
    if status != 0 or release is None:
        raise ToolkitError(f'{nvcc} --version failed or printed no CUDA release: {text.strip()[:200]!r}')
    build = re.search(r'\bV(\d+\.\d+\.\d+)', text)
    return (int(release.group(1)), int(release.group(2))), build.group(0) if build else release.group(0)


def find_toolkit(env: Optional[Mapping[str, str]] = None, which: Which = _which, run: Runner = _run) -> Toolkit:
    """The CUDA toolkit to build with; raises ToolkitError saying what is missing and what to do."""
    env = os.environ if env is None else env
    tried = []
    for origin, root in candidate_roots(env, which, run):
        if is_toolkit_root(root):
            version, build = nvcc_version(root / 'bin' / 'nvcc', run)
            return Toolkit(root=root, version=version, build=build)
        if origin.startswith('$'):
            raise ToolkitError(f'{origin[1:]}={root} is not a CUDA toolkit (it lacks {RUNTIME_HEADER} or bin/nvcc); '
                               f'fix: point {origin[1:]} at the toolkit folder that holds bin/nvcc and include/')
        tried.append(str(root))
    where = f' (looked in {", ".join(dict.fromkeys(tried))})' if tried else ''
    raise ToolkitError(f'no CUDA toolkit with nvcc and {RUNTIME_HEADER} found{where}; '
                       f'fix: install the CUDA toolkit and set CUDA_HOME to its folder')


def check_versions(toolkit: Toolkit, torch_cuda: str, torch_version: str) -> Optional[str]:
    """Why this toolkit cannot build for this PyTorch (with the fix), or None when the majors agree."""
    try:
        torch_major = int(torch_cuda.split('.')[0])
    except ValueError:
        return f'cannot read the CUDA version of this PyTorch build ({torch_cuda!r})'
    if toolkit.version[0] == torch_major:
        return None
    return (f'the CUDA toolkit at {toolkit.root} is CUDA {toolkit.version_text}, but this PyTorch ({torch_version}) '
            f'was built with CUDA {torch_cuda}; kernels built with one major version cannot load into the other. '
            f'Fix: install the CUDA {torch_major}.x toolkit and set CUDA_HOME to it, or install a PyTorch built for '
            f'CUDA {toolkit.version[0]} (pip install torch --index-url '
            f'https://download.pytorch.org/whl/cu{toolkit.version[0]}{toolkit.version[1]})')


def find_ninja(which: Which = _which, executable: Optional[str] = None) -> Optional[Path]:
    """ninja on PATH, else next to the running Python (a virtual environment's bin/), else None."""
    found = which('ninja')
    if found:
        return Path(found)
    beside = Path(executable or sys.executable).parent / ('ninja.exe' if os.name == 'nt' else 'ninja')
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None
