"""Network pickles for the loading tests: small generators, rendering, comparisons, hostile reduce calls.

The published-format writers themselves live in renderer.io.published_writer (the
benchmarks use them too); they are re-exported here under their usual names.
"""

from __future__ import annotations

import copy
import pathlib
import struct
import sys
import zlib
from typing import Any, Union

import numpy as np
import torch

from renderer.io.published_writer import (  # noqa: F401
    HARMLESS_SOURCE,
    POSITIONAL,
    STAND_IN_MODULES,
    TRAINING_SET_KWARGS,
    Persistent,
    augment_pipe_record,
    discriminator_record,
    easydict,
    generator_record,
    module_record,
    snapshot,
    stand_in_modules,
    write_pickle,
    write_published,
)
from renderer.networks import stylegan2, stylegan3

ARCHS = ('stylegan3-t', 'stylegan3-r', 'stylegan2')


SMALL_CONFIGS = {
    'stylegan3-t': (stylegan3.Generator, dict(channel_base=2048, channel_max=32)),
    'stylegan3-r': (stylegan3.Generator, dict(channel_base=4096, channel_max=64, conv_kernel=1,
                                              use_radial_filters=True)),
    'stylegan2': (stylegan2.Generator, dict(channel_base=1024, channel_max=32, mapping_kwargs=dict(num_layers=2))),
}


def small_generator(arch: str, c_dim: int = 0, seed: int = 0, res: int = 32) -> torch.nn.Module:
    """A small random generator ('stylegan3-t', 'stylegan3-r', 'stylegan2') in eval mode, every tensor non-trivial:
    random biases, w_avg, input-magnitude EMAs and noise strengths, so that a misplaced tensor shows."""
    cls, kwargs = SMALL_CONFIGS[arch]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = cls(32, c_dim, 32, res, 3, **copy.deepcopy(kwargs)).eval()
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            leaf = name.rsplit('.', 1)[-1]
            if leaf in ('bias', 'w_avg'):
                t.add_(torch.randn_like(t) * 0.1)
            elif leaf == 'magnitude_ema':
                t.fill_(float(torch.rand([]) + 0.5))
            elif leaf == 'noise_strength':
                t.fill_(0.5)
    return G


