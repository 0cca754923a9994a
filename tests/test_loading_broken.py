"""Broken files raise NetworkLoadError with a message naming the file and the problem; nothing hangs."""

from __future__ import annotations

import pickle

import pickle_fixtures as pf
import pytest
import torch

from renderer import NetworkLoadError, load_network


def expect_error(path, *fragments: str) -> str:
    with pytest.raises(NetworkLoadError) as info:
        load_network(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope='module')
def valid_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp('valid') / 'net.pkl'
    return pf.write_published(path, pf.small_generator('stylegan3-t')).read_bytes()


@pytest.fixture
def snapshot():
    G = pf.small_generator('stylegan3-t')
    return G, pf.snapshot(G)


def test_missing_file_and_directory(tmp_path):
    expect_error(tmp_path / 'nope.pkl', 'no such file')
    expect_error(tmp_path, 'directory')


def test_empty_file(tmp_path):
    path = tmp_path / 'empty.pkl'
    path.write_bytes(b'')
    expect_error(path, 'empty file')


@pytest.mark.parametrize('fraction', [1e-9, 0.001, 0.01, 0.2, 0.5, 0.9, 0.999, 'last'])
def test_truncated(tmp_path, valid_bytes, fraction):
    size = len(valid_bytes) - 1 if fraction == 'last' else max(1, int(len(valid_bytes) * fraction))
    path = tmp_path / 'truncated.pkl'
    path.write_bytes(valid_bytes[:size])
    expect_error(path)


@pytest.mark.parametrize('content', [b'hello, this is text\n', b'\x00' * 64, b'\x80\x09garbage', b'PK\x03\x04junk'])
def test_not_a_pickle(tmp_path, content):
    path = tmp_path / 'junk.pkl'
    path.write_bytes(content)
    expect_error(path)


@pytest.mark.parametrize('obj, fragment', [([1, 2, 3], 'list'), (42, 'int'), ('G_ema', 'str'),
                                           ({'G_ema': [1, 2]}, 'list'), ({'G_ema': None}, 'NoneType')])
def test_pickle_of_something_else(tmp_path, obj, fragment):
    expect_error(pf.write_pickle(tmp_path / 'other.pkl', obj), fragment)


def test_dict_without_key(tmp_path, snapshot):
    _, data = snapshot
    del data['G_ema']
    path = pf.write_pickle(tmp_path / 'net.pkl', data)
    expect_error(path, "no 'G_ema'", 'G, D, augment_pipe')
    expect_error(pf.write_pickle(tmp_path / 'empty_dict.pkl', {}), "no 'G_ema'", 'keys: none')


def test_discriminator_is_not_a_generator(tmp_path, snapshot):
    _, data = snapshot
    with pytest.raises(NetworkLoadError, match="'D' is a 'Discriminator' object, not a generator"):
        load_network(pf.write_pickle(tmp_path / 'net.pkl', data), key='D')


def test_missing_tensor(tmp_path, snapshot):
    G, data = snapshot
    name = G.synthesis.layer_names[3]
    del data['G_ema'].child(f'synthesis.{name}').state['_parameters']['weight']
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), f'missing tensor synthesis.{name}.weight')


def test_tensor_none_in_file(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('mapping').state['_buffers']['w_avg'] = None
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'missing tensor mapping.w_avg')


def test_unexpected_tensor(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('synthesis.input').state['_buffers']['extra'] = torch.zeros(3)
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'unexpected tensor synthesis.input.extra')


def test_tensor_where_ours_is_none(tmp_path, snapshot):
    """StyleGAN3's ToRGB layer has no up/down filters: a tensor there is unexpected."""
    G, data = snapshot
    name = G.synthesis.layer_names[-1]
    data['G_ema'].child(f'synthesis.{name}').state['_buffers']['up_filter'] = torch.ones(4)
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), f'unexpected tensor synthesis.{name}.up_filter')


def test_unexpected_sub_module(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('mapping').state['_modules']['fc9'] = data['G_ema'].child('mapping.fc0')
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'unexpected sub-module mapping.fc9',
                 'unexpected tensor mapping.fc9.weight')


def test_wrong_shape(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('synthesis.input').state['_buffers']['freqs'] = torch.zeros(7, 2)
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'shape mismatch for synthesis.input.freqs', '[7, 2]')


