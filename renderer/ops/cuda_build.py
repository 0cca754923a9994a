"""Build the CUDA kernels on first use, cache the build, and report which implementation each op uses.

The kernels (renderer/ops/cuda/) form one torch extension, compiled with
torch.utils.cpp_extension and ninja the first time an op gets a CUDA tensor,
never at import. Builds are cached in

    $AFV_CACHE_DIR/torch_extensions/   (default: $XDG_CACHE_HOME/alias-free-viz, else ~/.cache/alias-free-viz)
        <name>-<sha256 of the sources>-<sm archs>-torch<version>-cu<version>-py<version>-<flags and nvcc>/

(the last part hashes the compiler flags and nvcc's full version, so a new toolkit or new
flags never reuse an old build). The toolkit and ninja are found by renderer.ops.cuda_toolkit,
which also checks nvcc's CUDA major version against PyTorch's before anything is compiled.

Each build runs in a fresh temporary folder inside that cache and is renamed
into place only when complete (manifest written last), so an interrupted build
(Ctrl-C, killed process) leaves nothing that the next run waits on or imports:
temporary folders of dead processes are deleted, no lock files are involved.

When the kernels cannot be used, 'auto' falls back to the reference path with
one warning per op and process that says why and how to fix it; impl='cuda'
raises `CudaOpsUnavailable` instead. `implementation_status()` tells what each
op uses (for display in the visualizer). Set AFV_CUDA_OPS=0 to never build,
AFV_CUDA_VERBOSE=1 to see the compiler output.

Before a loaded kernel serves its first call on a device, it is compared with the reference
path on small random inputs (renderer.ops.self_check; forward and gradients). A kernel that
disagrees is never used in that process: 'auto' warns once, with the measured difference,
and runs the reference path; impl='cuda' raises.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
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
from typing import Callable, Iterable, Iterator, Optional

import torch

from renderer.media.progress import report
from renderer.ops import cuda_toolkit, self_check

OPS = ('bias_act', 'upfirdn2d', 'filtered_lrelu')
EXTENSION = 'afv_cuda_ops'
SOURCE_DIR = Path(__file__).resolve().with_name('cuda')
COMPILED_SOURCES = ('bindings.cpp', 'bias_act.cu', 'upfirdn2d.cu', 'filtered_lrelu.cu')
MANIFEST = 'afv_build.json'
TMP_PREFIX = '.tmp-'
STALE_TMP_SECONDS = 24 * 3600  # a temporary build folder this old is abandoned whoever owns it
CFLAGS = ('-O3',)
CUDA_CFLAGS = ('-O3',)         # plus one -gencode per architecture


class CudaOpsUnavailable(RuntimeError):
    """The CUDA kernels cannot be used; `reason` says why and how to fix it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CudaFallbackWarning(RuntimeWarning):
    """An op got a CUDA tensor but runs the (slow) reference path."""


@dataclass(frozen=True)
class BuildEnv:
    """Everything besides the sources that a compiled extension depends on, and the tools to build it."""
    archs: tuple[str, ...]                 # e.g. ('sm_90',)
    torch_version: str
    cuda_version: str                      # torch.version.cuda
    python_version: str = f'{sys.version_info.major}{sys.version_info.minor}'
    nvcc_version: str = ''                 # nvcc's full version, e.g. 'V12.6.85'
    cflags: tuple[str, ...] = CFLAGS
    cuda_cflags: tuple[str, ...] = CUDA_CFLAGS
    toolkit_root: str = ''                 # passed to the build as CUDA_HOME (not part of the cache key)
    ninja: str = ''                        # the ninja to build with (not part of the cache key)

    def gencode(self) -> list[str]:
        return [f'-gencode=arch=compute_{a[3:]},code=sm_{a[3:]}' for a in self.archs]

    def tool_digest(self) -> str:
        """Hash of the compiler flags and nvcc's version (a new toolkit or flags never reuse a build)."""
        text = '\0'.join([*self.cflags, '|', *self.cuda_cflags, '|', self.nvcc_version])
        return hashlib.sha256(text.encode()).hexdigest()[:8]


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
            f'-cu{clean(env.cuda_version)}-py{env.python_version}-{env.tool_digest()}')


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
    with build_tools(env, cpp_extension):
        return cpp_extension.load(
            name=name, sources=[str(s) for s in sources], build_directory=str(build_dir),
            extra_cflags=list(env.cflags), extra_cuda_cflags=[*env.cuda_cflags, *env.gencode()],
            extra_include_paths=[str(SOURCE_DIR)], verbose=os.environ.get('AFV_CUDA_VERBOSE') == '1')


@contextlib.contextmanager
def build_tools(env: BuildEnv, cpp_extension: ModuleType) -> Iterator[None]:
    """While building: CUDA_HOME is the toolkit found, and its bin/ and ninja's folder lead PATH.

    torch.utils.cpp_extension reads CUDA_HOME when first imported, so its module value is set too."""
    saved_env = {key: os.environ.get(key) for key in ('CUDA_HOME', 'PATH')}
    saved_home = getattr(cpp_extension, 'CUDA_HOME', None)
    try:
        folders = [str(Path(env.toolkit_root) / 'bin')] if env.toolkit_root else []
        folders += [str(Path(env.ninja).parent)] if env.ninja else []
        os.environ['PATH'] = os.pathsep.join([*folders, saved_env['PATH'] or os.defpath])
        if env.toolkit_root:
            os.environ['CUDA_HOME'] = env.toolkit_root
            cpp_extension.CUDA_HOME = env.toolkit_root
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cpp_extension.CUDA_HOME = saved_home


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
            # The loaded file now lives (or its twin from the other process lives) in the final folder.
            module.__file__ = str(final / module_file)
            return module
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


