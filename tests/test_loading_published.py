"""Published-format pickles (written by tests/pickle_fixtures.py) load back exactly, with their metadata."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
import warnings

import numpy as np
import pickle_fixtures as pf
import pytest
import torch
from net_helpers import rotation_matrix, translation_matrix

from renderer import NetworkInfo, load_network, network_info
from renderer.io.checkpoint import NetworkMismatchWarning
from renderer.networks import stylegan2, stylegan3


def transformed(G: torch.nn.Module) -> torch.nn.Module:
    """Give a StyleGAN3 generator a non-identity input transform (rotation and translation)."""
    if G.architecture == 'stylegan3':
        m = rotation_matrix(0.3) @ translation_matrix(0.05, -0.1)
        G.synthesis.input.transform.copy_(m)
    return G


def check_same(G: torch.nn.Module, H: torch.nn.Module, seeds=(0, 1, 2)) -> None:
    assert pf.tensors_equal(G, H) == []
    for psi in (1.0, 0.7):
        assert torch.equal(pf.render(G, seeds, psi, class_idx=1), pf.render(H, seeds, psi, class_idx=1))


@pytest.mark.parametrize('arch', pf.ARCHS)
@pytest.mark.parametrize('c_dim', [0, 4])
def test_round_trip_tensors_and_images(tmp_path, arch, c_dim):
    G = transformed(pf.small_generator(arch, c_dim=c_dim))
    path = pf.write_published(tmp_path / 'net.pkl', G, G=pf.small_generator(arch, c_dim=c_dim, seed=7))
    H = load_network(path)
    assert type(H) is type(G) and not H.training
    assert all(not p.requires_grad and p.dtype == torch.float32 for p in H.parameters())
    check_same(G, H)


@pytest.mark.parametrize('arch', ['stylegan2', 'stylegan3-t'])
@pytest.mark.parametrize('style', ['nested', 'positional'])
def test_constructor_argument_styles(tmp_path, arch, style):
    """StyleGAN2-ADA nests synthesis_kwargs; some files give the dimensions positionally."""
    G = pf.small_generator(arch, c_dim=3)
    H = load_network(pf.write_published(tmp_path / 'net.pkl', G, kwargs_style=style))
    check_same(G, H, seeds=(5,))


def test_key_selects_network(tmp_path):
    G_ema, G = pf.small_generator('stylegan2'), pf.small_generator('stylegan2', seed=9)
    path = pf.write_published(tmp_path / 'net.pkl', G_ema, G=G)
    assert pf.tensors_equal(G_ema, load_network(path)) == []
    H = load_network(path, key='G')
    assert pf.tensors_equal(G, H) == [] and network_info(H).key == 'G'


def test_metadata(tmp_path):
    G = pf.small_generator('stylegan3-r', c_dim=2)
    path = pf.write_published(tmp_path / 'net.pkl', G)
    H = load_network(str(path))
    info = network_info(H)
    assert info is H.info and isinstance(info, NetworkInfo)
    assert (info.source, info.format, info.architecture, info.config) == (str(path), 'published-pickle', 'stylegan3',
                                                                          'stylegan3-r')
    assert (info.img_resolution, info.img_channels, info.z_dim, info.c_dim, info.w_dim, info.num_ws) == \
           (32, 3, 32, 2, 32, G.num_ws)
    assert info.file_keys == ('G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs', 'progress')
    assert info.has_discriminator and info.has_augment_pipe
    assert info.training_set_kwargs == pf.TRAINING_SET_KWARGS and type(info.training_set_kwargs) is dict
    assert info.init_kwargs == G.init_kwargs == H.init_kwargs
    assert type(info.init_kwargs['mapping_kwargs']) is dict
    assert json.loads(json.dumps(info.to_dict())) == info.to_dict()
    assert NetworkInfo.from_dict(info.to_dict()) == info


def test_metadata_without_training_objects(tmp_path):
    G = pf.small_generator('stylegan2')
    H = load_network(pf.write_published(tmp_path / 'net.pkl', G, with_training_objects=False))
    info = network_info(H)
    assert info.file_keys == ('G', 'G_ema') and not info.has_discriminator and not info.has_augment_pipe
    assert info.training_set_kwargs is None


def test_network_info_of_module_built_in_memory():
    G = pf.small_generator('stylegan3-t')
    info = network_info(G)
    assert (info.format, info.source, info.config, info.num_ws) == ('module', None, 'stylegan3-t', G.num_ws)
    with pytest.raises(TypeError):
        network_info(torch.nn.Linear(2, 2))


@pytest.mark.parametrize('protocol, numpy_package', [(2, 'numpy.core'), (3, 'numpy.core'), (3, None), (5, None)])
def test_protocols_and_numpy_module_names(tmp_path, protocol, numpy_package):
    """Old files name numpy's reconstruct function under numpy.core, new ones under numpy._core."""
    G = pf.small_generator('stylegan3-t')
    path = pf.write_published(tmp_path / 'net.pkl', G, protocol=protocol, numpy_package=numpy_package)
    if numpy_package:
        assert b'numpy.core.multiarray\n_reconstruct' in path.read_bytes()
    check_same(G, load_network(path), seeds=(0,))


