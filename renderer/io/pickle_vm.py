"""A pickle reader for untrusted files: our own opcode interpreter, bounded in memory, depth and work.

Python's unpickler hands the file every object it names and lets the file call
it, mutate it (BUILD), hash whatever it builds as dict keys and allocate
whatever sizes it declares. This reader interprets the opcodes itself
(`pickletools.genops` decodes them) and allows far less:

- globals resolve only through the reader's allow-list, to inert `AllowedGlobal`
  names; a REDUCE or NEWOBJ on one runs *our* handler, which checks its
  arguments; nothing the file names is ever called directly;
- numpy data is rebuilt only as plain numeric or bool arrays, dtypes and
  scalars (no object, structured or subarray dtypes), from bytes whose length
  matches the declared shape exactly; BUILD is accepted only on those
  half-built numpy values and never on anything else;
- every declared byte count is checked against the bytes left in the file
  before it is read; what the handlers allocate (storages, arrays, copies) and
  what tensors view is charged to a `LoadBudget` of about the file's size;
- nesting is bounded (`MAX_NESTING_DEPTH`), containers cannot be changed
  after they were placed in another one (so no cycles and no late deepening),
  and dict keys / set elements are plain scalars or short flat tuples of them,
  so that hashing, freeing or walking what was loaded never recurses deeply
  or explodes through shared sub-structures.

Every refusal is a `NetworkLoadError` (refused globals: `UnsafePickleError`)
whose message starts with the file and gives the byte position.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import math
import os
import pickletools
from typing import Any, BinaryIO, Callable, Iterable, Optional

import numpy as np
import torch

from renderer.errors import NetworkLoadError, UnsafePickleError

MAX_NESTING_DEPTH = 100           # Containers inside containers; published snapshots use about 30.
MAX_KEY_TUPLE_LENGTH = 16         # Dict keys / set elements: scalars or flat tuples of at most this many.
MAX_TENSOR_DIMS = 16              # Dimensions of a tensor or numpy array.
MAX_SIZE_ITEMS = 64               # Elements of a torch.Size.
BUDGET_SLACK_BYTES = 64 << 20     # Allowance beyond the file's own size for what a load may allocate.
HIGHEST_PROTOCOL = 5
# What the interpreter's own objects cost, estimated every CHECK_EVERY_OPS instructions against the budget
# (a file of one-byte instructions could otherwise build objects a hundred times its size).
CHECK_EVERY_OPS = 4096
_BYTES_PER = dict(stack=40, mark=100, memo=100, container=200, element=64)
MAX_INSTRUCTIONS = 1_000_000      # Published snapshots have about 100,000; this bounds the time (about 1 s).

_NUMPY_TYPE_NAMES = frozenset({'b1', '?', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8',
                               'c8', 'c16'})
_KEY_TYPES = (str, int, float, bytes, type(None), torch.dtype)   # bool is an int.
_MAPPING_TYPES: tuple[type, ...] = ()                           # Set below, after EasyDict.


def describe(obj: Any, limit: int = 60) -> str:
    """A short, bounded description of a value read from a file (never the repr of a whole structure)."""
    if obj is None or isinstance(obj, (bool, float, torch.dtype)):
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj) if obj.bit_length() <= 64 else f'an integer of {obj.bit_length()} bits'
    if isinstance(obj, (str, bytes, bytearray)):
        text = repr(obj[:limit])
        return text + (f'... ({len(obj)} long)' if len(obj) > limit else '')
    if isinstance(obj, (tuple, list, dict, set, frozenset)):
        return f'a {type(obj).__name__} of {len(obj)} items'
    return f'a {type(obj).__name__}'


class LoadBudget:
    """Bytes that one load may allocate or view: about what the file itself holds (shared by nested readers)."""

    def __init__(self, source: str, file_bytes: int, slack_bytes: int = BUDGET_SLACK_BYTES):
        self.source = source
        self.file_bytes = file_bytes
        self.limit = file_bytes + slack_bytes
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Count `nbytes` more; refuse (NetworkLoadError) beyond the limit, before anything is allocated."""
        if nbytes < 0 or self.used + nbytes > self.limit:
            raise NetworkLoadError(
                f'{self.source}: {what} would need {_mb(nbytes)}, more than a file of {_mb(self.file_bytes)} can '
                f'hold ({_mb(self.used)} used of the {_mb(self.limit)} such a file may allocate)')
        self.used += nbytes


