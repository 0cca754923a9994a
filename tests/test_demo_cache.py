"""The built-in demo network is built once and then loaded from the network cache, bit for bit the same."""

from __future__ import annotations

import os

import pickle_fixtures as pf
import pytest
import torch

from renderer.io import demo


@pytest.fixture(scope='module')
def fresh():
    return demo.build_demo_network()


def test_cached_demo_is_bit_identical_to_a_fresh_build(tmp_path, fresh):
    first = demo.demo_network(tmp_path)                    # built and cached
    files = os.listdir(tmp_path)
    assert files == [f'demo-{demo.demo_digest()}.pt']
    cached = demo.demo_network(tmp_path)                   # loaded
    assert pf.tensors_equal(cached, fresh) == [] and pf.tensors_equal(first, fresh) == []
    torch.testing.assert_close(pf.render(cached, (0, 5)), pf.render(fresh, (0, 5)), rtol=0, atol=0)
    assert os.listdir(tmp_path) == files


def test_a_damaged_cache_file_is_rebuilt(tmp_path, fresh):
    path = tmp_path / f'demo-{demo.demo_digest()}.pt'
    path.write_bytes(b'PK\x03\x04 not really a zip')
    G = demo.demo_network(tmp_path)
    assert pf.tensors_equal(G, fresh) == []
    assert path.stat().st_size > 1_000_000            # replaced by a good copy


def test_an_unwritable_cache_only_costs_the_build(tmp_path):
    blocked = tmp_path / 'file-not-folder'
    blocked.write_bytes(b'')
    G = demo.demo_network(blocked / 'cache')
    assert G.img_resolution == 256 and blocked.read_bytes() == b''


def test_digest_names_what_the_weights_depend_on():
    assert demo.demo_digest() == demo.demo_digest() != demo.demo_digest(seed=demo.DEMO_SEED + 1)