# --- environment checks ----------------------------------------------------------------------

def probe_environment() -> Optional[str]:
    """Why the kernels cannot be built here (with a fix), or None when a build can be tried.

    Finds the toolkit and ninja (renderer.ops.cuda_toolkit) and checks nvcc's CUDA major version
    against PyTorch's, so that a mismatch is reported before anything is compiled."""
    if os.environ.get('AFV_CUDA_OPS', '1').strip() == '0':
        return 'CUDA kernels disabled by AFV_CUDA_OPS=0; fix: unset AFV_CUDA_OPS'
    if torch.version.cuda is None:
        return (f'this PyTorch build ({torch.__version__}) has no CUDA support; '
                f'fix: install a CUDA build of PyTorch')
    if not torch.cuda.is_available():
        return 'no CUDA device (torch.cuda.is_available() is False)'
    try:
        toolkit = cuda_toolkit.find_toolkit()
    except cuda_toolkit.ToolkitError as e:
        return f'{e} (CUDA {torch.version.cuda}, as PyTorch)'
    mismatch = cuda_toolkit.check_versions(toolkit, str(torch.version.cuda), torch.__version__)
    if mismatch is not None:
        return mismatch
    ninja = cuda_toolkit.find_ninja()
    if ninja is None:
        return f'ninja not found on PATH or beside {sys.executable}; fix: pip install ninja'
    _State.tools = (toolkit, ninja)
    return None


def current_env() -> BuildEnv:
    """Build environment for every visible CUDA device's architecture, with the tools `probe_environment` found."""
    archs = sorted({'sm_%d%d' % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    toolkit, ninja = _State.tools if _State.tools is not None else (None, None)
    return BuildEnv(archs=tuple(archs), torch_version=torch.__version__, cuda_version=str(torch.version.cuda),
                    nvcc_version=toolkit.build if toolkit else '', toolkit_root=str(toolkit.root) if toolkit else '',
                    ninja=str(ninja) if ninja else '')


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
    tools: Optional[tuple] = None           # (cuda_toolkit.Toolkit, ninja path) found by probe_environment
    verdicts: dict = {}                     # (op, device) -> None (passed its self-check) or why it failed
    checking: set = set()                   # (op, device) whose self-check is running now


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


def select(op: str, impl: str, device: Optional[torch.device] = None) -> str:
    """Implementation for a call with CUDA tensors: 'cuda', or 'ref' (warned once) for 'auto'.

    The kernel serves `device` only after it passed its self-check there (see `verify`)."""
    if _State.module is None:
        try:
            load_extension()
        except CudaOpsUnavailable as exc:
            return _fall_back(op, impl, exc.reason)
    failure = verify(op, device)
    if failure is not None:
        return _fall_back(op, impl, failure)
    note_call(op, 'cuda', None)
    return 'cuda'


def _fall_back(op: str, impl: str, reason: str) -> str:
    if impl == 'cuda':
        raise CudaOpsUnavailable(f"{op}: impl='cuda' is not available: {reason}") from None
    if op not in _State.warned:
        _State.warned.add(op)
        warnings.warn(f'{op}: running the slow reference path on CUDA tensors instead of the CUDA kernel: '
                      f'{reason}. (renderer.ops.implementation_status() shows what each op uses.)',
                      CudaFallbackWarning, stacklevel=5)
    note_call(op, 'ref', reason)
    return 'ref'


def verify(op: str, device: Optional[torch.device]) -> Optional[str]:
    """None when op's kernel may serve `device`; else why not. The first call per (op, device) runs
    renderer.ops.self_check; a kernel that fails it is never used on that device in this process."""
    key = (op, str(device))
    if key in _State.verdicts:
        return _State.verdicts[key]
    if key in _State.checking or device is None or not self_check.registered(op):
        return None                          # The self-check's own kernel calls, or nothing to check with.
    with _BUILD_LOCK:
        if key in _State.verdicts:
            return _State.verdicts[key]
        _State.checking.add(key)
        try:
            report = self_check.check(op, device)
        except Exception as e:  # noqa: BLE001 - a check that cannot even run proves nothing good
            report = self_check.CheckReport(op, False, math.inf, 'preparing the cases', 0.0, f'{type(e).__name__}: {e}')
        finally:
            _State.checking.discard(key)
        _State.verdicts[key] = None if report.ok else self_check_failure(report, device)
    return _State.verdicts[key]


def self_check_failure(report: self_check.CheckReport, device: torch.device) -> str:
    """The reason given for a kernel that failed its self-check, with what to put in a bug report."""
    try:
        gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else str(device)
    except Exception:  # noqa: BLE001 - the name is only for the report
        gpu = str(device)
    return (f'the built kernel failed its self-check on {device} ({report.describe()}), so it is not used in '
            f'this process; please report this with: GPU {gpu}, PyTorch {torch.__version__}, '
            f'CUDA {torch.version.cuda}, nvcc {_State.tools[0].build if _State.tools else "?"}, '
            f'kernels {getattr(_State.module, "__file__", "?")}')


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
    failed = sorted({op for (op, _), verdict in _State.verdicts.items() if verdict is not None})
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
        entry = dict(common, last_call=None if last is None else dict(impl=last[0], reason=last[1]))
        if op in failed:
            reason = next(v for (name, _), v in _State.verdicts.items() if name == op and v is not None)
            entry.update(impl='ref', state='failed self-check', reason=reason)
        status[op] = entry
    return status


def reset_state() -> None:
    """Forget the loaded module, failures and warnings (tests only)."""
    _State.module = None
    _State.failure = None
    _State.warned = set()
    _State.last_call = {}
    _State.tools = None
    _State.verdicts = {}
    _State.checking = set()
