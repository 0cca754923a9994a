"""Reader for published StyleGAN2 / StyleGAN3 network pickles (docs/checkpoint-format.md).

A published pickle stores each network module as a call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta`
holds the Python source of the module that defines the class. The ordinary
loader imports and executes that source: opening a stranger's pickle runs the
stranger's code. This reader instead interprets the pickle with `PickleVM`
(renderer.io.pickle_vm: our own opcode interpreter, bounded in memory, depth
and work, which never calls anything the file names) and

- resolves only the globals in `allowed_globals()` (tensor and storage
  rebuilding, `Parameter`, `OrderedDict`, `EasyDict`, numpy array / dtype /
  scalar reconstruction under `numpy.core` and `numpy._core`, a few builtin
  containers, torch dtypes) and refuses every other global with
  `UnsafePickleError` naming the global and the file;
- maps the persistence reconstruct function to `PersistentRecord`, an inert
  record of the class name and the state dict: `module_src` is never executed,
  compiled or kept (only its length is recorded);
- reads tensor storages (`torch.storage._load_from_bytes`) with our weights-only
  storage reader (renderer.io.torch_format), never with a plain unpickler and
  never allocating more than the payload holds.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any, BinaryIO

from renderer.errors import NetworkLoadError
from renderer.io import torch_format
from renderer.io.pickle_vm import (  # noqa: F401
    MAX_NESTING_DEPTH,
    AllowedGlobal,
    EasyDict,
    LoadedStorage,
    PickleVM,
    base_globals,
    describe,
    torch_dtype_globals,
)

PERSISTENCE_MODULE = 'torch_utils.persistence'
PERSISTENCE_FUNCTION = '_reconstruct_persistent_obj'
MAX_PERSISTENCE_VERSION = 6          # Highest `meta['version']` of the persistence format we understand.


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
        return f'PersistentRecord({self.class_name[:80]!r}, version={self.version})'


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list of published pickles: (module, name) -> inert stand-in (calls go to checked handlers)."""
    table = base_globals()
    table.update(torch_dtype_globals())
    table[(PERSISTENCE_MODULE, PERSISTENCE_FUNCTION)] = AllowedGlobal(f'{PERSISTENCE_MODULE}.{PERSISTENCE_FUNCTION}',
                                                                      call='persistent_obj')
    table[('torch.storage', '_load_from_bytes')] = AllowedGlobal('torch.storage._load_from_bytes',
                                                                 call='load_from_bytes')
    return table


_ALLOWED = allowed_globals()


class PublishedPickleReader(PickleVM):
    """PickleVM with the published pickles' allow-list: persistent objects and embedded storages."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file, source, _ALLOWED)
        self._storages: dict[int, LoadedStorage] = {}   # id(payload) -> storage: a payload used twice is read once.

    def find_class(self, module: str, name: str) -> Any:
        if module == 'dnnlib.tflib' or module.startswith('dnnlib.tflib.'):
            raise NetworkLoadError(
                f'{self.source}: this is a TensorFlow-era network pickle (it refers to {module[:100]}.{name[:100]}); '
                f'convert it to the PyTorch format with the conversion tool of the published StyleGAN2-ADA '
                f'(PyTorch) or StyleGAN3 code first, then load the converted file')
        return super().find_class(module, name)

    def _h_persistent_obj(self, meta: Any) -> PersistentRecord:
        """Record a persistent object without executing its `module_src`."""
        if type(meta) is not dict:
            raise NetworkLoadError(f'{self.source}: persistent object metadata is {describe(meta)}, expected a dict')
        if meta.get('type') != 'class':
            raise NetworkLoadError(f"{self.source}: persistent object of type {describe(meta.get('type'))}; only "
                                   f"'class' is supported")
        version = meta.get('version')
        if type(version) is not int or not 1 <= version <= MAX_PERSISTENCE_VERSION:
            raise NetworkLoadError(f'{self.source}: persistence format version {describe(version)} is not supported '
                                   f'(known: 1 to {MAX_PERSISTENCE_VERSION})')
        class_name = meta.get('class_name')
        if not isinstance(class_name, str) or not class_name:
            raise NetworkLoadError(f'{self.source}: persistent object without a class name')
        module_src = meta.get('module_src')
        if not isinstance(module_src, str):
            raise NetworkLoadError(f'{self.source}: persistent object {class_name[:80]!r} without module source text')
        state = meta.get('state')
        if type(state) is not dict:
            raise NetworkLoadError(f'{self.source}: persistent object {class_name[:80]!r} has {describe(state)} as '
                                   f'its state, expected a dict')
        return PersistentRecord(class_name, version, state, len(module_src))

    def _h_load_from_bytes(self, data: Any) -> LoadedStorage:
        """`torch.storage._load_from_bytes`, read by our weights-only storage reader."""
        if not isinstance(data, (bytes, bytearray)):
            raise NetworkLoadError(f'{self.source}: tensor storage payload is {describe(data)}, expected bytes')
        storage = self._storages.get(id(data))
        if storage is None:
            label = f'{self.source}: tensor storage at byte {self.position} refused by the weights-only storage reader'
            storage = torch_format.read_storage_payload(bytes(data), label, (self.budget, self.view_budget))
            self._storages[id(data)] = storage
            self._alive.append(data)
        return storage


def load_pickle(file: BinaryIO, source: str) -> Any:
    """Unpickle `file` with the allow-list; every failure is a NetworkLoadError naming `source`."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*TypedStorage is deprecated')
        warnings.filterwarnings('ignore', message='.*buffer is not writable')
        return PublishedPickleReader(file, source).load()
