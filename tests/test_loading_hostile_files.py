"""Hostile files that crash, hang or exhaust a loader: each is refused with a NetworkLoadError naming the file.

Every file is generated here (no binary blobs). All cases run in one worker subprocess
(`pickle_fixtures.hostile_worker`; a case that kills or hangs it is recorded and the worker restarted
for the rest) with an address-space limit and a per-case alarm; each case's outcome is asserted on its
own: not a signal, a NetworkLoadError naming the file and the problem, peak memory under
PEAK_BOUND_MB above the resident size before the case, under SECONDS_BOUND, and no sentinel created.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import queue
import subprocess
import sys
import threading
import time
from typing import Callable

import numpy as np
import pickle_fixtures as pf
import pytest
import torch
from pickle_fixtures import BUILD, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, MARK, REDUCE, SETITEM, TUPLE, TUPLE1, RawPickle

from renderer import save_network

PEAK_BOUND_MB = 500           # Peak resident memory a case may add.
SECONDS_BOUND = 5.0           # Time a case may take.
AS_LIMIT_MB = 1500            # Address space the worker may map beyond what it had after warming up.
CASE_TIMEOUT_S = 20.0         # The worker's alarm per case; the parent waits 10 s longer before killing it.
STARTUP_TIMEOUT_S = 120.0
ROOT = pathlib.Path(__file__).resolve().parents[1]
SENTINEL_MODULE = 'afv_hostile_sentinel'

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='the worker measures memory through /proc/self (Linux)')

Builder = Callable[['Maker'], pathlib.Path]
CASES: dict[str, tuple[Builder, str]] = {}   # name -> (builder, fragment the error message must contain)


def case(name: str, fragment: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES[name] = (fn, fragment)
        return fn
    return register


class Maker:
    """Writes the case files into `folder`; `sentinel` is what hostile code would create."""

    def __init__(self, folder: pathlib.Path, sentinel: pathlib.Path, generators: dict):
        self.folder, self.sentinel, self.generators = folder, sentinel, generators

    def path(self, name: str) -> pathlib.Path:
        return self.folder / name

    def raw(self, name: str, data: bytes) -> pathlib.Path:
        path = self.path(name)
        path.write_bytes(data)
        return path

    def snapshot(self, arch: str = 'stylegan3-t') -> dict:
        return pf.snapshot(self.generators[arch])

    def pickle(self, name: str, obj: object) -> pathlib.Path:
        return pf.write_pickle(self.path(name), obj)

    def native_payload(self, arch: str = 'stylegan2') -> dict:
        buffer = self.path(f'native-{arch}.pt')
        if not buffer.exists():
            save_network(self.generators[arch], buffer)
        return torch.load(buffer, weights_only=True)

    def native(self, name: str, payload: dict) -> pathlib.Path:
        path = self.path(name)
        torch.save(payload, path)
        return path


# ----------------------------------------------------------------------------------------------
# Raw pickle pieces.

def np_dtype(name: str, state: tuple = (3, '<', None, None, None, -1, -1, 0)) -> Callable[[RawPickle], None]:
    def emit(p: RawPickle) -> None:
        p.call('numpy', 'dtype', name, False, True)
        p.value(state)
        p.op(BUILD)
    return emit


def np_array(shape: tuple, dtype: Callable[[RawPickle], None], data: object,
             package: str = 'numpy.core') -> Callable[[RawPickle], None]:
    """numpy's own form: _reconstruct(ndarray, (0,), b'b'), then BUILD with (1, shape, dtype, fortran, data)."""
    def emit(p: RawPickle) -> None:
        p.glob(f'{package}.multiarray', '_reconstruct').op(MARK).glob('numpy', 'ndarray')
        p.value((0,))
        p.bytes(b'b').op(TUPLE + REDUCE)
        p.value((1, shape, dtype, False, data))
        p.op(BUILD)
    return emit


def entry(obj: Callable[[RawPickle], None], protocol: int = 2) -> bytes:
    """{'G_ema': obj} as a pickle."""
    p = RawPickle(protocol)
    p.op(EMPTY_DICT).str('G_ema')
    obj(p)
    return p.op(SETITEM).data()


