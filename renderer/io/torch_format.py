"""torch.save containers read without torch.load: sizes checked against the bytes present, tensors only.

Two forms occur in network files (docs/checkpoint-format.md):

- the legacy stream, which published pickles embed for every tensor storage
  (`torch.storage._load_from_bytes(b)`): five pickles (magic number, protocol
  1001, system info, the storage as a persistent id, the list of storage keys)
  followed, per key, by an int64 element count and the raw little-endian data;
- the zip container of `torch.save` (our `.pt` format): `<name>/data.pkl`, a
  pickle whose storages are persistent ids `('storage', <type>, key, location,
  numel)`, each stored as the record `<name>/data/<key>`.

Both are read with `PickleVM` (renderer.io.pickle_vm), whose allow-list here
holds only tensor and parameter rebuilding, plain containers and the storage
type names; so sparse, meta, quantised or subclass tensors and anything
executable are refused. Every storage must be exactly as long as declared, its
bytes present in the file and charged to the load's budget before they are
read. Compressed zip records may expand to at most COMPRESSED_RECORDS_MAX_BYTES
in all (zip bombs); torch.save itself never compresses.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from typing import Any, BinaryIO, Optional

import torch

from renderer.errors import NetworkLoadError
from renderer.io.pickle_vm import (
    AllowedGlobal,
    LoadBudget,
    LoadedStorage,
    MemoryReader,
    PickleVM,
    base_globals,
    read_into_buffer,
    torch_dtype_globals,
)

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
COMPRESSED_RECORDS_MAX_BYTES = 256 << 20   # Total expanded size of compressed zip records in one file.
MAX_ZIP_ENTRIES = 1 << 20

STORAGE_TYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
    'UntypedStorage': torch.uint8,
}
_KEY = re.compile(r'[A-Za-z0-9_]{1,64}')
_KNOWN_HEADERS: list[bytes] = []   # Legacy stream headers (magic, protocol, system info) already checked.


class StorageType(AllowedGlobal):
    """`torch.FloatStorage` and friends: only meaningful inside a storage's persistent id."""

    __slots__ = ('dtype',)

    def __init__(self, name: str, dtype: torch.dtype):
        super().__init__(f'torch.{name}')
        self.dtype = dtype


def container_globals() -> dict[tuple[str, str], Any]:
    """The allow-list inside torch containers: plain data, tensors, parameters, storage types, torch dtypes."""
    table = base_globals()
    table.update(torch_dtype_globals())
    table.update({('torch', name): StorageType(name, dtype) for name, dtype in STORAGE_TYPES.items()})
    return table


_CONTAINER_GLOBALS = container_globals()


def _storage_pid(pid: Any, legacy: bool) -> tuple[torch.dtype, str, int]:
    """(dtype, key, numel) of a storage persistent id, or ValueError."""
    if type(pid) is not tuple or len(pid) != (6 if legacy else 5) or pid[0] != 'storage':
        raise ValueError('a persistent id that is not a tensor storage')
    storage_type, key, location, numel = pid[1:5]
    if not isinstance(storage_type, StorageType) or not isinstance(key, str) or not _KEY.fullmatch(key) or \
            not isinstance(location, str) or len(location) > 64 or type(numel) is not int or numel < 0:
        raise ValueError('a malformed tensor storage id')
    if legacy and pid[5] is not None:
        raise ValueError('storage views of the oldest torch format are not supported')
    return storage_type.dtype, key, numel


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


class _LegacyReader(PickleVM):
    """The pickles of a legacy stream; storage ids are collected, their data read after the key list."""

    def __init__(self, file: BinaryIO, source: str, budgets: tuple[LoadBudget, LoadBudget], size: int):
        super().__init__(file, source, _CONTAINER_GLOBALS, budgets, size)
        self.storages: dict[str, tuple[torch.dtype, int, dict]] = {}

    def persistent_load(self, pid: Any) -> Any:
        dtype, key, numel = _storage_pid(pid, legacy=True)
        if key not in self.storages:
            self.storages[key] = (dtype, numel, {})
        elif self.storages[key][:2] != (dtype, numel):
            raise ValueError(f'storage {key} is declared twice with different types or sizes')
        return _LegacyRef(key)

    def restart(self) -> None:
        """Ready for the next pickle of the stream (the file position carries on)."""
        self.stack, self.metastack, self.memo = [], [], {}
        self._done = False


class _LegacyRef:
    __slots__ = ('key',)

    def __init__(self, key: str):
        self.key = key