def render(G: torch.nn.Module, seeds=(0, 1, 2), psi: float = 1.0, class_idx: int = 0) -> torch.Tensor:
    """Images [len(seeds), C, H, W] for seeds (numpy RandomState latents), one-hot labels for conditional G."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    c = torch.zeros([len(seeds), G.c_dim])
    if G.c_dim:
        c[:, class_idx % G.c_dim] = 1
    with torch.no_grad():
        return G(z, c, truncation_psi=psi, truncation_cutoff=None, noise_mode='const')


def tensors_equal(A: torch.nn.Module, B: torch.nn.Module) -> list[str]:
    """Names of tensors that differ (or exist in only one) between A and B; empty when identical."""
    a = dict(A.named_parameters()) | dict(A.named_buffers())
    b = dict(B.named_parameters()) | dict(B.named_buffers())
    bad = sorted(set(a) ^ set(b))
    bad += [n for n in sorted(set(a) & set(b)) if a[n].dtype != b[n].dtype or not torch.equal(a[n], b[n])]
    return bad


class Reduce:
    """An object that pickles as a call fn(*args): what hostile pickles are made of."""

    def __init__(self, fn: Any, *args: Any):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return self.fn, self.args


# ----------------------------------------------------------------------------------------------
# Hostile files: raw opcodes, hand-made zip containers, and a worker that loads them in a subprocess.

class ReduceBuild:
    """An object that pickles as fn(*args) followed by a BUILD with `state` (how numpy arrays and dtypes pickle)."""

    def __init__(self, fn: Any, args: tuple, state: Any):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return self.fn, self.args, self.state


class RawPickle:
    """A pickle written opcode by opcode (pickletools names), for files the standard pickler never writes."""

    def __init__(self, protocol: int = 4):
        self.out = bytearray(b'\x80' + bytes([protocol]))

    def op(self, code: bytes, count: int = 1) -> 'RawPickle':
        self.out += code * count
        return self

    def int(self, n: int) -> 'RawPickle':
        if 0 <= n < 256:
            return self.op(b'K' + bytes([n]))
        if -2 ** 31 <= n < 2 ** 31:
            return self.op(b'J' + struct.pack('<i', n))
        data = n.to_bytes((n.bit_length() + 8) // 8, 'little', signed=True)
        return self.op(b'\x8a' + bytes([len(data)]) + data)

    def str(self, s: str) -> 'RawPickle':
        data = s.encode('utf-8')
        return self.op(b'X' + struct.pack('<I', len(data)) + data)

    def bytes(self, b: bytes) -> 'RawPickle':
        return self.op(b'B' + struct.pack('<I', len(b)) + b)

    def glob(self, module: str, name: str) -> 'RawPickle':
        return self.op(f'c{module}\n{name}\n'.encode())

    def put(self, index: int) -> 'RawPickle':
        return self.op(b'r' + struct.pack('<I', index))

    def get(self, index: int) -> 'RawPickle':
        return self.op(b'j' + struct.pack('<I', index))

    def value(self, v: Any) -> 'RawPickle':
        """The opcodes of a plain value (None, bool, int, str, bytes, tuple, list, dict) or a fragment (callable)."""
        if v is None:
            return self.op(b'N')
        if isinstance(v, bool):
            return self.op(b'\x88' if v else b'\x89')
        if isinstance(v, int):
            return self.int(v)
        if isinstance(v, str):
            return self.str(v)
        if isinstance(v, bytes):
            return self.bytes(v)
        if isinstance(v, tuple):
            self.op(b'(')
            for x in v:
                self.value(x)
            return self.op(b't')
        if isinstance(v, list):
            self.op(b'](')
            for x in v:
                self.value(x)
            return self.op(b'e')
        if isinstance(v, dict):
            self.op(b'}(')
            for k, x in v.items():
                self.value(k).value(x)
            return self.op(b'u')
        if callable(v):
            v(self)
            return self
        raise TypeError(type(v))

    def call(self, module: str, name: str, *args: Any) -> 'RawPickle':
        """module.name(*args) by REDUCE; args are plain values or RawPickle fragments (see `value`)."""
        self.glob(module, name).op(b'(')
        for arg in args:
            self.value(arg)
        return self.op(b'tR')

    def data(self) -> bytes:
        return bytes(self.out) + b'.'


MARK, STOP, NONE, TUPLE, TUPLE1, TUPLE2, EMPTY_TUPLE = b'(', b'.', b'N', b't', b'\x85', b'\x86', b')'
EMPTY_LIST, APPEND, EMPTY_DICT, SETITEM, POP, REDUCE, BUILD = b']', b'a', b'}', b's', b'0', b'R', b'b'


def write_zip(path: Union[str, pathlib.Path], entries: list[tuple[str, bytes, int, int, int]]) -> pathlib.Path:
    """A zip file of (name, data as stored, method 0 / 8, crc32, uncompressed size) entries, written by hand
    (so that a deflated entry can be a stream prepared beforehand, e.g. a bomb)."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        raw = name.encode()
        offset = len(out)
        fields = struct.pack('<HHHHHIIIHH', 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += b'PK\x03\x04' + fields + raw + data
        central += (b'PK\x01\x02' + struct.pack('<H', 20) + fields + struct.pack('<HHHII', 0, 0, 0, 0, offset) + raw)
    end = struct.pack('<HHHHIIH', 0, 0, len(entries), len(entries), len(central), len(out), 0)
    path = pathlib.Path(path)
    path.write_bytes(bytes(out + central + b'PK\x05\x06' + end))
    return path


def zip_entry(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    """A stored (uncompressed) entry for write_zip."""
    return name, data, 0, zlib.crc32(data), len(data)


def crc32_of_zeros(nbytes: int) -> int:
    """zlib.crc32(bytes(nbytes)) without the bytes: a zero byte acts linearly on the CRC register, so
    `nbytes` of them are that 32 x 32 bit matrix raised to the power nbytes (by repeated squaring)."""
    def eight_shifts(c: int) -> int:
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        return c

    def apply(matrix: list[int], v: int) -> int:
        out = 0
        for j in range(32):
            if v >> j & 1:
                out ^= matrix[j]
        return out

    matrix, register = [eight_shifts(1 << j) for j in range(32)], 0xFFFFFFFF
    while nbytes:
        if nbytes & 1:
            register = apply(matrix, register)
        matrix = [apply(matrix, column) for column in matrix]
        nbytes >>= 1
    return register ^ 0xFFFFFFFF


def deflated_zeros(nbytes: int) -> tuple[bytes, int]:
    """(raw deflate stream, crc32) of `nbytes` zero bytes (a multiple of 1 MiB), made in milliseconds:
    each MiB is compressed after a full flush, so every one compresses to the same bytes."""
    mib = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(mib)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (nbytes // mib) + compressor.flush(zlib.Z_FINISH), crc32_of_zeros(nbytes)


def hostile_worker() -> None:
    """Subprocess entry: load each (name, path) of the JSON list on stdin; print one JSON line per case.

    Before the cases: one valid network (argv[1]) is loaded to warm up, the address space is limited
    to argv[2] MB above what is mapped then, and each case gets argv[3] seconds (SIGALRM). Per case:
    a line {"start": name}, then {"name", "outcome" (ok or the exception type), "message", "seconds",
    "peak_mb" (peak resident memory above the resident size before the case)}.
    """
    import json
    import resource
    import signal
    import time

    from renderer import load_network

    warm_up, as_limit_mb, case_timeout_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    load_network(warm_up)

    def status_kb(field: str) -> int:
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))

    class CaseTimeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise CaseTimeout

    signal.signal(signal.SIGALRM, on_alarm)
    limit = status_kb('VmSize') * 1024 + (as_limit_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for name, path in json.loads(sys.stdin.read()):
        print(json.dumps({'start': name}), flush=True)
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')   # Reset the peak resident size (VmHWM) to the current one.
        except OSError:
            pass
        rss = status_kb('VmRSS')
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, case_timeout_s)
        try:
            load_network(path, progress=False)
            outcome, message = 'ok', ''
        except CaseTimeout:
            outcome, message = 'timeout', f'still running after {case_timeout_s} s'
        except BaseException as e:  # Reported, whatever it is: the test decides.
            outcome, message = type(e).__name__, str(e)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - start
        peak_mb = max(status_kb('VmHWM') - rss, 0) / 1024
        print(json.dumps({'name': name, 'outcome': outcome, 'message': message[:2000], 'seconds': seconds,
                          'peak_mb': peak_mb}), flush=True)