def legacy_storage_payload(numel: int, data: bytes, storage_type: str = 'FloatStorage',
                           main: Callable[[RawPickle], None] = None) -> bytes:
    """A legacy torch.save stream of one storage declaring `numel` elements, followed by `data`."""
    parts = [RawPickle(2).int(0x1950a86a20f9469cfc6c).data(), RawPickle(2).int(1001).data(),
             RawPickle(2).op(EMPTY_DICT).str('little_endian').op(b'\x88' + SETITEM).data()]
    p = RawPickle(2)
    if main is not None:
        main(p)
    else:
        p.op(MARK).str('storage').glob('torch', storage_type).str('0').str('cpu').int(numel).op(b'N' + TUPLE + b'Q')
    parts.append(p.data())
    parts.append(RawPickle(2).op(EMPTY_LIST).str('0').op(b'a').data())
    return b''.join(parts) + numel.to_bytes(8, 'little') + data


def tensor_over(payload: bytes, size: tuple, stride: tuple) -> Callable[[RawPickle], None]:
    def emit(p: RawPickle) -> None:
        p.glob('torch._utils', '_rebuild_tensor_v2').op(MARK)
        p.call('torch.storage', '_load_from_bytes', payload)
        for v in (0, size, stride, False):
            p.value(v)
        p.call('collections', 'OrderedDict')
        p.op(TUPLE + REDUCE)
    return emit


def native_zip(name: str, m: Maker, numel: int, record: tuple) -> pathlib.Path:
    """A torch.save-style zip whose data.pkl is our format's dict with one tensor over storage '0'."""
    p = RawPickle(2)
    fields = {'format': 'alias-free-viz-network', 'version': 1, 'architecture': 'stylegan2',
              'init_kwargs_json': '{}', 'metadata_json': '{}'}

    def tensor(q: RawPickle) -> None:
        q.glob('torch._utils', '_rebuild_tensor_v2').op(MARK + MARK).str('storage').glob('torch', 'FloatStorage')
        q.str('0').str('cpu').int(numel).op(TUPLE + b'Q')
        for v in (0, (numel,), (1,), False):
            q.value(v)
        q.call('collections', 'OrderedDict')
        q.op(TUPLE + REDUCE)

    p.value({**fields, 'state_dict': {'w': tensor}})
    return pf.write_zip(m.path(name), [pf.zip_entry('archive/data.pkl', p.data()),
                                      pf.zip_entry('archive/byteorder', b'little'), record])


def dag_list(levels: int) -> list:
    node: list = []
    for _ in range(levels):
        node = [node, node]
    return node


# ----------------------------------------------------------------------------------------------
# Memory safety: numpy objects built by the file.