def test_wrong_dtype(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('mapping').state['_buffers']['w_avg'] = torch.zeros(32, dtype=torch.int64)
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'dtype mismatch for mapping.w_avg')


def test_parameter_stored_as_buffer(tmp_path, snapshot):
    _, data = snapshot
    state = data['G_ema'].child('mapping.fc0').state
    state['_buffers']['bias'] = state['_parameters'].pop('bias')
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'mapping.fc0.bias is a buffer in the file')


def test_non_tensor_where_tensor_expected(tmp_path, snapshot):
    _, data = snapshot
    data['G_ema'].child('mapping.fc0').state['_parameters']['weight'] = [1.0, 2.0]
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'mapping.fc0.weight is a list')


@pytest.mark.parametrize('path, class_name, fragment', [
    ('', 'Generator2', "'Generator2' object, not a generator"),
    ('synthesis', 'SynthesisNet', "no synthesis network of class 'SynthesisNetwork'"),
    ('synthesis.input', 'FourierInput', 'unknown generator structure'),
    ('mapping', 'MappingNetwork2', 'mapping is a MappingNetwork2 in the file, a MappingNetwork here'),
])
def test_unknown_class_name(tmp_path, snapshot, path, class_name, fragment):
    _, data = snapshot
    record = data['G_ema'].child(path) if path else data['G_ema']
    record.meta['class_name'] = class_name
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), fragment)


@pytest.mark.parametrize('edit, fragment', [
    (lambda kw: kw.update(bogus_option=3), 'bogus_option'),
    (lambda kw: kw['mapping_kwargs'].update(bogus_map=1), 'mapping_kwargs.bogus_map'),
    (lambda kw: kw.update(use_fp16=True), 'use_fp16'),
    (lambda kw: kw.pop('img_resolution'), 'lack img_resolution'),
    (lambda kw: kw.update(z_dim='512'), 'z_dim'),
    (lambda kw: kw.update(img_resolution=-4), 'img_resolution'),
    (lambda kw: kw.update(channel_base=None), 'cannot build'),
])
def test_bad_constructor_arguments(tmp_path, snapshot, edit, fragment):
    _, data = snapshot
    edit(data['G_ema'].state['_init_kwargs'])
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), fragment)


def test_stylegan2_unsupported_architecture_argument(tmp_path):
    G = pf.small_generator('stylegan2')
    data = pf.snapshot(G)
    data['G_ema'].state['_init_kwargs']['architecture'] = 'resnet'
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), 'resnet')


@pytest.mark.parametrize('edit, fragment', [
    (lambda meta: meta.update(version=99), 'version 99'),
    (lambda meta: meta.update(type='function'), "type 'function'"),
    (lambda meta: meta.pop('state'), 'state'),
    (lambda meta: meta.pop('class_name'), 'class name'),
    (lambda meta: meta['state'].pop('_modules'), '_modules is missing'),
    (lambda meta: meta['state'].update(_init_args=(1, 2, 3, 4, 5, 6)), 'positional'),
])
def test_malformed_network_object(tmp_path, snapshot, edit, fragment):
    _, data = snapshot
    edit(data['G_ema'].meta)
    expect_error(pf.write_pickle(tmp_path / 'net.pkl', data), fragment)


def test_tensor_view_outside_storage(tmp_path):
    """A tensor whose size/stride reach past its storage is refused, not read out of bounds."""
    storage = torch.zeros(4).untyped_storage()
    t = pf.Reduce(torch._utils._rebuild_tensor_v2, torch.storage.TypedStorage(wrap_storage=storage,
                                                                                dtype=torch.float32, _internal=True),
                  0, (100, 100), (100, 1), False, {})
    path = pf.write_pickle(tmp_path / 'net.pkl', {'G_ema': t})
    expect_error(path, 'exceeds its storage')


def test_huge_declared_length(tmp_path):
    """A pickle that declares an absurd byte-string length fails cleanly."""
    path = tmp_path / 'huge.pkl'
    path.write_bytes(b'\x80\x04\x8e' + (2 ** 60).to_bytes(8, 'little') + b'abc')
    expect_error(path)


def test_error_type_is_a_value_error(tmp_path):
    path = tmp_path / 'junk.pkl'
    path.write_bytes(pickle.dumps([1]))
    with pytest.raises(ValueError):
        load_network(path)