def test_numpy_arrays_and_scalars_survive_in_state(tmp_path):
    """numpy values in module states (sizes, sampling rates) go through the allowed reconstructors."""
    G = pf.small_generator('stylegan3-t')
    data = pf.snapshot(G)
    data['G_ema'].state['extra'] = [np.arange(3, dtype=np.int16), np.float32(2.5), np.zeros((2, 2), dtype=bool)]
    load_network(pf.write_pickle(tmp_path / 'net.pkl', data))


def test_bare_network_object(tmp_path):
    G = pf.small_generator('stylegan2')
    H = load_network(pf.write_pickle(tmp_path / 'net.pkl', pf.generator_record(G)))
    assert pf.tensors_equal(G, H) == [] and network_info(H).file_keys == ()


def test_older_persistence_version(tmp_path):
    G = pf.small_generator('stylegan2')
    data = pf.snapshot(G)
    data['G_ema'].meta['version'] = 4
    assert pf.tensors_equal(G, load_network(pf.write_pickle(tmp_path / 'net.pkl', data))) == []


def test_float16_tensors_become_float32(tmp_path):
    G = pf.small_generator('stylegan3-t')
    data = pf.snapshot(G)
    layer = data['G_ema'].child(f'synthesis.{G.synthesis.layer_names[1]}')
    layer.state['_parameters']['weight'] = torch.nn.Parameter(layer.state['_parameters']['weight'].half(),
                                                              requires_grad=False)
    H = load_network(pf.write_pickle(tmp_path / 'net.pkl', data))
    assert {p.dtype for p in H.parameters()} == {torch.float32}


def test_parameter_with_python_state(tmp_path):
    """Parameters carrying Python attributes pickle through _rebuild_parameter_with_state."""
    G = pf.small_generator('stylegan2')
    data = pf.snapshot(G)
    p = data['G_ema'].child('mapping.fc0').state['_parameters']['weight']
    p.some_flag = True
    path = pf.write_pickle(tmp_path / 'net.pkl', data)
    assert b'_rebuild_parameter_with_state' in path.read_bytes()
    assert pf.tensors_equal(G, load_network(path)) == []


def test_published_kwargs_defaults_read_from_file(tmp_path):
    """A StyleGAN2 file without conv_clamp in its arguments: the clamp recorded by its layers is used."""
    G = stylegan2.Generator(32, 0, 32, 16, 3, channel_base=512, channel_max=32, conv_clamp=None,
                            mapping_kwargs=dict(num_layers=2))
    data = pf.snapshot(G)
    del data['G_ema'].state['_init_kwargs']['conv_clamp']
    H = load_network(pf.write_pickle(tmp_path / 'net.pkl', data))
    assert H.init_kwargs['conv_clamp'] is None and H.synthesis.b16.conv1.conv_clamp is None


def test_stylegan3_codebase_stylegan2_kwargs(tmp_path):
    """StyleGAN2 files of the StyleGAN3 code base pass fused_modconv_default and friends flat."""
    G = stylegan2.Generator(32, 0, 32, 16, 3, channel_base=512, channel_max=32, num_fp16_res=4, conv_clamp=256,
                            fused_modconv_default='inference_only', mapping_kwargs=dict(num_layers=8))
    check_same(G, load_network(pf.write_published(tmp_path / 'net.pkl', G)), seeds=(0,))


def test_recorded_attribute_mismatch_warns(tmp_path):
    G = pf.small_generator('stylegan3-t')
    data = pf.snapshot(G)
    data['G_ema'].child(f'synthesis.{G.synthesis.layer_names[2]}').state['padding'] = [0, 0, 0, 0]
    with pytest.warns(NetworkMismatchWarning, match='padding'):
        load_network(pf.write_pickle(tmp_path / 'net.pkl', data))


def test_no_warnings_and_rng_untouched(tmp_path):
    path = pf.write_published(tmp_path / 'net.pkl', pf.small_generator('stylegan3-r'))
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_network(path)
    assert torch.equal(state, torch.get_rng_state())


def test_loader_never_imports_the_files_modules(tmp_path, monkeypatch):
    """The stand-in torch_utils / dnnlib exist while fixtures are written, never while they are read."""
    path = pf.write_published(tmp_path / 'net.pkl', pf.small_generator('stylegan2'))
    for name in [m for m in sys.modules if m.split('.')[0] in ('torch_utils', 'dnnlib')]:
        monkeypatch.delitem(sys.modules, name)
    load_network(path)
    assert not [m for m in sys.modules if m.split('.')[0] in ('torch_utils', 'dnnlib')]


def test_importing_renderer_is_cheap():
    code = ('import sys, renderer; from renderer import NetworkLoadError; '
            'print(sorted(m for m in ("torch", "numpy", "OpenGL", "glfw", "imgui_bundle") if m in sys.modules))')
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == '[]'


@pytest.fixture(scope='module')
def published_1024(tmp_path_factory):
    """A StyleGAN3-T 1024x1024 network at published size (22M parameters), written once."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        G = stylegan3.Generator(512, 0, 512, 1024, 3).eval()
    path = pf.write_published(tmp_path_factory.mktemp('net1024') / 'stylegan3-t-1024.pkl', G,
                              with_training_objects=False)
    return G, path


def test_published_size_stylegan3_t_1024(published_1024):
    G, path = published_1024
    start = time.perf_counter()
    H = load_network(path)
    seconds = time.perf_counter() - start
    assert pf.tensors_equal(G, H) == []
    assert sum(p.numel() for p in H.parameters()) == 22_313_167
    assert seconds < 15, f'loading took {seconds:.1f} s (benchmarks/loading.py measures it properly)'