@case('numpy-object-array-over-own-bytes', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    obj = np_dtype('O8', (3, '|', None, None, None, -1, -1, 63))
    return m.raw('object-array.pkl', entry(np_array((1,), obj, b'\x41' * 8)))


@case('numpy-plain-dtype-built-as-object', 'numpy dtype state')
def _(m: Maker) -> pathlib.Path:
    obj = np_dtype('f8', (3, '|', None, None, None, 8, 8, 63))
    return m.raw('dtype-flags.pkl', entry(np_array((1,), obj, b'\x41' * 8)))


@case('numpy-dtype-field-offsets', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    fields = np_dtype('V16', (3, '|', None, ('a', 'b'), {'a': (np_dtype('f8'), 0), 'b': (np_dtype('f8'), 1 << 40)},
                              16, 1, 16))
    return m.raw('dtype-fields.pkl', entry(np_array((1,), fields, b'\0' * 16)))


@case('numpy-dtype-build-sets-itemsize', 'numpy dtype state')
def _(m: Maker) -> pathlib.Path:
    return m.raw('dtype-itemsize.pkl', entry(np_array((2,), np_dtype('f8', (3, '<', None, None, None, 1 << 20,
                                                                            1, 0)), b'\0' * 16)))


@case('numpy-dtype-build-on-a-scalar-dtype-twice', 'numpy dtype state')
def _(m: Maker) -> pathlib.Path:
    def twice(p: RawPickle) -> None:
        np_dtype('i8')(p)
        p.value((3, '|', None, ('x',), {'x': (np_dtype('f8'), 0)}, 8, 1, 16))
        p.op(BUILD)
    return m.raw('dtype-twice.pkl', entry(twice))


@case('numpy-nested-object-arrays-500k', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2)
    p.glob('numpy.core.multiarray', '_reconstruct').put(0).op(b'0')
    p.glob('numpy', 'ndarray').put(1).op(b'0')
    np_dtype('O8', (3, '|', None, None, None, -1, -1, 63))(p)
    p.put(2).op(b'0').op(b'N').put(3).op(b'0')
    level = RawPickle(2)  # a_i = object array holding a_(i-1); memo 3 holds the latest.
    level.get(0).op(MARK).get(1).int(0).op(TUPLE1).bytes(b'b').op(TUPLE + REDUCE)
    level.op(MARK).int(1).int(1).op(TUPLE1).get(2).op(b'\x89' + EMPTY_LIST).get(3).op(b'a' + TUPLE + BUILD)
    level.put(3).op(b'0')
    p.op(bytes(level.out[2:]), 500_000)
    return m.raw('nested-object-arrays.pkl', p.get(3).data())


@case('deep-tuple-2M-as-dict-key', 'nested more than')
def _(m: Maker) -> pathlib.Path:
    return m.raw('deep-tuple-key.pkl', RawPickle(2).op(EMPTY_DICT + b'N').op(TUPLE1, 2_000_000).op(b'N' + SETITEM)
                 .data())


@case('deep-tuple-5000-as-dict-key', 'nested more than')
def _(m: Maker) -> pathlib.Path:
    return m.raw('tuple-key-5000.pkl', RawPickle(2).op(EMPTY_DICT + b'N').op(TUPLE1, 5000).op(b'N' + SETITEM).data())


@case('deep-list-150k', 'nested more than')
def _(m: Maker) -> pathlib.Path:
    return m.raw('deep-list.pkl', RawPickle(2).op(EMPTY_LIST, 150_000).op(b'a', 149_999).data())


@case('500k-lists-on-the-stack', 'builds about')
def _(m: Maker) -> pathlib.Path:
    return m.raw('many-lists.pkl', RawPickle(2).op(EMPTY_LIST, 500_000).op(b'a', 499_999).data())


@case('deepening-a-list-after-nesting-it', 'already part of another')
def _(m: Maker) -> pathlib.Path:
    # Lists L0..Ln memoised empty, each appended into the previous only after that one was nested:
    # depth counted at insertion would stay 2; the reader refuses changes to a nested container.
    p = RawPickle(2)
    for i in range(1000):
        p.op(EMPTY_LIST).put(i).op(b'0')
    p.get(0).get(1).op(b'a' + b'0')
    for i in range(1, 999):
        p.get(i).get(i + 1).op(b'a' + b'0')
    return m.raw('late-deepening.pkl', p.get(0).data())


@case('list-containing-itself', 'itself')
def _(m: Maker) -> pathlib.Path:
    return m.raw('self-list.pkl', RawPickle(2).op(EMPTY_LIST).put(0).get(0).op(b'a').data())


# ----------------------------------------------------------------------------------------------
# Bounded memory: declared sizes.

@case('bytearray-4e9', 'bytearray')
def _(m: Maker) -> pathlib.Path:
    return m.raw('bytearray.pkl', RawPickle(2).call('builtins', 'bytearray', 4_000_000_000).data())


@case('object-array-500M-elements', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    obj = np_dtype('O8', (3, '|', None, None, None, -1, -1, 63))
    return m.raw('object-array-500M.pkl', entry(np_array((500_000_000,), obj, [])))


@case('float-array-500M-elements-without-data', 'with 0 bytes of data')
def _(m: Maker) -> pathlib.Path:
    return m.raw('float-array-500M.pkl', entry(np_array((500_000_000,), np_dtype('f8'), b'')))


@case('subarray-dtype-past-the-element-cap', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    sub = np_dtype('V8000', (3, '|', (np_dtype('f8'), (1000,)), None, None, 8000, 8, 0))

    def reconstruct(p: RawPickle) -> None:
        p.glob('numpy.core.multiarray', '_reconstruct').op(MARK).glob('numpy', 'ndarray')
        p.value((1 << 20,))
        sub(p)
        p.op(TUPLE + REDUCE)
    return m.raw('subarray.pkl', entry(reconstruct))


@case('numpy-reconstruct-with-a-size', 'with a size')
def _(m: Maker) -> pathlib.Path:
    def reconstruct(p: RawPickle) -> None:
        p.glob('numpy.core.multiarray', '_reconstruct').op(MARK).glob('numpy', 'ndarray')
        p.value((1 << 28,))
        p.bytes(b'd').op(TUPLE + REDUCE)
    return m.raw('reconstruct-size.pkl', entry(reconstruct))


@case('numpy-frombuffer-declared-huge', 'bytes of data')
def _(m: Maker) -> pathlib.Path:
    def frombuffer(p: RawPickle) -> None:
        p.glob('numpy._core.numeric', '_frombuffer').op(MARK).bytes(b'\0' * 8)
        np_dtype('f8')(p)
        p.value((1 << 40,))
        p.str('C').op(TUPLE + REDUCE)
    return m.raw('frombuffer.pkl', entry(frombuffer, protocol=4))


@case('binbytes8-declared-2^60', 'ends prematurely')
def _(m: Maker) -> pathlib.Path:
    return m.raw('binbytes8.pkl', b'\x80\x04\x8e' + (2 ** 60).to_bytes(8, 'little') + b'abc')


@case('binunicode8-declared-4e9', 'ends prematurely')
def _(m: Maker) -> pathlib.Path:
    return m.raw('binunicode8.pkl', b'\x80\x04\x8d' + (4_000_000_000).to_bytes(8, 'little') + b'abc')


@case('pt-deflated-storage-3.75GiB', 'compressed zip entries expand')
def _(m: Maker) -> pathlib.Path:
    nbytes = 3840 << 20
    stream, crc = pf.deflated_zeros(nbytes)
    return native_zip('deflate-bomb.pt', m, nbytes // 4, ('archive/data/0', stream, 8, crc, nbytes))


@case('pt-storage-record-shorter-than-declared', 'are declared')
def _(m: Maker) -> pathlib.Path:
    return native_zip('short-record.pt', m, 1 << 30, pf.zip_entry('archive/data/0', b'\0' * 64))


@case('pt-zip-entry-outside-the-file', 'outside the file')
def _(m: Maker) -> pathlib.Path:
    path = native_zip('outside.pt', m, 16, pf.zip_entry('archive/data/0', b'\0' * 64))
    data = bytearray(path.read_bytes())
    central = data.rfind(b'PK\x01\x02')   # The last central record (archive/data/0): claim 1 GiB stored.
    data[central + 20:central + 28] = (1 << 30).to_bytes(4, 'little') * 2
    path.write_bytes(bytes(data))
    return path


@case('pickle-storage-payload-declared-huge', 'remain')
def _(m: Maker) -> pathlib.Path:
    payload = legacy_storage_payload(1 << 40, b'\0' * 16)
    return m.raw('payload-huge.pkl', entry(tensor_over(payload, (4,), (1,))))


@case('tensor-view-with-zero-strides', 'exceeds its storage')
def _(m: Maker) -> pathlib.Path:
    payload = legacy_storage_payload(1, b'\0' * 4)
    return m.raw('stride0.pkl', entry(tensor_over(payload, (100_000, 100_000), (0, 0))))


@case('bytearray-copies-of-one-memoised-string', 'more than a file of')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2).op(EMPTY_LIST + MARK).bytes(bytes(1 << 20)).put(0).op(b'0')
    for _ in range(3000):
        p.glob('builtins', 'bytearray').get(0).op(TUPLE1 + REDUCE)
    return m.raw('bytearray-copies.pkl', p.op(b'e').data())


@case('storage-payload-viewed-3000-times', 'more than a file of')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2).op(EMPTY_LIST + MARK)
    p.call('torch.storage', '_load_from_bytes', legacy_storage_payload(1 << 18, bytes(1 << 20))).put(0).op(b'0')
    for _ in range(3000):
        p.glob('torch._utils', '_rebuild_tensor_v2').op(MARK).get(0)
        for v in (0, (1 << 18,), (1,), False, None):
            p.value(v)
        p.op(TUPLE + REDUCE)
    return m.raw('views.pkl', p.op(b'e').data())


@case('900k-marks', 'builds about')
def _(m: Maker) -> pathlib.Path:
    return m.raw('marks.pkl', RawPickle(2).op(MARK, 900_000).data())


# ----------------------------------------------------------------------------------------------
# Bounded work: shared sub-structures and instruction counts.

@case('1.2-million-instructions', 'pickle instructions')
def _(m: Maker) -> pathlib.Path:
    return m.raw('instructions.pkl', RawPickle(2).op(b'N0', 600_000).op(b'N').data())



@case('tuple-dag-as-dict-key', 'dict key')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2).op(EMPTY_DICT + EMPTY_TUPLE).put(0)
    for _ in range(60):
        p.op(b'0').get(0).get(0).op(b'\x86').put(0)
    return m.raw('tuple-dag.pkl', p.op(b'N' + SETITEM).data())


@case('list-dag-in-constructor-arguments', 'too many values')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].state['_init_kwargs']['channel_base'] = dag_list(30)
    return m.pickle('dag-kwargs.pkl', data)


@case('list-dag-in-training-set-kwargs', 'training_set_kwargs holds too many values')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['training_set_kwargs']['path'] = dag_list(30)
    return m.pickle('dag-training.pkl', data)


@case('list-dag-in-positional-arguments', '_init_args holds too many values')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].state['_init_args'] = dag_list(30)
    return m.pickle('dag-args.pkl', data)


