"""Build the CUDA kernels on first use, cache the build, and report which implementation each op uses.

The kernels (renderer/ops/cuda/) form one torch extension, compiled with
torch.utils.cpp_extension and ninja the first time an op gets a CUDA tensor,
never at import. Builds are cached in

    $AFV_CACHE_DIR/torch_extensions/   (default: $XDG_CACHE_HOME/alias-free-viz, else ~/.cache/alias-free-viz)
        <name>-<sha256 of the sources>-<sm archs>-torch<version>-cu<version>-py<version>/

Each build runs in a fresh temporary folder inside that cache and is renamed
into place only when complete (manifest written last), so an interrupted build
(Ctrl-C, killed process) leaves nothing that the next run waits on or imports:
temporary folders of dead processes are deleted, no lock files are involved.

When the kernels cannot be used, 'auto' falls back to the reference path with
one warning per op and process that says why and how to fix it; impl='cuda'
raises `CudaOpsUnavailable` instead. `implementation_status()` tells what each
op uses (for display in the visualizer). Set AFV_CUDA_OPS=0 to never build,
AFV_CUDA_VERBOSE=1 to see the compiler output.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Optional

import torch

from renderer.media.progress import report

OPS = ('bias_act', 'upfirdn2d', 'filtered_lrelu')
EXTENSION = 'afv_cuda_ops'
SOURCE_DIR = Path(__file__).resolve().with_name('cuda')
COMPILED_SOURCES = ('bindings.cpp', 'bias_act.cu', 'upfirdn2d.cu', 'filtered_lrelu.cu')
MANIFEST = 'afv_build.json'
TMP_PREFIX = '.tmp-'
STALE_TMP_SECONDS = 24 * 3600  # a temporary build folder this old is abandoned whoever owns it


class CudaOpsUnavailable(RuntimeError):
    """The CUDA kernels cannot be used; `reason` says why and how to fix it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CudaFallbackWarning(RuntimeWarning):
    """An op got a CUDA tensor but runs the (slow) reference path."""


@dataclass(frozen=True)
class BuildEnv:
    """Everything besides the sources that a compiled extension depends on."""
    archs: tuple[str, ...]                 # e.g. ('sm_90',)
    torch_version: str
    cuda_version: str
    python_version: str = f'{sys.version_info.major}{sys.version_info.minor}'


# A builder compiles `sources` into `build_dir` and returns the imported module.
Builder = Callable[[str, list, Path, BuildEnv], ModuleType]


# --- cache folder and naming ----------------------------------------------------------------

def cache_root() -> Path:
    """$AFV_CACHE_DIR, else $XDG_CACHE_HOME/alias-free-viz, else ~/.cache/alias-free-viz."""
    override = os.environ.get('AFV_CACHE_DIR')
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get('XDG_CACHE_HOME')
    return (Path(xdg).expanduser() if xdg else Path.home() / '.cache') / 'alias-free-viz'


def extensions_dir() -> Path:
    return cache_root() / 'torch_extensions'