def read_storage_payload(data: bytes, source: str, budgets: tuple[LoadBudget, LoadBudget]) -> LoadedStorage:
    """The one storage of a torch.save serialisation (what `torch.storage._load_from_bytes` receives)."""
    if data.startswith(b'PK\x03\x04'):
        storage = read_zip_container(io.BytesIO(data), source, len(data), budgets)
        if not isinstance(storage, LoadedStorage):
            raise NetworkLoadError(f'{source}: the stream holds {type(storage).__name__}, expected a tensor storage')
        return storage
    stream = MemoryReader(data)
    reader = _LegacyReader(stream, source, budgets, len(data))
    known = next((h for h in _KNOWN_HEADERS if data.startswith(h)), None)
    if known is not None:  # The same bytes as a header read and accepted before (every storage repeats it).
        stream.seek(len(known))
    else:
        header = []
        for _ in range(3):
            header.append(reader.load())
            reader.restart()
        magic, protocol, sys_info = header
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise NetworkLoadError(f'{source}: not a torch storage stream (wrong magic number or protocol)')
        if not isinstance(sys_info, dict) or sys_info.get('little_endian') is not True:
            raise NetworkLoadError(f'{source}: storage data of a big-endian machine is not supported')
        if len(_KNOWN_HEADERS) < 16:
            _KNOWN_HEADERS.append(data[:stream.tell()])
    ref = reader.load()
    reader.restart()
    keys = reader.load()
    if not isinstance(ref, _LegacyRef):
        raise NetworkLoadError(f'{source}: the stream holds {type(ref).__name__}, expected one tensor storage')
    if type(keys) is not list or sorted(keys) != sorted(reader.storages) or len(set(keys)) != len(keys):
        raise NetworkLoadError(f'{source}: the storage key list does not match the storages declared')
    found = {}
    for key in keys:
        dtype, numel, _ = reader.storages[key]
        head = stream.read(8)
        if len(head) != 8 or struct.unpack('<q', head)[0] != numel:
            raise NetworkLoadError(f'{source}: storage {key} should hold {numel} elements, its data says otherwise')
        nbytes = numel * _itemsize(dtype)
        if nbytes > len(data) - stream.tell():
            raise NetworkLoadError(f'{source}: storage {key} declares {nbytes} bytes, but only '
                                   f'{len(data) - stream.tell()} remain (truncated or damaged)')
        budgets[0].charge(nbytes, f'tensor storage {key}')
        found[key] = LoadedStorage(dtype, read_into_buffer(stream.read, nbytes))
    if stream.tell() != len(data):
        raise NetworkLoadError(f'{source}: {len(data) - stream.tell()} unexpected bytes after the storage data')
    return found[ref.key]


class _ZipReader(PickleVM):
    """`data.pkl` of a torch.save zip; each storage id reads its record, checked and charged first."""

    def __init__(self, data: bytes, source: str, archive: zipfile.ZipFile, prefix: str,
                 budgets: tuple[LoadBudget, LoadBudget]):
        super().__init__(MemoryReader(data), source, _CONTAINER_GLOBALS, budgets, len(data))
        self.archive = archive
        self.prefix = prefix
        self.storages: dict[str, LoadedStorage] = {}

    def persistent_load(self, pid: Any) -> Any:
        dtype, key, numel = _storage_pid(pid, legacy=False)
        if key in self.storages:
            storage = self.storages[key]
            if (storage.dtype, storage.numel) != (dtype, numel):
                raise ValueError(f'storage {key} is used with different types or sizes')
            return storage
        name = f'{self.prefix}/data/{key}'
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise ValueError(f'storage record {name} is missing') from None
        nbytes = numel * _itemsize(dtype)
        if info.file_size != nbytes:
            raise ValueError(f'storage record {name} holds {info.file_size} bytes, {nbytes} are declared')
        self.budget.charge(nbytes, f'tensor storage {key}')
        with self.archive.open(info) as record:
            storage = LoadedStorage(dtype, read_into_buffer(record.read, nbytes))
        self.storages[key] = storage
        return storage


def check_zip_entries(archive: zipfile.ZipFile, file_size: int, source: str) -> None:
    """Refuse entries that lie outside the file, claim sizes the file cannot hold, or expand too far."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise NetworkLoadError(f'{source}: {len(infos)} zip entries, more than the {MAX_ZIP_ENTRIES} allowed')
    expanded = 0
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise NetworkLoadError(f'{source}: zip entry {info.filename[:100]!r} is stored with two sizes '
                                       f'({info.file_size} and {info.compress_size})')
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            expanded += info.file_size
            if expanded > COMPRESSED_RECORDS_MAX_BYTES:
                raise NetworkLoadError(
                    f'{source}: compressed zip entries expand to more than {COMPRESSED_RECORDS_MAX_BYTES >> 20} MB '
                    f'(a zip bomb, or a network re-compressed after saving; torch.save never compresses)')
        else:
            raise NetworkLoadError(f'{source}: zip entry {info.filename[:100]!r} uses compression method '
                                   f'{info.compress_type}; only stored and deflated entries are read')
        if info.header_offset < 0 or info.header_offset + info.compress_size > file_size:
            raise NetworkLoadError(f'{source}: zip entry {info.filename[:100]!r} lies outside the file '
                                   f'(truncated or damaged)')


def read_zip_container(file: BinaryIO, source: str, size: Optional[int] = None,
                       budgets: Optional[tuple[LoadBudget, LoadBudget]] = None) -> Any:
    """Unpickle a torch.save zip container (tensors over its storage records), checked like safetensors.

    budgets: (allocations, tensor views) of an enclosing load; by default about the file's size each.
    """
    if size is None:
        size = file.seek(0, io.SEEK_END)
        file.seek(0)
    if budgets is None:
        budgets = LoadBudget(source, size), LoadBudget(source, size)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error, OverflowError) as e:
        raise NetworkLoadError(f'{source}: not a readable zip container (truncated or damaged: {e})') from None
    with archive:
        check_zip_entries(archive, size, source)
        pickles = [i for i in archive.infolist() if i.filename.endswith('/data.pkl') and i.filename.count('/') == 1]
        if len(pickles) != 1:
            raise NetworkLoadError(f'{source}: a zip file, but not a torch.save container (no single data.pkl)')
        prefix = pickles[0].filename[:-len('/data.pkl')]
        try:
            byteorder = archive.read(f'{prefix}/byteorder') if f'{prefix}/byteorder' in archive.namelist() \
                else b'little'
            if byteorder != b'little':
                raise NetworkLoadError(f'{source}: tensors saved in big-endian byte order are not supported')
            budgets[0].charge(pickles[0].file_size, 'the data.pkl record')
            data = archive.read(pickles[0])
            return _ZipReader(data, source, archive, prefix, budgets).load()
        except NetworkLoadError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, struct.error, ValueError, RuntimeError) as e:
            raise NetworkLoadError(f'{source}: damaged zip container ({type(e).__name__}: {str(e)[:200]})') from None