@case('module-tree-dag', 'sub-modules')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    node = data['G_ema'].child('mapping.fc0')
    for _ in range(14):  # 2 ** 14 paths to the innermost layer.
        node = pf.Persistent('FullyConnectedLayer', {**node.state, '_modules': {'a': node, 'b': node}})
    data['G_ema'].child('mapping').state['_modules']['fc0'] = node
    return m.pickle('module-dag.pkl', data)


# ----------------------------------------------------------------------------------------------
# Constructor bombs.

def _kwargs_case(name: str, arch: str, edit: Callable[[dict], None], fragment: str) -> None:
    def build(m: Maker) -> pathlib.Path:
        data = m.snapshot(arch)
        edit(data['G_ema'].state['_init_kwargs'])
        return m.pickle(f'{name}.pkl', data)

    def build_native(m: Maker) -> pathlib.Path:
        payload = m.native_payload('stylegan3-t' if arch.startswith('stylegan3') else 'stylegan2')
        kwargs = json.loads(payload['init_kwargs_json'])
        edit(kwargs)
        payload['init_kwargs_json'] = json.dumps(kwargs)
        return m.native(f'{name}.pt', payload)

    CASES[f'{name}-pkl'] = (build, fragment)
    CASES[f'{name}-pt'] = (build_native, fragment)