def _mb(n: int) -> str:
    return f'{n / 2 ** 20:.1f} MB' if n >= 2 ** 20 else f'{n} bytes'


class Truncated(ValueError):
    """The data declares more bytes than remain."""


class BoundedReader:
    """A read-only view of `file` that refuses to read more bytes than remain (declared sizes are checked first)."""

    def __init__(self, file: BinaryIO, size: Optional[int] = None):
        self._file = file
        start = file.tell()
        if size is None:
            try:
                size = os.fstat(file.fileno()).st_size
            except (AttributeError, OSError, io.UnsupportedOperation):
                size = file.seek(0, io.SEEK_END)
                file.seek(start)
        self.size = size
        self._pos = start

    def remaining(self) -> int:
        return max(self.size - self._pos, 0)

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = self.size - self._pos
        if n is None or n < 0:
            n = max(left, 0)
        elif n > 1 and n > left:
            raise Truncated(f'{n} bytes are declared at byte {self._pos}, but only {max(left, 0)} remain')
        data = self._file.read(n)
        self._pos += len(data)
        return data

    def readline(self) -> bytes:
        data = self._file.readline(self.remaining())
        self._pos += len(data)
        return data


class MemoryReader(io.BytesIO):
    """Pickle bytes held in memory: reads never allocate more than what is there (fast path for small files)."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.size = len(data)

    def remaining(self) -> int:
        return self.size - self.tell()


IN_MEMORY_BYTES = 32 << 20        # Files up to this size are read into memory first (faster to interpret).


def open_reader(file: BinaryIO, size: Optional[int] = None) -> Any:
    """A MemoryReader for in-memory or small files, else a BoundedReader over `file`."""
    if isinstance(file, MemoryReader):
        return file
    if isinstance(file, io.BytesIO):
        return MemoryReader(file.read() if size is None else file.read(size))
    reader = BoundedReader(file, size)
    if reader.remaining() <= IN_MEMORY_BYTES:
        return MemoryReader(reader.read(reader.remaining()))
    return reader


class EasyDict(dict):
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


_MAPPING_TYPES = (dict, collections.OrderedDict, EasyDict)


class AllowedGlobal:
    """What an allow-listed global is to the pickle: a name. `call` / `new` name the reader's handlers for
    REDUCE / NEWOBJ (None: the global may only be passed as an argument, e.g. `numpy.ndarray`)."""

    __slots__ = ('name', 'call', 'new', 'value')

    def __init__(self, name: str, call: Optional[str] = None, new: Optional[str] = None, value: Any = None):
        self.name, self.call, self.new, self.value = name, call, new, value

    def __repr__(self) -> str:
        return f'<allowed global {self.name}>'


class LoadedStorage:
    """A tensor storage read from a file: `numel` elements of `dtype` in a writable CPU buffer."""

    __slots__ = ('dtype', 'numel', 'untyped')

    def __init__(self, dtype: torch.dtype, buffer: bytearray):
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if len(buffer) % itemsize:
            raise ValueError('storage bytes are not a whole number of elements')
        self.dtype = dtype
        self.numel = len(buffer) // itemsize
        self.untyped = torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage() if buffer else \
            torch.UntypedStorage(0)

    def __repr__(self) -> str:
        return f'LoadedStorage({self.dtype}, {self.numel} elements)'


class _PendingArray:
    """numpy's `_reconstruct` result before its BUILD: becomes an ndarray once the state is checked."""

    __slots__ = ('array',)

    def __init__(self) -> None:
        self.array: Optional[np.ndarray] = None


class _PendingDtype:
    """A numpy dtype named by the file, before its BUILD (which may only set the byte order)."""

    __slots__ = ('dtype',)

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype


def plain_numpy_dtype(dtype: Any) -> bool:
    """Is `dtype` a plain numeric or bool numpy dtype (no objects, fields or subarrays)?"""
    return (isinstance(dtype, np.dtype) and dtype.kind in 'biufc' and dtype.fields is None
            and dtype.subdtype is None and not dtype.hasobject and dtype.itemsize in (1, 2, 4, 8, 16))


class _Refused(Exception):
    """Internal: a check failed; the reader adds the file name and position."""