def source_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and contents of the source files (order-independent)."""
    h = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        h.update(path.name.encode() + b'\0')
        h.update(path.read_bytes())
        h.update(b'\0')
    return h.hexdigest()


def build_dir_name(name: str, digest: str, env: BuildEnv) -> str:
    def clean(text: str) -> str:
        return ''.join(ch if ch.isalnum() or ch in '.-_' else '_' for ch in text)
    return (f'{name}-{digest[:16]}-{"+".join(env.archs)}-torch{clean(env.torch_version)}'
            f'-cu{clean(env.cuda_version)}-py{env.python_version}')


def hashed_sources() -> list[Path]:
    """Every file the build depends on: the compiled sources and the headers."""
    return sorted(p for p in SOURCE_DIR.iterdir() if p.suffix in ('.h', '.cu', '.cpp', '.cuh'))


# --- building -------------------------------------------------------------------------------

def import_module_file(module_name: str, path: Path) -> ModuleType:
    """Import a module (extension .so or .py) from a file path without touching sys.path."""
    spec = importlib.util.spec_from_file_location(module_name, str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f'cannot import {module_name} from {path}')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_builder(name: str, sources: list, build_dir: Path, env: BuildEnv) -> ModuleType:
    """Compile with torch.utils.cpp_extension (ninja, nvcc) for exactly `env.archs`."""
    from torch.utils import cpp_extension  # noqa: PLC0415 - heavy; only when building
    gencode = [f'-gencode=arch=compute_{a[3:]},code=sm_{a[3:]}' for a in env.archs]
    return cpp_extension.load(
        name=name, sources=[str(s) for s in sources], build_directory=str(build_dir),
        extra_cflags=['-O3'], extra_cuda_cflags=['-O3', *gencode], extra_include_paths=[str(SOURCE_DIR)],
        verbose=os.environ.get('AFV_CUDA_VERBOSE') == '1')


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # builds in this process hold _BUILD_LOCK: any folder of ours is left over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return True


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _tmp_prefix(name: str) -> str:
    """Temporary build folders are named .tmp-<pid>-<host hash>-<name>-<random>."""
    return f'{TMP_PREFIX}{os.getpid()}-{_host_tag()}-{name}-'


def clean_stale_tmp_dirs(root: Path) -> list[Path]:
    """Delete temporary build folders left by dead processes (or older than a day); returns them."""
    removed = []
    host = _host_tag()
    for path in root.glob(f'{TMP_PREFIX}*'):
        parts = path.name[len(TMP_PREFIX):].split('-', 2)  # pid, host hash, name and random suffix
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            continue
        stale = age > STALE_TMP_SECONDS
        if not stale and len(parts) == 3 and parts[1] == host and parts[0].isdigit():
            stale = not _pid_alive(int(parts[0]))
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _import_cached(final: Path) -> Optional[ModuleType]:
    """The module of a complete cached build, or None (a broken one is deleted)."""
    manifest = final / MANIFEST
    if not manifest.is_file():
        if final.exists():  # cannot come from our atomic rename; treat as garbage
            shutil.rmtree(final, ignore_errors=True)
        return None
    try:
        info = json.loads(manifest.read_text())
        return import_module_file(info['module'], final / info['file'])
    except Exception as exc:  # noqa: BLE001 - any failure means: rebuild
        warnings.warn(f'discarding unusable cached build {final}: {exc}', RuntimeWarning, stacklevel=3)
        shutil.rmtree(final, ignore_errors=True)
        return None


_BUILD_LOCK = threading.RLock()


def build_extension(name: str, sources: list, env: BuildEnv, *, root: Optional[Path] = None,
                    builder: Optional[Builder] = None, hashed: Optional[list] = None) -> ModuleType:
    """Import the cached build of `sources` for `env`, building it first if needed.

    `builder` compiles into a fresh temporary folder (default: `torch_builder`);
    the folder is renamed into place only after the manifest is written.
    Errors (and KeyboardInterrupt) propagate; the temporary folder is removed.
    """
    root = Path(root) if root is not None else extensions_dir()
    builder = builder or torch_builder
    with _BUILD_LOCK:
        root.mkdir(parents=True, exist_ok=True)
        final = root / build_dir_name(name, source_digest(hashed or sources), env)
        module = _import_cached(final)
        if module is not None:
            return module
        report('building CUDA kernels', 0, None, 'first use on this machine: a minute or two')
        clean_stale_tmp_dirs(root)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(name), dir=root))
        try:
            module = builder(name, list(sources), tmp, env)
            module_file = Path(module.__file__).resolve().relative_to(tmp.resolve())
            info = dict(module=module.__name__, file=str(module_file), sources=[Path(s).name for s in sources],
                        archs=list(env.archs), torch=env.torch_version, cuda=env.cuda_version, built=time.time())
            (tmp / (MANIFEST + '.part')).write_text(json.dumps(info, indent=1))
            os.replace(tmp / (MANIFEST + '.part'), tmp / MANIFEST)
            try:
                os.rename(tmp, final)
            except OSError:  # another process finished the same build first: use ours, drop the folder
                shutil.rmtree(tmp, ignore_errors=True)
            return module
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


# --- environment checks ----------------------------------------------------------------------

def _find_nvcc() -> Optional[str]:
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if os.environ.get(var) and os.path.isfile(os.path.join(os.environ[var], 'bin', 'nvcc')):
            return os.path.join(os.environ[var], 'bin', 'nvcc')
    found = shutil.which('nvcc')
    if found:
        return found
    return '/usr/local/cuda/bin/nvcc' if os.path.isfile('/usr/local/cuda/bin/nvcc') else None


def probe_environment() -> Optional[str]:
    """Why the kernels cannot be built here (with a fix), or None when a build can be tried."""
    if os.environ.get('AFV_CUDA_OPS', '1').strip() == '0':
        return 'CUDA kernels disabled by AFV_CUDA_OPS=0; fix: unset AFV_CUDA_OPS'
    if torch.version.cuda is None:
        return (f'this PyTorch build ({torch.__version__}) has no CUDA support; '
                f'fix: install a CUDA build of PyTorch')
    if not torch.cuda.is_available():
        return 'no CUDA device (torch.cuda.is_available() is False)'
    if _find_nvcc() is None:
        return (f'CUDA toolkit not found (no nvcc in $CUDA_HOME/bin, on PATH or in /usr/local/cuda/bin); '
                f'fix: install the CUDA toolkit {torch.version.cuda} (as PyTorch) and set CUDA_HOME')
    if shutil.which('ninja') is None:
        return 'ninja not found on PATH; fix: pip install ninja'
    return None


def current_env() -> BuildEnv:
    """Build environment for every visible CUDA device's architecture."""
    archs = sorted({'sm_%d%d' % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    return BuildEnv(archs=tuple(archs), torch_version=torch.__version__, cuda_version=str(torch.version.cuda))


def _first_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if 'error' in line.lower() and not line.lower().startswith('error building extension'):
            return line[:300]
    return lines[0][:300] if lines else 'unknown error'


def _describe_build_failure(exc: BaseException) -> str:
    text = f'{type(exc).__name__}: {exc}'
    log = extensions_dir() / f'{EXTENSION}-last-failure.log'
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text)
        where = f'; full log: {log}'
    except OSError:
        where = ''
    lowered = text.lower()
    if 'cuda_home' in lowered or ('nvcc' in lowered and 'not found' in lowered):
        fix = f'install the CUDA toolkit {torch.version.cuda} and set CUDA_HOME'
    elif 'ninja' in lowered:
        fix = 'pip install ninja'
    else:
        fix = 'check the log (AFV_CUDA_VERBOSE=1 shows the compiler output), or set AFV_CUDA_OPS=0 to skip the build'
    return f'CUDA build failed: {_first_error_line(str(exc))}{where}; fix: {fix}'


# --- per-process state and selection ----------------------------------------------------------

class _State:
    module: Optional[ModuleType] = None
    failure: Optional[str] = None
    warned: set = set()
    last_call: dict = {}


def load_extension(name: str = EXTENSION) -> ModuleType:
    """The compiled kernels (built on first use); raises CudaOpsUnavailable with the reason.

    A failure is remembered for the rest of the process (no retry on every call).
    """
    if name != EXTENSION:
        raise ValueError(f'unknown extension {name!r}; the CUDA ops are in {EXTENSION!r}')
    if _State.module is not None:
        return _State.module
    with _BUILD_LOCK:
        if _State.module is not None:
            return _State.module
        if _State.failure is not None:
            raise CudaOpsUnavailable(_State.failure)
        reason = probe_environment()
        if reason is not None:
            _State.failure = reason
            raise CudaOpsUnavailable(reason)
        try:
            sources = [SOURCE_DIR / s for s in COMPILED_SOURCES]
            _State.module = build_extension(EXTENSION, sources, current_env(), hashed=hashed_sources())
        except Exception as exc:  # noqa: BLE001 - every build failure becomes a fallback reason
            _State.failure = _describe_build_failure(exc)
            raise CudaOpsUnavailable(_State.failure) from exc
        return _State.module


def note_call(op: str, impl: str, reason: Optional[str]) -> None:
    """Record what an op's latest call ran (for `implementation_status`)."""
    _State.last_call[op] = (impl, reason)


def select(op: str, impl: str) -> str:
    """Implementation for a call with CUDA tensors: 'cuda', or 'ref' (warned once) for 'auto'."""
    if _State.module is not None:
        _State.last_call[op] = ('cuda', None)
        return 'cuda'
    try:
        load_extension()
    except CudaOpsUnavailable as exc:
        if impl == 'cuda':
            raise CudaOpsUnavailable(f"{op}: impl='cuda' is not available: {exc.reason}") from None
        if op not in _State.warned:
            _State.warned.add(op)
            warnings.warn(f'{op}: running the slow reference path on CUDA tensors instead of the CUDA kernel: '
                          f'{exc.reason}. (renderer.ops.implementation_status() shows what each op uses.)',
                          CudaFallbackWarning, stacklevel=4)
        note_call(op, 'ref', exc.reason)
        return 'ref'
    note_call(op, 'cuda', None)
    return 'cuda'


def extension() -> ModuleType:
    """The loaded kernels; only valid after `select` returned 'cuda'."""
    return _State.module if _State.module is not None else load_extension()


def implementation_status(build: bool = False) -> dict[str, dict]:
    """What each op uses for CUDA tensors with impl='auto', and why.

    Per op: 'impl' ('cuda' or 'ref'), 'state' ('loaded', 'not built', 'unavailable'),
    'reason', and 'last_call': (impl, reason) of the op's latest call, or None.
    build=True builds (or loads the cached build) now instead of reporting 'not built'.
    """
    if build and _State.module is None and _State.failure is None:
        try:
            load_extension()
        except CudaOpsUnavailable:
            pass
    if _State.module is not None:
        common = dict(impl='cuda', state='loaded', reason=f'CUDA kernels loaded from {_State.module.__file__}')
    elif _State.failure is not None:
        common = dict(impl='ref', state='unavailable', reason=_State.failure)
    else:
        reason = probe_environment()
        if reason is not None:
            common = dict(impl='ref', state='unavailable', reason=reason)
        else:
            common = dict(impl='cuda', state='not built',
                          reason=f'CUDA kernels build on the first call with a CUDA tensor (cache: {extensions_dir()})')
    status = {}
    for op in OPS:
        last = _State.last_call.get(op)
        status[op] = dict(common, last_call=None if last is None else dict(impl=last[0], reason=last[1]))
    return status


def reset_state() -> None:
    """Forget the loaded module, failures and warnings (tests only)."""
    _State.module = None
    _State.failure = None
    _State.warned = set()
    _State.last_call = {}