_kwargs_case('mapping-num-layers-1e7', 'stylegan2', lambda kw: kw['mapping_kwargs'].update(num_layers=10 ** 7),
             'mapping_kwargs.num_layers')
_kwargs_case('mapping-num-layers-40', 'stylegan2', lambda kw: kw['mapping_kwargs'].update(num_layers=40),
             'implies 40 mapping layers')
_kwargs_case('stylegan3-num-layers-1e5', 'stylegan3-t', lambda kw: kw.update(num_layers=10 ** 5), 'num_layers')
_kwargs_case('stylegan3-num-layers-60', 'stylegan3-t', lambda kw: kw.update(num_layers=60), 'synthesis layers')
_kwargs_case('layer-features-20000', 'stylegan3-t', lambda kw: kw['mapping_kwargs'].update(layer_features=20000),
             'layer_features')
_kwargs_case('w-dim-16000', 'stylegan3-t', lambda kw: kw.update(w_dim=16000), 'larger than the file')
_kwargs_case('channels-16384', 'stylegan2', lambda kw: kw.update(channel_base=1 << 24, channel_max=1 << 14),
             'larger than the file')
_kwargs_case('stylegan3-long-filters', 'stylegan3-t', lambda kw: kw.update(filter_size=64, lrelu_upsampling=16),
             'taps')
_kwargs_case('stylegan2-even-kernel', 'stylegan2', lambda kw: kw.update(kernel_size=2), 'odd')
_kwargs_case('architecture-list', 'stylegan2', lambda kw: kw.update(architecture=['skip']), 'architecture')
_kwargs_case('float-nan-argument', 'stylegan3-t', lambda kw: kw.update(first_cutoff=float('nan')), 'first_cutoff')


# ----------------------------------------------------------------------------------------------
# Always a NetworkLoadError.

@case('int-key-in-synthesis-modules', 'sub-module name 7')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].child('synthesis').state['_modules'][7] = data['G_ema'].child('synthesis.input')
    return m.pickle('int-key.pkl', data)


@case('int-key-in-parameters', 'parameter name 3')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].child('mapping.fc0').state['_parameters'][3] = torch.zeros(2)
    return m.pickle('int-param-key.pkl', data)


@case('pt-deeply-nested-json-kwargs', 'nested too deeply')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['init_kwargs_json'] = '[' * 30_000 + ']' * 30_000
    return m.native('deep-json.pt', payload)


@case('pt-deeply-nested-json-metadata', 'nested too deeply')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['metadata_json'] = '{"a":' * 100_000 + '1' + '}' * 100_000
    return m.native('deep-metadata.pt', payload)


