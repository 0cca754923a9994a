"""Our own format (save_network / load_network) and the converter from published pickles."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pickle_fixtures as pf
import pytest
import torch

from renderer import NetworkLoadError, load_network, network_info, save_network
from renderer.commands import convert
from renderer.io import native_format


@pytest.mark.parametrize('arch, c_dim', [('stylegan3-t', 0), ('stylegan3-r', 3), ('stylegan2', 2)])
def test_round_trip(tmp_path, arch, c_dim):
    G = pf.small_generator(arch, c_dim=c_dim)
    if arch.startswith('stylegan3'):
        G.synthesis.input.transform.copy_(torch.tensor([[0.8, -0.6, 0.1], [0.6, 0.8, -0.05], [0, 0, 1]]))
    path = tmp_path / 'net.pt'
    save_network(G, path)
    H = load_network(path)
    assert pf.tensors_equal(G, H) == [] and not H.training
    assert all(not p.requires_grad for p in H.parameters())
    for psi in (1.0, 0.6):
        assert torch.equal(pf.render(G, (0, 1, 2), psi, class_idx=2), pf.render(H, (0, 1, 2), psi, class_idx=2))
    info = network_info(H)
    assert (info.format, info.source, info.origin, info.config) == ('native', str(path), None, arch)
    assert info.init_kwargs == G.init_kwargs


def test_file_layout(tmp_path):
    """The documented dict, readable with torch.load(weights_only=True) alone."""
    G = pf.small_generator('stylegan2')
    path = tmp_path / 'net.pt'
    save_network(G, path)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {'format', 'version', 'architecture', 'init_kwargs_json', 'state_dict', 'metadata_json'}
    assert (payload['format'], payload['version'], payload['architecture']) == \
           ('alias-free-viz-network', 1, 'stylegan2')
    assert json.loads(payload['init_kwargs_json']) == G.init_kwargs
    assert json.loads(payload['metadata_json'])['config'] == 'stylegan2'
    assert set(payload['state_dict']) == set(G.state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ['net.pt']  # No temporary file left behind.


def test_format_detected_by_content(tmp_path):
    G = pf.small_generator('stylegan3-t')
    save_network(G, tmp_path / 'native.pkl')
    pf.write_published(tmp_path / 'published.pt', G)
    assert network_info(load_network(tmp_path / 'native.pkl')).format == 'native'
    assert network_info(load_network(tmp_path / 'published.pt')).format == 'published-pickle'


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 partial')
        raise OSError('disk full')

    monkeypatch.setattr(native_format.torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        save_network(pf.small_generator('stylegan2'), tmp_path / 'net.pt')
    assert list(tmp_path.iterdir()) == []


def write_payload(path, **changes):
    G = pf.small_generator('stylegan2')
    save_network(G, path)
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value(payload) if callable(value) else value
    torch.save(payload, path)
    return path


@pytest.mark.parametrize('changes, fragment', [
    (dict(format='something-else'), 'not an alias-free-viz network'),
    (dict(version=2), 'version 2'),
    (dict(architecture='stylegan9'), "unknown architecture 'stylegan9'"),
    (dict(init_kwargs_json='{not json'), 'init_kwargs_json'),
    (dict(init_kwargs_json=lambda p: json.dumps({**json.loads(p['init_kwargs_json']), 'bogus': 1})), 'bogus'),
    (dict(metadata_json=None), 'metadata_json'),
    (dict(state_dict=lambda p: {k: v for k, v in p['state_dict'].items() if k != 'mapping.w_avg'}),
     'missing tensor mapping.w_avg'),
    (dict(state_dict=lambda p: {**p['state_dict'], 'mapping.extra': torch.zeros(2)}),
     'unexpected tensor mapping.extra'),
    (dict(state_dict=lambda p: {**p['state_dict'], 'mapping.w_avg': torch.zeros(5)}), 'shape mismatch'),
    (dict(state_dict=[1, 2]), 'state_dict'),
])
def test_broken_native_files(tmp_path, changes, fragment):
    path = write_payload(tmp_path / 'net.pt', **changes)
    with pytest.raises(NetworkLoadError, match=fragment) as info:
        load_network(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize('fraction', [0.1, 0.5, 0.99])
def test_truncated_native_file(tmp_path, fraction):
    path = tmp_path / 'net.pt'
    save_network(pf.small_generator('stylegan2'), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(NetworkLoadError, match=str(path)):
        load_network(path)


def test_converter(tmp_path, capsys):
    G, G_train = pf.small_generator('stylegan3-r', c_dim=2), pf.small_generator('stylegan3-r', c_dim=2, seed=5)
    src = pf.write_published(tmp_path / 'in.pkl', G, G=G_train)
    assert convert.run([str(src), str(tmp_path / 'out.pt')]) == 0
    assert 'stylegan3-r' in capsys.readouterr().out
    H = load_network(tmp_path / 'out.pt')
    assert pf.tensors_equal(G, H) == []
    assert torch.equal(pf.render(G, (3, 4), 0.5, class_idx=1), pf.render(H, (3, 4), 0.5, class_idx=1))
    info = network_info(H)
    assert (info.format, info.origin, info.key) == ('native', str(src), 'G_ema')
    assert info.file_keys == ('G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs', 'progress')
    assert info.has_discriminator and info.training_set_kwargs == pf.TRAINING_SET_KWARGS

    assert convert.run([str(src), str(tmp_path / 'g.pt'), '--key', 'G', '--quiet']) == 0
    assert pf.tensors_equal(G_train, load_network(tmp_path / 'g.pt')) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['g.pt', 'in.pkl', 'out.pt']


def test_converter_errors(tmp_path, capsys):
    assert convert.run([str(tmp_path / 'missing.pkl'), str(tmp_path / 'out.pt')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'missing.pkl' in err and 'no such file' in err
    src = pf.write_published(tmp_path / 'in.pkl', pf.small_generator('stylegan2'))
    (tmp_path / 'a-file').write_bytes(b'')
    assert convert.run([str(src), str(tmp_path / 'a-file' / 'out.pt')]) == 2     # no folder can be made there
    err = capsys.readouterr().err
    assert 'cannot write' in err and str(tmp_path / 'a-file' / 'out.pt') in err and '.partial' not in err
    assert convert.run([str(src), str(tmp_path / 'new-dir' / 'out.pt'), '--quiet']) == 0   # a missing one is
    assert (tmp_path / 'new-dir' / 'out.pt').is_file()
    assert convert.run([str(src), str(tmp_path / 'out.pt'), '--key', 'D']) == 2
    assert 'Discriminator' in capsys.readouterr().err
    assert not (tmp_path / 'out.pt').exists()
    (tmp_path / 'new-dir' / 'out.pt').unlink()


def test_converter_command_line(tmp_path):
    G = pf.small_generator('stylegan2')
    src = pf.write_published(tmp_path / 'in.pkl', G)
    out = tmp_path / 'out.pt'
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, '-m', 'renderer.commands.convert', str(src), str(out)], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert pf.tensors_equal(G, load_network(out)) == []


def test_converting_to_a_device_writes_through_it(tmp_path):
    """OUT may be /dev/null (here through a link to it): written in place, never replaced."""
    import stat
    src = pf.write_published(tmp_path / 'net.pkl', pf.small_generator('stylegan2', res=16))
    link = tmp_path / 'null'
    link.symlink_to(os.devnull)
    assert convert.run([str(src), str(link), '--quiet']) == 0
    assert link.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert sorted(os.listdir(tmp_path)) == ['net.pkl', 'null']
