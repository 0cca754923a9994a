"""Restricted unpickler for published StyleGAN2 / StyleGAN3 network pickles (docs/checkpoint-format.md).

A published pickle stores each network module as a call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta`
holds the Python source of the module that defines the class. The ordinary
loader imports and executes that source: opening a stranger's pickle runs the
stranger's code. This unpickler instead

- resolves only the globals in `allowed_globals()` (tensor and storage
  rebuilding, `Parameter`, `OrderedDict`, `EasyDict`, numpy array / dtype /
  scalar reconstruction under `numpy.core` and `numpy._core`, a few builtin
  containers, torch dtypes) and refuses every other global with
  `UnsafePickleError` naming the global and the file;
- maps the persistence reconstruct function to `PersistentRecord`, an inert
  record of the class name and the state dict: `module_src` is never executed,
  compiled or kept (only its length is recorded);
- deserialises tensor storages (`torch.storage._load_from_bytes`) with
  `torch.load(..., weights_only=True)`, never with a plain unpickler.

Callables handed to the pickle are wrappers that check their arguments and
refuse pickle BUILD instructions, so a file cannot alter them for later loads.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import math
import pickle
import re
import warnings
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from renderer.errors import NetworkLoadError, UnsafePickleError

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

PERSISTENCE_MODULE = 'torch_utils.persistence'
PERSISTENCE_FUNCTION = '_reconstruct_persistent_obj'
MAX_PERSISTENCE_VERSION = 6          # Highest `meta['version']` of the persistence format we understand.
_MAX_NUMPY_RECONSTRUCT_ELEMENTS = 1 << 20  # numpy's own pickles reconstruct a (0,)-shaped array first.
_TORCH_DTYPE_NAMES = ('float16', 'float32', 'float64', 'bfloat16', 'complex64', 'complex128',
                      'uint8', 'int8', 'int16', 'int32', 'int64', 'bool')


class PersistentRecord:
    """An inert stand-in for one persistent network object: its class name and state (the module's __dict__)."""

    __slots__ = ('class_name', 'version', 'state', 'module_src_length')

    def __init__(self, class_name: str, version: int, state: dict, module_src_length: int):
        self.class_name = class_name
        self.version = version
        self.state = state
        self.module_src_length = module_src_length

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError('a persistent object was followed by a BUILD instruction')

    def __repr__(self) -> str:
        return f'PersistentRecord({self.class_name!r}, version={self.version})'


class _Sealed(type):
    """Metaclass that forbids setting class attributes (a pickle BUILD on the class itself)."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise AttributeError(f'{cls.__name__} is read-only')


class EasyDict(dict, metaclass=_Sealed):
    """Stand-in for `dnnlib.util.EasyDict`: a dict whose items are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]


class _SafeCallable:
    """A wrapped allowed function: positional arguments only, immune to pickle BUILD."""

    __slots__ = ('_fn', '_name')

    def __init__(self, fn: Callable, name: str):
        self._fn = fn
        self._name = name

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f'BUILD instruction applied to {self._name}')

    def __repr__(self) -> str:
        return f'<allowed {self._name}>'


# ----------------------------------------------------------------------------------------------
# Wrapped reconstruction functions.