@case('pt-json-40-levels', 'nested too deeply')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    kwargs = json.loads(payload['init_kwargs_json'])
    kwargs['mapping_kwargs']['layer_features'] = json.loads('[' * 40 + ']' * 40)
    payload['init_kwargs_json'] = json.dumps(kwargs)
    return m.native('json-40.pt', payload)


@case('pt-architecture-is-a-list', 'unknown architecture')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['architecture'] = ['stylegan2']
    return m.native('architecture-list.pt', payload)


@case('pt-sparse-tensor', '_rebuild_sparse_tensor')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['state_dict']['mapping.w_avg'] = payload['state_dict']['mapping.w_avg'].to_sparse()
    return m.native('sparse.pt', payload)


@case('pt-meta-tensor', '_rebuild_meta_tensor_no_storage')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['state_dict']['mapping.w_avg'] = torch.empty(32, device='meta')
    return m.native('meta.pt', payload)


@case('pkl-sparse-tensor', '_rebuild_sparse_tensor')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].child('mapping').state['_buffers']['w_avg'] = torch.zeros(32).to_sparse()
    return m.pickle('sparse.pkl', data)


@case('pkl-nan-weights', 'NaN or infinite')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    weight = data['G_ema'].child('mapping.fc1').state['_parameters']['weight']
    weight.data[3, 4] = float('nan')
    return m.pickle('nan.pkl', data)


@case('pt-inf-weights', 'NaN or infinite')
def _(m: Maker) -> pathlib.Path:
    payload = m.native_payload()
    payload['state_dict']['synthesis.b8.conv0.bias'][0] = float('inf')
    return m.native('inf.pt', payload)


@case('pkl-magnitude-ema-zero', 'magnitude_ema is not positive')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    layer = m.generators['stylegan3-t'].synthesis.layer_names[2]
    data['G_ema'].child(f'synthesis.{layer}').state['_buffers']['magnitude_ema'] = torch.zeros([])
    return m.pickle('magnitude.pkl', data)


@case('pt-not-a-zip-of-torch', 'not a torch.save container')
def _(m: Maker) -> pathlib.Path:
    return pf.write_zip(m.path('other.zip'), [pf.zip_entry('readme.txt', b'hello')])


# ----------------------------------------------------------------------------------------------
# Code that would create the sentinel.

@case('exec-in-storage-payload', 'builtins.exec')
def _(m: Maker) -> pathlib.Path:
    code = f'open({str(m.sentinel)!r}, "w").close()'
    payload = legacy_storage_payload(1, b'\0' * 4, main=lambda p: p.call('builtins', 'exec', code))
    return m.raw('exec-payload.pkl', entry(tensor_over(payload, (1,), (1,))))


@case('system-inside-a-dtype-state', 'system')
def _(m: Maker) -> pathlib.Path:
    state = (3, '<', None, None, None, -1, -1, lambda p: p.call(os.system.__module__, 'system', f'touch {m.sentinel}'))
    return m.raw('system-dtype.pkl', entry(np_array((1,), np_dtype('f8', state), b'\0' * 8)))


@case('module-src-with-an-object-array-attribute', 'numpy dtype')
def _(m: Maker) -> pathlib.Path:
    data = m.snapshot()
    data['G_ema'].meta['module_src'] = f'open({str(m.sentinel)!r}, "w").close()\n'
    data['G_ema'].state['extra'] = np.array([1, 'x'], dtype=object)
    return m.pickle('module-src.pkl', data)


@case('pt-import-module', 'import_module')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2)
    p.value({'format': 'alias-free-viz-network', 'version': 1,
              'state_dict': lambda q: q.call('importlib', 'import_module', SENTINEL_MODULE)})
    return pf.write_zip(m.path('import.pt'), [pf.zip_entry('archive/data.pkl', p.data())])


@case('build-on-an-allowed-global', 'BUILD instruction')
def _(m: Maker) -> pathlib.Path:
    p = RawPickle(2).glob('collections', 'OrderedDict')
    p.value({'__reduce__': 1})
    return m.raw('build-global.pkl', p.op(BUILD).data())


# Controls: the same worker loads valid files (so refusals above are not the harness failing).
@case('control-published', '')
def _(m: Maker) -> pathlib.Path:
    return m.pickle('control.pkl', m.snapshot('stylegan3-r'))


