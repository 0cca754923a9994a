"""Hostile files are refused without running anything: every payload would create a sentinel file."""

from __future__ import annotations

import builtins
import importlib
import io
import os
import pathlib
import pickle
import subprocess
import sys
import time

import pickle_fixtures as pf
import pytest
import torch

from renderer import NetworkLoadError, load_network
from renderer.errors import UnsafePickleError
from renderer.io.safe_unpickle import EasyDict

SENTINEL_MODULE = 'afv_sentinel_module'


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """A path that only a successful payload creates; also an importable module that creates it when imported."""
    path = tmp_path / 'sentinel'
    (tmp_path / f'{SENTINEL_MODULE}.py').write_text(f'open({str(path)!r}, "w").close()\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop(SENTINEL_MODULE, None)


def payloads(sentinel: pathlib.Path) -> dict[str, tuple[pf.Reduce, str]]:
    """name -> (object whose unpickling creates `sentinel`, the global the loader must name)."""
    s = str(sentinel)
    return {
        'os.system': (pf.Reduce(os.system, f'touch {s}'), f'{os.system.__module__}.system'),
        'builtins.exec': (pf.Reduce(builtins.exec, f'open({s!r}, "w").close()'), 'builtins.exec'),
        'builtins.eval': (pf.Reduce(builtins.eval, f'open({s!r}, "w").close()'), 'builtins.eval'),
        'subprocess.Popen': (pf.Reduce(subprocess.Popen, ['touch', s]), 'subprocess.Popen'),
        'importlib.import_module': (pf.Reduce(importlib.import_module, SENTINEL_MODULE), 'importlib.import_module'),
    }


PAYLOADS = ['os.system', 'builtins.exec', 'builtins.eval', 'subprocess.Popen', 'importlib.import_module']


def hostile_files(tmp_path: pathlib.Path, payload: pf.Reduce) -> dict[str, pathlib.Path]:
    """The payload at the top level, as the G_ema entry, and deep inside an otherwise valid network."""
    data = pf.snapshot(pf.small_generator('stylegan2'))
    data['G_ema'].child('synthesis.b8.conv0').state['_init_kwargs']['resample_filter'] = payload
    return {
        'top': pf.write_pickle(tmp_path / 'top.pkl', payload),
        'entry': pf.write_pickle(tmp_path / 'entry.pkl', {'G_ema': payload}),
        'nested': pf.write_pickle(tmp_path / 'nested.pkl', data),
    }


@pytest.mark.parametrize('name', PAYLOADS)
def test_payload_is_live_with_plain_pickle(sentinel, name):
    """Control: the standard unpickler really runs each payload (so the refusals below mean something)."""
    obj = pickle.loads(pickle.dumps(payloads(sentinel)[name][0]))
    if isinstance(obj, subprocess.Popen):
        obj.wait()
    assert sentinel.exists()


@pytest.mark.parametrize('name', PAYLOADS)
def test_hostile_globals_refused(tmp_path, sentinel, name):
    payload, global_name = payloads(sentinel)[name]
    for where, path in hostile_files(tmp_path, payload).items():
        with pytest.raises(UnsafePickleError) as info:
            load_network(path)
        message = str(info.value)
        assert str(path) in message and global_name in message, (where, message)
    time.sleep(0.1)  # A process started by a payload would have created the sentinel by now.
    assert not sentinel.exists()
    assert SENTINEL_MODULE not in sys.modules


def test_module_src_is_never_executed(tmp_path, sentinel):
    """Each network object carries source text that would create the sentinel if executed."""
    evil_src = f'open({str(sentinel)!r}, "w").close()\n'
    exec(compile(evil_src, '<control>', 'exec'))  # Control: the source text works ...
    assert sentinel.exists()
    sentinel.unlink()
    G = pf.small_generator('stylegan3-t')
    H = load_network(pf.write_published(tmp_path / 'net.pkl', G, module_src=evil_src))
    assert not sentinel.exists()  # ... and loading never ran it,
    assert pf.tensors_equal(G, H) == []  # while the network itself loads fine.


def test_hostile_storage_payload_refused(tmp_path, sentinel):
    """Storage bytes are deserialised by torch's weights-only loader, never by a plain unpickler."""
    buf = io.BytesIO()
    torch.save(payloads(sentinel)['builtins.exec'][0], buf, _use_new_zipfile_serialization=False)
    path = pf.write_pickle(tmp_path / 'net.pkl', {'G_ema': pf.Reduce(torch.storage._load_from_bytes, buf.getvalue())})
    with pytest.raises(NetworkLoadError, match='weights-only') as info:
        load_network(path)
    assert str(path) in str(info.value)
    assert not sentinel.exists()


def test_hostile_native_file_refused(tmp_path, sentinel):
    """A torch.save zip (our format's container) holding a payload is refused by the weights-only loader."""
    path = tmp_path / 'net.pt'
    torch.save({'format': 'alias-free-viz-network', 'payload': payloads(sentinel)['os.system'][0]}, path)
    with pytest.raises(NetworkLoadError) as info:
        load_network(path)
    assert str(path) in str(info.value) and 'system' in str(info.value)
    assert not sentinel.exists()


def test_other_globals_refused(tmp_path):
    """Anything off the allow-list is refused, even harmless-looking names and other torch functions."""
    for obj, name in [(pf.Reduce(getattr, torch.Size, 'count'), 'builtins.getattr'),
                      (pf.Reduce(torch.load, 'x.pt'), 'torch.serialization.load'),
                      (pf.Reduce(pathlib.Path, '/'), 'pathlib'),
                      (pf.Reduce(open, 'x'), 'io.open')]:
        with pytest.raises(UnsafePickleError, match=name.replace('.', r'\.')):
            load_network(pf.write_pickle(tmp_path / 'x.pkl', {'G_ema': obj}))


def test_build_instructions_cannot_alter_allowed_objects(tmp_path):
    """BUILD on an allowed class or function (to change it for later loads) is refused."""
    attempts = {
        'class': b'\x80\x02cdnnlib.util\nEasyDict\nN}X\x03\x00\x00\x00fooK\x01s\x86b.',
        'function': b'\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x03\x00\x00\x00fooK\x01sb.',
        'record': b'\x80\x02ctorch_utils.persistence\n_reconstruct_persistent_obj\n}X\x03\x00\x00\x00fooK\x01sb.',
    }
    for what, data in attempts.items():
        path = tmp_path / f'{what}.pkl'
        path.write_bytes(data)
        with pytest.raises(NetworkLoadError, match=str(path)):
            load_network(path)
    assert not hasattr(EasyDict, 'foo')


def test_tensorflow_era_pickle_refused_with_advice(tmp_path):
    """Old TensorFlow pickles refer to dnnlib.tflib: refused with a message saying they must be converted."""
    data = b'\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81}X\x04\x00\x00\x00nameX\x02\x00\x00\x00G_sb.'
    path = tmp_path / 'tf.pkl'
    path.write_bytes(data)
    with pytest.raises(NetworkLoadError, match='TensorFlow') as info:
        load_network(path)
    assert 'convert' in str(info.value) and str(path) in str(info.value)