class PickleVM:
    """Interpret one pickle from `file` with the allow-list `globals_` ((module, name) -> AllowedGlobal).

    source: names the file in errors. budgets: (allocations, tensor views), shared with nested readers;
    by default each is the file's size plus BUDGET_SLACK_BYTES.
    Subclasses add handlers (methods `_h_<name>`) and may accept persistent ids (`persistent_load`).
    """

    def __init__(self, file: BinaryIO, source: str, globals_: dict[tuple[str, str], Any],
                 budgets: Optional[tuple[LoadBudget, LoadBudget]] = None, size: Optional[int] = None):
        self.reader = open_reader(file, size)
        self.source = source
        self.globals = globals_
        if budgets is None:
            budgets = LoadBudget(source, self.reader.size), LoadBudget(source, self.reader.size)
        self.budget, self.view_budget = budgets   # What handlers allocate; what tensors view.
        self.stack: list = []
        self.metastack: list[list] = []
        self.memo: dict[int, Any] = {}
        self._depth: dict[int, int] = {}      # id -> nesting depth of every container made here ...
        self._alive: list = []                # ... kept alive so that ids are never reused while loading.
        self._sealed: set[int] = set()        # ids of containers already placed inside another one.
        self._elements = 0                    # Items placed in containers so far.
        self.position = 0
        self._result: Any = None
        self._done = False

    # ------------------------------------------------------------------------------------------
    # Driving.

    def load(self) -> Any:
        """The unpickled object; NetworkLoadError (naming the file and byte) for anything refused or malformed."""
        dispatch = _dispatch_table(type(self))
        count = 0
        try:
            for opcode, arg, pos in pickletools.genops(self.reader):
                self.position = pos
                handler = dispatch[opcode.name]
                if handler is None:
                    raise _Refused(f'pickle instruction {opcode.name} is not allowed in network files')
                handler(self, arg)
                if self._done:
                    self._check_memory()
                    return self._result
                count += 1
                if count % CHECK_EVERY_OPS == 0:
                    self._check_memory()
                    if count >= MAX_INSTRUCTIONS:
                        raise _Refused(f'more than {MAX_INSTRUCTIONS} pickle instructions (network files have '
                                       f'far fewer)')
        except _Refused as e:
            raise NetworkLoadError(f'{self.source}: {e} (at byte {self.position})') from None
        except NetworkLoadError:
            raise
        except ValueError as e:
            if isinstance(e, Truncated) or self.reader.remaining() == 0:
                raise NetworkLoadError(f'{self.source}: the pickle ends prematurely (truncated or damaged file: '
                                       f'{str(e)[:200]})') from None
            raise NetworkLoadError(f'{self.source}: not a readable network pickle (ValueError at byte '
                                   f'{self.position}: {str(e)[:200]})') from None
        except (TypeError, KeyError, IndexError, OverflowError, UnicodeError, EOFError,
                RuntimeError) as e:  # Malformed data (genops' decoding, numpy / torch checks).
            raise NetworkLoadError(f'{self.source}: not a readable network pickle ({type(e).__name__} at byte '
                                   f'{self.position}: {str(e)[:200]})') from None
        except MemoryError:
            raise NetworkLoadError(f'{self.source}: out of memory while reading byte {self.position}') from None
        raise NetworkLoadError(f'{self.source}: the pickle ends without a STOP instruction')

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused('persistent ids are not used in this kind of file')

    def _check_memory(self) -> None:
        """Refuse when the interpreter's own objects (stack, marks, memo, containers) outgrow the budget."""
        b = _BYTES_PER
        estimate = (b['stack'] * len(self.stack) + b['mark'] * len(self.metastack) + b['memo'] * len(self.memo)
                    + b['container'] * len(self._alive) + b['element'] * self._elements)
        budget = self.budget
        if estimate > budget.limit - budget.used:
            raise _Refused(f'the pickle builds about {_mb(estimate)} of objects, more than a file of '
                           f'{_mb(budget.file_bytes)} can hold')

    # ------------------------------------------------------------------------------------------
    # Bookkeeping: depth, sealing, placeholders, keys.

    def _register(self, obj: Any, depth: int) -> None:
        if depth > MAX_NESTING_DEPTH:
            raise _Refused(f'data nested more than {MAX_NESTING_DEPTH} levels deep')
        key = id(obj)
        if key not in self._depth:
            self._alive.append(obj)
        self._depth[key] = depth

    def _depth_of(self, obj: Any) -> int:
        return self._depth.get(id(obj), 0)

    def _item(self, obj: Any) -> Any:
        """`obj` as it goes into a container or an argument list: placeholders resolved, containers sealed."""
        if isinstance(obj, _PendingArray):
            if obj.array is None:
                raise _Refused('a numpy array is used before its data was given')
            obj = obj.array
        elif isinstance(obj, _PendingDtype):
            obj = obj.dtype
        if id(obj) in self._depth:
            self._sealed.add(id(obj))
        return obj

    def _mutable(self, target: Any, types: tuple[type, ...], what: str) -> None:
        if type(target) not in types:
            raise _Refused(f'{what} applied to {describe(target)}')
        if id(target) in self._sealed:
            raise _Refused(f'{what} on a container that is already part of another (cycles and shared '
                           f'mutable data are not allowed)')

    def _grow(self, target: Any, items: Iterable[Any]) -> None:
        depths = self._depth
        depth = depths.get(id(target), 0)
        if not isinstance(items, list):
            items = list(items)
        self._elements += len(items)
        for item in items:
            if item is target:
                raise _Refused('a container cannot contain itself')
            inner = depths.get(id(item), 0)
            if inner >= depth:
                depth = inner + 1
        self._register(target, depth)

    def _key(self, key: Any) -> Any:
        if isinstance(key, _KEY_TYPES):
            return key
        if type(key) is tuple and len(key) <= MAX_KEY_TUPLE_LENGTH and all(isinstance(k, _KEY_TYPES) for k in key):
            return key
        raise _Refused(f'{describe(key)} as a dict key or set element (only numbers, strings, bytes, None and '
                       f'short flat tuples of them are allowed)')

    def _pop(self) -> Any:
        if not self.stack:
            raise _Refused('stack underflow (malformed pickle)')
        return self.stack.pop()

    def _pop_mark(self) -> list:
        if not self.metastack:
            raise _Refused('MARK missing (malformed pickle)')
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _top(self) -> Any:
        if not self.stack:
            raise _Refused('stack underflow (malformed pickle)')
        return self.stack[-1]

    def _new_container(self, obj: Any, items: Iterable[Any] = ()) -> None:
        self._register(obj, 1)
        if items:
            self._grow(obj, items)
        self.stack.append(obj)

    # ------------------------------------------------------------------------------------------
    # Opcodes: framing, stack and memo.

    def _op_PROTO(self, arg: int) -> None:
        if not 0 <= arg <= HIGHEST_PROTOCOL:
            raise _Refused(f'pickle protocol {arg} is not supported')

    def _op_FRAME(self, arg: int) -> None:
        if arg > self.reader.remaining():
            raise Truncated(f'a frame of {arg} bytes is declared, but only {self.reader.remaining()} remain')

    def _op_STOP(self, arg: None) -> None:
        self._result = self._item(self._pop())
        self._done = True

    def _op_MARK(self, arg: None) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _op_POP(self, arg: None) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def _op_POP_MARK(self, arg: None) -> None:
        self._pop_mark()

    def _op_DUP(self, arg: None) -> None:
        self.stack.append(self._top())

    def _put(self, index: int) -> None:
        if index < 0:
            raise _Refused('negative memo index')
        self.memo[index] = self._top()

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise _Refused(f'memo entry {describe(index)} is used before it was stored')
        self.stack.append(self.memo[index])

    _op_PUT = _op_BINPUT = _op_LONG_BINPUT = _put
    _op_GET = _op_BINGET = _op_LONG_BINGET = _get

    def _op_MEMOIZE(self, arg: None) -> None:
        self._put(len(self.memo))

    # Values.
    def _op_NONE(self, arg: None) -> None:
        self.stack.append(None)

    def _op_NEWTRUE(self, arg: None) -> None:
        self.stack.append(True)

    def _op_NEWFALSE(self, arg: None) -> None:
        self.stack.append(False)

    def _value(self, arg: Any) -> None:
        self.stack.append(arg)

    _op_INT = _op_BININT = _op_BININT1 = _op_BININT2 = _op_LONG = _op_LONG1 = _op_LONG4 = _value
    _op_FLOAT = _op_BINFLOAT = _value
    _op_BINBYTES = _op_SHORT_BINBYTES = _op_BINBYTES8 = _value
    _op_UNICODE = _op_BINUNICODE = _op_SHORT_BINUNICODE = _op_BINUNICODE8 = _value

    def _op_BYTEARRAY8(self, arg: bytes) -> None:
        self.stack.append(bytearray(arg))

    def _py2_string(self, arg: str) -> None:
        if not arg.isascii():
            raise _Refused('a Python 2 string with non-ASCII bytes')
        self.stack.append(arg)

    _op_STRING = _op_BINSTRING = _op_SHORT_BINSTRING = _py2_string

    # Containers.
    def _op_EMPTY_TUPLE(self, arg: None) -> None:
        self._new_container(())

    def _tuple(self, items: list) -> None:
        items = [self._item(x) for x in items]
        self._new_container(tuple(items), items)

    def _op_TUPLE(self, arg: None) -> None:
        self._tuple(self._pop_mark())

    def _op_TUPLE1(self, arg: None) -> None:
        self._tuple([self._pop()])

    def _op_TUPLE2(self, arg: None) -> None:
        b, a = self._pop(), self._pop()
        self._tuple([a, b])

    def _op_TUPLE3(self, arg: None) -> None:
        c, b, a = self._pop(), self._pop(), self._pop()
        self._tuple([a, b, c])

    def _op_EMPTY_LIST(self, arg: None) -> None:
        self._new_container([])

    def _op_LIST(self, arg: None) -> None:
        items = [self._item(x) for x in self._pop_mark()]
        self._new_container(list(items), items)

    def _append(self, items: list) -> None:
        target = self._top()
        self._mutable(target, (list,), 'APPEND')
        items = [self._item(x) for x in items]
        self._grow(target, items)
        target.extend(items)

    def _op_APPEND(self, arg: None) -> None:
        self._append([self._pop()])

    def _op_APPENDS(self, arg: None) -> None:
        self._append(self._pop_mark())

    def _op_EMPTY_DICT(self, arg: None) -> None:
        self._new_container({})

    def _pairs(self, items: list) -> list[tuple[Any, Any]]:
        if len(items) % 2:
            raise _Refused('odd number of items for a dict')
        pairs = []
        for i in range(0, len(items), 2):
            pairs.append((self._key(self._item(items[i])), self._item(items[i + 1])))
        return pairs

    def _op_DICT(self, arg: None) -> None:
        pairs = self._pairs(self._pop_mark())
        self._new_container(dict(pairs), [x for pair in pairs for x in pair])

    def _setitems(self, items: list) -> None:
        target = self._top()
        self._mutable(target, _MAPPING_TYPES, 'SETITEM')
        pairs = self._pairs(items)
        self._grow(target, [x for pair in pairs for x in pair])
        for key, value in pairs:
            target[key] = value

    def _op_SETITEM(self, arg: None) -> None:
        value = self._pop()
        key = self._pop()
        self._setitems([key, value])

    def _op_SETITEMS(self, arg: None) -> None:
        self._setitems(self._pop_mark())

    def _op_EMPTY_SET(self, arg: None) -> None:
        self._new_container(set())

    def _op_ADDITEMS(self, arg: None) -> None:
        items = [self._key(self._item(x)) for x in self._pop_mark()]
        target = self._top()
        self._mutable(target, (set,), 'ADDITEMS')
        self._grow(target, items)
        target.update(items)

    def _op_FROZENSET(self, arg: None) -> None:
        items = [self._key(self._item(x)) for x in self._pop_mark()]
        self._new_container(frozenset(items), items)

    # Globals and calls.
    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed stand-in for module.name; UnsafePickleError for anything else."""
        # Python 2 names as in protocol 0-2 pickles, e.g. __builtin__.set.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self.globals.get((module, name))
        if found is None:
            raise UnsafePickleError(self.refusal(module, name))
        return found

    def refusal(self, module: str, name: str) -> str:
        """The message for a global that is not on the allow-list."""
        return (f'{self.source}: refused global {module[:100]}.{name[:100]}: it is not on the allow-list of '
                f'network files (resolving it could run code from the file)')

    def _op_GLOBAL(self, arg: str) -> None:
        module, _, name = arg.partition(' ')
        self.stack.append(self.find_class(module, name))

    def _op_STACK_GLOBAL(self, arg: None) -> None:
        name = self._pop()
        module = self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Refused('STACK_GLOBAL with a module or name that is not a string')
        self.stack.append(self.find_class(module, name))

    def _call(self, func: Any, kind: str, args: tuple) -> None:
        handler = getattr(func, kind, None) if isinstance(func, AllowedGlobal) else None
        if handler is None:
            what = func.name if isinstance(func, AllowedGlobal) else describe(func)
            raise _Refused(f'{"REDUCE" if kind == "call" else "NEWOBJ"} on {what}, which may not be called')
        try:
            result = getattr(self, f'_h_{handler}')(*args)
        except TypeError as e:
            if e.__traceback__ is None or e.__traceback__.tb_next is not None:
                raise  # Raised inside the handler, not by a wrong number of arguments.
            raise _Refused(f'{func.name} called with {len(args)} arguments') from None
        if _trackable(result):
            self._register(result, self._depth_of(args) + 1)
        self.stack.append(result)

    def _op_REDUCE(self, arg: None) -> None:
        args = self._item(self._pop())
        func = self._pop()
        if type(args) is not tuple:
            raise _Refused(f'REDUCE with {describe(args)} as arguments')
        self._call(func, 'call', args)

    def _op_NEWOBJ(self, arg: None) -> None:
        args = self._item(self._pop())
        cls = self._pop()
        if type(args) is not tuple or args:
            raise _Refused('NEWOBJ with arguments')
        self._call(cls, 'new', ())

    def _op_NEWOBJ_EX(self, arg: None) -> None:
        kwargs = self._item(self._pop())
        args = self._item(self._pop())
        cls = self._pop()
        if type(args) is not tuple or args or type(kwargs) is not dict or kwargs:
            raise _Refused('NEWOBJ_EX with arguments')
        self._call(cls, 'new', ())

    def _op_BUILD(self, arg: None) -> None:
        state = self._item(self._pop())
        target = self._top()
        if isinstance(target, _PendingArray):
            self._build_array(target, state)
        elif isinstance(target, _PendingDtype):
            self._build_dtype(target, state)
        elif type(target) is EasyDict and (state is None or (type(state) is dict and not state)):
            pass  # What pickle writes for an EasyDict without instance attributes.
        else:
            raise _Refused(f'BUILD instruction on {_build_target(target)} (only numpy arrays and dtypes take one)')

    def _op_BINPERSID(self, arg: None) -> None:
        self.stack.append(self.persistent_load(self._item(self._pop())))

    # ------------------------------------------------------------------------------------------
    # Shared handlers: builtins, EasyDict, numpy.

    def _h_easydict(self) -> EasyDict:
        return EasyDict()

    def _h_ordered_dict(self) -> collections.OrderedDict:
        return collections.OrderedDict()

    def _set_items(self, items: Any = ()) -> list:
        if type(items) not in (list, tuple):
            raise _Refused(f'set() of {describe(items)}')
        return [self._key(x) for x in items]

    def _h_set(self, items: Any = ()) -> set:
        return set(self._set_items(items))

    def _h_frozenset(self, items: Any = ()) -> frozenset:
        return frozenset(self._set_items(items))

    def _h_bytearray(self, data: Any = b'', encoding: Any = None) -> bytearray:
        if isinstance(data, str) and encoding in ('latin1', 'latin-1'):
            data = self._h_codecs_encode(data, encoding)
        elif not isinstance(data, (bytes, bytearray)) or encoding is not None:
            raise _Refused(f'bytearray() of {describe(data)} (only bytes are accepted)')
        self.budget.charge(len(data), 'a bytearray')
        return bytearray(data)

    def _h_codecs_encode(self, text: Any, encoding: Any = 'latin1') -> bytes:
        if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
            raise _Refused('unexpected _codecs.encode arguments')
        self.budget.charge(len(text), 'a byte string')
        return codecs.encode(text, 'latin1')

    def _h_torch_size(self, items: Any = ()) -> torch.Size:
        return torch.Size(self.int_tuple(items, 'torch.Size', MAX_SIZE_ITEMS))

    def int_tuple(self, value: Any, what: str, max_len: int = MAX_TENSOR_DIMS) -> tuple[int, ...]:
        """A short tuple of non-negative integers (a shape or strides), or refused."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if type(value) not in (tuple, list, torch.Size) or len(value) > max_len or \
                not all(type(v) is int and 0 <= v < 2 ** 62 for v in value):
            raise _Refused(f'{what} must be at most {max_len} non-negative integers, got {describe(value)}')
        return tuple(value)

    def _h_numpy_dtype(self, name: Any, align: Any = False, copy: Any = True) -> _PendingDtype:
        if not isinstance(name, str) or name not in _NUMPY_TYPE_NAMES or align not in (False, 0) or \
                not isinstance(copy, bool):
            raise _Refused(f'numpy dtype {describe(name)} (only plain numbers and bools are allowed)')
        return _PendingDtype(np.dtype(name))

    def _build_dtype(self, target: _PendingDtype, state: Any) -> None:
        # numpy writes (version, byte order, subarray, names, fields, itemsize, alignment, flags[, metadata]).
        if type(state) is not tuple or len(state) not in (8, 9) or state[0] not in (3, 4) or \
                state[1] not in ('<', '>', '|', '=') or state[2:5] != (None, None, None) or \
                state[5:8] != (-1, -1, 0) or (len(state) == 9 and state[8] is not None):
            raise _Refused('numpy dtype state that is not that of a plain number (fields, sizes or flags set)')
        if state[1] in '<>' and target.dtype.itemsize > 1:
            target.dtype = target.dtype.newbyteorder(state[1])

    def _plain_dtype(self, dtype: Any) -> np.dtype:
        if not plain_numpy_dtype(dtype):
            raise _Refused(f'numpy data of {describe(dtype)} (only plain numbers and bools are allowed)')
        return dtype

    def _numpy_array(self, data: Any, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
        count = math.prod(shape)
        if not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
            got = f'{len(data)} bytes' if isinstance(data, (bytes, bytearray)) else describe(data)
            raise _Refused(f'numpy array of shape {list(shape)} and dtype {dtype} with {got} of data')
        self.budget.charge(len(data), 'a numpy array')
        flat = np.frombuffer(data, dtype=dtype, count=count).copy()
        return flat.reshape(shape, order='F' if fortran else 'C')

    def _h_numpy_reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> _PendingArray:
        if not (isinstance(subtype, AllowedGlobal) and subtype.name == 'numpy.ndarray'):
            raise _Refused(f'numpy array reconstruction of {describe(subtype)}, expected numpy.ndarray')
        if math.prod(self.int_tuple(shape, 'numpy array shape')) != 0 or typecode not in (b'b', 'b'):
            raise _Refused('numpy array reconstruction with a size (numpy starts from an empty array)')
        return _PendingArray()

    def _build_array(self, target: _PendingArray, state: Any) -> None:
        if target.array is not None:
            raise _Refused('a second BUILD on a numpy array')
        if type(state) is tuple and len(state) == 5:
            state = state[1:] if state[0] == 1 else None
        if type(state) is not tuple or len(state) != 4:
            raise _Refused('numpy array state of an unknown form')
        shape, dtype, fortran, data = state
        target.array = self._numpy_array(data, self._plain_dtype(dtype), self.int_tuple(shape, 'numpy shape'),
                                         bool(fortran))

    def _h_numpy_scalar(self, dtype: Any, *data: Any) -> Any:
        dtype = self._plain_dtype(dtype)
        if len(data) != 1:
            raise _Refused('numpy scalar without its bytes')
        return self._numpy_array(data[0], dtype, (), False)[()]

    def _h_numpy_frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        if order not in ('C', 'F'):
            raise _Refused(f'numpy buffer order {describe(order)}')
        return self._numpy_array(buffer, self._plain_dtype(dtype), self.int_tuple(shape, 'numpy shape'),
                                 order == 'F')

    # ------------------------------------------------------------------------------------------
    # Tensors over storages (the storages come from the subclass: persistent ids or payloads).

    def _h_rebuild_tensor_v2(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                             hooks: Any = None, metadata: Any = None) -> torch.Tensor:
        if not isinstance(storage, LoadedStorage):
            raise _Refused(f'tensor rebuilt from {describe(storage)}, expected a storage')
        size = self.int_tuple(size, 'tensor size')
        stride = self.int_tuple(stride, 'tensor stride')
        if type(offset) is not int or not 0 <= offset < 2 ** 62 or len(size) != len(stride):
            raise _Refused(f'invalid tensor view: offset {describe(offset)}, size {list(size)}, stride {list(stride)}')
        numel = math.prod(size)
        if numel > 0:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel or numel > storage.numel:
                raise _Refused(f'tensor view (size {list(size)}, stride {list(stride)}, offset {offset}) exceeds '
                               f'its storage of {storage.numel} elements')
        if not isinstance(requires_grad, bool) or not (hooks is None or (type(hooks) in _MAPPING_TYPES and not hooks)) \
                or not (metadata is None or (type(metadata) in _MAPPING_TYPES and not metadata)):
            raise _Refused('tensor with hooks or extra metadata (conjugate / negative bits) is not supported')
        itemsize = torch.empty(0, dtype=storage.dtype).element_size()
        self.view_budget.charge(numel * itemsize, f'a tensor of shape {list(size)}')
        t = torch.empty(0, dtype=storage.dtype)
        return t.set_(storage.untyped, offset, size, stride)

    def _h_rebuild_parameter(self, data: Any, requires_grad: Any = False, hooks: Any = None,
                             state: Any = None) -> torch.nn.Parameter:
        if type(data) is not torch.Tensor:
            raise _Refused(f'parameter rebuilt from {describe(data)}, expected a tensor')
        return torch.nn.Parameter(data, requires_grad=False)


_DISPATCH: dict[type, dict[str, Optional[Callable]]] = {}


def _dispatch_table(cls: type) -> dict[str, Optional[Callable]]:
    """Opcode name -> the class's `_op_<name>` function (None: not allowed), computed once per class."""
    table = _DISPATCH.get(cls)
    if table is None:
        table = _DISPATCH[cls] = {op.name: getattr(cls, f'_op_{op.name}', None) for op in pickletools.opcodes}
    return table


def _trackable(obj: Any) -> bool:
    return not (obj is None or isinstance(obj, (bool, int, float, str, bytes, np.generic)))


def _build_target(obj: Any) -> str:
    if isinstance(obj, AllowedGlobal):
        return obj.name
    return describe(obj)


def base_globals() -> dict[tuple[str, str], AllowedGlobal]:
    """Globals every network file may use: builtin containers, EasyDict, torch.Size and dtypes, numpy data."""
    table: dict[tuple[str, str], AllowedGlobal] = {
        ('collections', 'OrderedDict'): AllowedGlobal('collections.OrderedDict', call='ordered_dict'),
        ('builtins', 'set'): AllowedGlobal('builtins.set', call='set'),
        ('builtins', 'frozenset'): AllowedGlobal('builtins.frozenset', call='frozenset'),
        ('builtins', 'bytearray'): AllowedGlobal('builtins.bytearray', call='bytearray'),
        ('_codecs', 'encode'): AllowedGlobal('_codecs.encode', call='codecs_encode'),
        ('dnnlib.util', 'EasyDict'): AllowedGlobal('dnnlib.util.EasyDict', new='easydict'),
        ('dnnlib', 'EasyDict'): AllowedGlobal('dnnlib.EasyDict', new='easydict'),
        ('torch', 'Size'): AllowedGlobal('torch.Size', call='torch_size'),
        ('numpy', 'ndarray'): AllowedGlobal('numpy.ndarray'),
        ('numpy', 'dtype'): AllowedGlobal('numpy.dtype', call='numpy_dtype'),
        ('torch._utils', '_rebuild_tensor_v2'): AllowedGlobal('torch._utils._rebuild_tensor_v2',
                                                              call='rebuild_tensor_v2'),
        ('torch._utils', '_rebuild_parameter'): AllowedGlobal('torch._utils._rebuild_parameter',
                                                              call='rebuild_parameter'),
        ('torch._utils', '_rebuild_parameter_with_state'): AllowedGlobal(
            'torch._utils._rebuild_parameter_with_state', call='rebuild_parameter'),
        ('torch.nn.parameter', 'Parameter'): AllowedGlobal('torch.nn.parameter.Parameter', call='rebuild_parameter'),
    }
    for package in ('numpy.core', 'numpy._core'):
        table[(f'{package}.multiarray', '_reconstruct')] = AllowedGlobal(f'{package}.multiarray._reconstruct',
                                                                         call='numpy_reconstruct')
        table[(f'{package}.multiarray', 'scalar')] = AllowedGlobal(f'{package}.multiarray.scalar', call='numpy_scalar')
        table[(f'{package}.numeric', '_frombuffer')] = AllowedGlobal(f'{package}.numeric._frombuffer',
                                                                     call='numpy_frombuffer')
    return table


TORCH_DTYPE_NAMES = ('float16', 'float32', 'float64', 'bfloat16', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool')


def torch_dtype_globals() -> dict[tuple[str, str], Any]:
    """torch.float32 and friends as globals (plain values: immutable, not callable by the pickle)."""
    return {('torch', name): getattr(torch, name) for name in TORCH_DTYPE_NAMES}


def read_into_buffer(read: Callable[[int], bytes], nbytes: int, chunk: int = 1 << 20) -> bytearray:
    """Exactly `nbytes` from `read` into a new writable buffer, in chunks (no second full-size copy)."""
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    done = 0
    while done < nbytes:
        data = read(min(chunk, nbytes - done))
        if not data:
            raise ValueError(f'data ends after {done} of {nbytes} bytes')
        view[done:done + len(data)] = data
        done += len(data)
    return buffer