@case('control-native', '')
def _(m: Maker) -> pathlib.Path:
    path = m.path('control.pt')
    save_network(m.generators['stylegan2'], path)
    return path


CONTROLS = ('control-published', 'control-native')


# ----------------------------------------------------------------------------------------------
# Running the cases.

def _reader(stream: io.TextIOBase, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_worker(cases: list[tuple[str, str]], warm_up: pathlib.Path, env: dict, log: pathlib.Path) -> dict:
    """Run `cases` in worker subprocesses; a case that kills or hangs one is recorded, the rest go on."""
    results: dict[str, dict] = {}
    remaining = list(cases)
    while remaining:
        with open(log, 'a') as err:
            proc = subprocess.Popen(
                [sys.executable, '-c', 'import pickle_fixtures as pf; pf.hostile_worker()', str(warm_up),
                 str(AS_LIMIT_MB), str(CASE_TIMEOUT_S)], cwd=ROOT, env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        proc.stdin.write(json.dumps(remaining))
        proc.stdin.close()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        current, started, deadline = None, False, time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                proc.kill()
                proc.wait(10)
                results[current or remaining[0][0]] = {'outcome': 'killed: no answer in time', 'message': ''}
                break
            if line is None:
                code = proc.wait(10)
                how = f'signal {-code}' if code < 0 else f'exit status {code}'
                died = {'outcome': f'worker died ({how})', 'message': log.read_text()[-2000:]}
                if current is not None:
                    results[current] = died
                elif not started:  # It never got to a case: the rest cannot run either.
                    results.update({name: died for name, _ in remaining})
                break
            message = json.loads(line)
            if 'start' in message:
                current, started = message['start'], True
                deadline = time.monotonic() + CASE_TIMEOUT_S + 10
            else:
                results[message['name']] = message
                current = None
        proc.stdout.close()
        remaining = [c for c in remaining if c[0] not in results]
    return results


@pytest.fixture(scope='module')
def hostile(tmp_path_factory) -> tuple[dict, dict, pathlib.Path]:
    """(results by case name, paths by case name, sentinel path): every case built and run once."""
    folder = tmp_path_factory.mktemp('hostile')
    sentinel = folder / 'sentinel'
    (folder / f'{SENTINEL_MODULE}.py').write_text(f'open({str(sentinel)!r}, "w").close()\n')
    generators = {arch: pf.small_generator(arch) for arch in pf.ARCHS}
    maker = Maker(folder, sentinel, generators)
    paths = {name: builder(maker) for name, (builder, _) in CASES.items()}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / 'tests'), str(folder),
                                                       os.environ.get('PYTHONPATH', '')]))
    cases = [(name, str(path)) for name, path in paths.items()]
    results = run_worker(cases, paths['control-published'], env, folder / 'worker.log')
    return results, paths, sentinel


@pytest.mark.parametrize('name', [n for n in CASES if n not in CONTROLS])
def test_hostile_file_refused(hostile, name):
    results, paths, sentinel = hostile
    result = results[name]
    message = result['message']
    assert result['outcome'] in ('NetworkLoadError', 'UnsafePickleError'), result
    assert str(paths[name]) in message, message
    assert CASES[name][1] in message, message
    for sign in ('MemoryError', 'out of memory', 'unexpected', 'RecursionError'):
        assert sign not in message, message  # Refused by a check, not saved by a limit or the last resort.
    assert result['seconds'] < SECONDS_BOUND, result
    assert result['peak_mb'] < PEAK_BOUND_MB, result
    assert not sentinel.exists()


@pytest.mark.parametrize('name', CONTROLS)
def test_control_files_load_in_the_worker(hostile, name):
    results, _, sentinel = hostile
    assert results[name]['outcome'] == 'ok', results[name]
    assert results[name]['seconds'] < SECONDS_BOUND and results[name]['peak_mb'] < PEAK_BOUND_MB, results[name]
    assert not sentinel.exists()


def test_file_sizes_are_small(hostile):
    """The attacks are tiny files (the point: a few hundred bytes must not cost gigabytes)."""
    _, paths, _ = hostile
    sizes = {name: paths[name].stat().st_size for name in ('bytearray-4e9', 'object-array-500M-elements',
                                                           'subarray-dtype-past-the-element-cap')}
    assert max(sizes.values()) < 400, sizes
    assert paths['pt-deflated-storage-3.75GiB'].stat().st_size < 8 << 20