def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Record a persistent object without executing its `module_src`."""
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError(f'persistent object metadata is a {type(meta).__name__}, expected a dict')
    if meta.get('type') != 'class':
        raise pickle.UnpicklingError(f"persistent object of type {meta.get('type')!r}; only 'class' is supported")
    version = meta.get('version')
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_PERSISTENCE_VERSION:
        raise pickle.UnpicklingError(f'persistence format version {version!r} is not supported '
                                     f'(known: 1 to {MAX_PERSISTENCE_VERSION})')
    class_name = meta.get('class_name')
    if not isinstance(class_name, str) or not class_name:
        raise pickle.UnpicklingError('persistent object without a class name')
    module_src = meta.get('module_src')
    if not isinstance(module_src, str):
        raise pickle.UnpicklingError(f'persistent object {class_name!r} without module source text')
    state = meta.get('state')
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f'persistent object {class_name!r} has a {type(state).__name__} state, '
                                     f'expected a dict')
    return PersistentRecord(class_name, version, state, len(module_src))


def _weights_only_reason(error: Exception) -> str:
    """The informative part of a torch weights-only loader error (without its advice to load unsafely)."""
    text = str(error).split('WeightsUnpickler error:', 1)[-1]
    advice = ('weights_only', 'Weights only load failed', 'trusted source', 'safe_globals', 'documentation',
              'file an issue', 'allowlist')
    sentences = [s.strip() for s in re.split(r'(?<=\.)\s+|\n+', text) if s.strip()]
    kept = [s for s in sentences if not any(a in s for a in advice)]
    return ' '.join(kept)[:300] or type(error).__name__


def _load_storage_from_bytes(data: Any) -> torch.storage.TypedStorage:
    """`torch.storage._load_from_bytes`, but with torch's weights-only loader."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f'tensor storage payload is a {type(data).__name__}, expected bytes')
    try:
        storage = torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except Exception as e:
        raise pickle.UnpicklingError(f'tensor storage refused by the weights-only loader: '
                                     f'{_weights_only_reason(e)}') from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f'tensor storage payload holds a {type(storage).__name__}, expected a storage')
    return storage


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                       for v in value):
        raise pickle.UnpicklingError(f'tensor {what} must be a tuple of integers, got {value!r:.80}')
    return tuple(value)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2` after checking the view lies inside the storage; hooks are dropped."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f'tensor rebuilt from a {type(storage).__name__}, expected a storage')
    size = _int_tuple(size, 'size')
    stride = _int_tuple(stride, 'stride')
    if not isinstance(storage_offset, int) or storage_offset < 0 or len(size) != len(stride) \
            or any(v < 0 for v in size + stride):
        raise pickle.UnpicklingError(f'invalid tensor view: offset {storage_offset!r}, size {size}, stride {stride}')
    if math.prod(size) > 0:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.size():
            raise pickle.UnpicklingError(f'tensor view (size {list(size)}, stride {list(stride)}, offset '
                                         f'{storage_offset}) exceeds its storage of {storage.size()} elements')
    if metadata:
        raise pickle.UnpicklingError('tensor with extra metadata (conjugate / negative bits) is not supported')
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> torch.nn.Parameter:
    """`torch._utils._rebuild_parameter(_with_state)`: hooks and extra Python state are dropped."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f'parameter rebuilt from a {type(data).__name__}, expected a tensor')
    return torch.nn.Parameter(data, requires_grad=False)


def _numpy_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """numpy's array reconstruction (`multiarray._reconstruct`), for plain ndarrays of modest size only."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f'numpy array reconstruction of {subtype!r:.60}, expected numpy.ndarray')
    shape = _int_tuple(shape if isinstance(shape, (tuple, list)) else (shape,), 'shape')
    if any(n < 0 for n in shape) or math.prod(shape) > _MAX_NUMPY_RECONSTRUCT_ELEMENTS:
        raise pickle.UnpicklingError(f'numpy array reconstruction with shape {shape}')
    return _np_multiarray._reconstruct(subtype, shape, typecode)


def _numpy_scalar(dtype: Any, *data: Any) -> Any:
    """numpy's scalar reconstruction (`multiarray.scalar`)."""
    if not isinstance(dtype, np.dtype) or len(data) > 1:
        raise pickle.UnpicklingError(f'numpy scalar reconstruction from {dtype!r:.60}')
    return _np_multiarray.scalar(dtype, *data)


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array reconstruction (`numeric._frombuffer`) for plain (non-object) dtypes."""
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject \
            or order not in ('C', 'F'):
        raise pickle.UnpicklingError('invalid numpy buffer reconstruction')
    return _np_numeric._frombuffer(buffer, dtype, _int_tuple(shape, 'shape'), order)


def _codecs_encode(text: Any, encoding: Any = 'latin1') -> bytes:
    """How protocol-2 pickles store bytes: `_codecs.encode(str, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError('unexpected _codecs.encode arguments')
    return codecs.encode(text, 'latin1')


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list: (module, name) -> what the pickle gets instead (a checked wrapper or an inert type)."""
    wrapped = {
        (PERSISTENCE_MODULE, PERSISTENCE_FUNCTION): _reconstruct_persistent_obj,
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
        ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
        ('torch.nn.parameter', 'Parameter'): _rebuild_parameter,
        ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes,
        ('_codecs', 'encode'): _codecs_encode,
    }
    for package in ('numpy.core', 'numpy._core'):
        wrapped[(f'{package}.multiarray', '_reconstruct')] = _numpy_reconstruct
        wrapped[(f'{package}.multiarray', 'scalar')] = _numpy_scalar
        wrapped[(f'{package}.numeric', '_frombuffer')] = _numpy_frombuffer
    allowed: dict[tuple[str, str], Any] = {key: _SafeCallable(fn, '.'.join(key)) for key, fn in wrapped.items()}
    # Types implemented in C (their attributes cannot be changed) or sealed: safe to hand out as they are.
    allowed.update({
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
        ('builtins', 'bytearray'): bytearray,
        ('dnnlib.util', 'EasyDict'): EasyDict,
        ('dnnlib', 'EasyDict'): EasyDict,
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('torch', 'Size'): torch.Size,
    })
    for name in _TORCH_DTYPE_NAMES:
        allowed[('torch', name)] = getattr(torch, name)
    return allowed


_ALLOWED = allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only allow-listed globals; `source` names the file in errors."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names as in protocol 0-2 pickles (what pickle's own fix_imports does), e.g. __builtin__.set.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == 'dnnlib.tflib' or module.startswith('dnnlib.tflib.'):
            raise NetworkLoadError(
                f'{self.source}: this is a TensorFlow-era network pickle (it refers to {module}.{name}); '
                f'convert it to the PyTorch format with the conversion tool of the published StyleGAN2-ADA '
                f'(PyTorch) or StyleGAN3 code first, then load the converted file')
        raise UnsafePickleError(
            f'{self.source}: refused global {module}.{name}: it is not on the allow-list of network pickles '
            f'(resolving it could run code from the file)')

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError('persistent ids are not used by network pickles')


def load_pickle(file: BinaryIO, source: str) -> Any:
    """Unpickle `file` with the allow-list; every failure is a NetworkLoadError naming `source`."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='TypedStorage is deprecated')
            return RestrictedUnpickler(file, source).load()
    except NetworkLoadError:
        raise
    except EOFError:
        raise NetworkLoadError(f'{source}: the pickle ends prematurely (truncated or empty file)') from None
    except Exception as e:  # pickle / numpy / torch errors from malformed data
        raise NetworkLoadError(f'{source}: not a readable network pickle ({type(e).__name__}: {e})') from None
