"""The image command (renderer.commands.generate): PNGs of seeds from --network on --device, and bad input."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pickle_fixtures as pf
import pytest
import torch

from renderer.commands import generate
from renderer.generation import Latents, synthesize_images
from renderer.media.pictures import to_uint8


@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    folder = tmp_path_factory.mktemp('nets')
    G = pf.small_generator('stylegan2', seed=2)
    G_cond = pf.small_generator('stylegan3-t', c_dim=3, seed=3)
    return (G, str(pf.write_published(folder / 'sg2.pkl', G)),
            G_cond, str(pf.write_published(folder / 'cond.pkl', G_cond)))


def test_writes_one_png_per_seed_of_the_given_network(networks, tmp_path, capsys):
    G, path, _, _ = networks
    out = tmp_path / 'out'
    assert generate.run(['--network', path, '--device', 'cpu', '--seeds', '3-4,9', '--trunc', '0.7',
                         '--batch', '2', '--out', str(out)]) == 0
    assert sorted(os.listdir(out)) == ['seed0003.png', 'seed0004.png', 'seed0009.png']
    expected = synthesize_images(G, Latents(0.7).ws(G, [3, 4, 9]))
    for seed, image in zip([3, 4, 9], expected):
        written = iio.imread(out / f'seed{seed:04d}.png')
        assert np.abs(written.astype(int) - to_uint8(image).astype(int)).max() <= 1   # batch 2 vs 3
    assert capsys.readouterr().out.split() == [str(out / f'seed{s:04d}.png') for s in (3, 4, 9)]


def test_class_of_a_conditional_network(networks, tmp_path):
    _, _, G, path = networks
    assert generate.run(['--network', path, '--seeds', '1', '--class', '2', '--out', str(tmp_path)]) == 0
    expected = to_uint8(synthesize_images(G, Latents(class_idx=2).ws(G, [1]))[0])
    np.testing.assert_array_equal(iio.imread(tmp_path / 'seed0001.png'), expected)
    other = to_uint8(synthesize_images(G, Latents(class_idx=0).ws(G, [1]))[0])
    assert not np.array_equal(expected, other)


@pytest.mark.parametrize('extra, message', [
    (['--seeds', '3-1'], 'range is empty'),
    (['--trunc', 'nan'], '--trunc'),
    (['--class', '3'], 'unconditional'),
    (['--network', 'OUT/missing.pkl'], 'missing.pkl'),
    (['--device', 'tpu'], '--device'),
    (['--batch', '0'], '--batch'),
])
def test_bad_input_is_one_error_line_and_no_file(networks, tmp_path, capsys, extra, message):
    _, path, _, _ = networks
    argv = ['--network', path, '--out', str(tmp_path / 'out')] + [a.replace('OUT', str(tmp_path)) for a in extra]
    assert generate.run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(tmp_path) == []


def test_out_that_is_a_file_is_refused(networks, tmp_path, capsys):
    _, path, _, _ = networks
    (tmp_path / 'taken').write_bytes(b'x')
    assert generate.run(['--network', path, '--out', str(tmp_path / 'taken')]) == 2
    assert 'is a file' in capsys.readouterr().err and (tmp_path / 'taken').read_bytes() == b'x'


def test_generate_renders_in_batches(networks):
    G, _, _, _ = networks
    images = generate.generate(G, [0, 1, 2], batch=2)
    assert len(images) == 3 and images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8
    torch.testing.assert_close(torch.from_numpy(images[2]).float(),
                               torch.from_numpy(generate.generate(G, [2])[0]).float(), atol=1, rtol=0)


def test_out_under_a_file_is_refused_before_any_work(networks, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError('the network was opened although the output cannot be written')
    monkeypatch.setattr(generate, 'open_network', no_work)
    _, path, _, _ = networks
    (tmp_path / 'a-file').write_bytes(b'x')
    out = tmp_path / 'a-file' / 'images'
    assert generate.run(['--network', path, '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(out) in err and 'cannot write' in err and '.partial' not in err


def test_ctrl_c_exits_130_and_keeps_no_file(networks, tmp_path, capsys, monkeypatch):
    real = generate.synthesize_images
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(generate, 'synthesize_images', interrupted)
    _, path, _, _ = networks
    out = tmp_path / 'out'
    assert generate.run(['--network', path, '--seeds', '0-3', '--batch', '1', '--out', str(out)]) == 130
    assert 'interrupted' in capsys.readouterr().err
    assert not out.exists() or os.listdir(out) == []


def test_a_failed_write_leaves_no_truncated_png(networks, tmp_path, capsys, monkeypatch):
    import imageio.v3 as imageio_v3

    def half_written(path, *args, **kwargs):
        open(path, 'wb').write(b'\x89PNG\r\n')     # a few bytes, then the disk is full
        raise OSError(28, 'No space left on device', path)
    monkeypatch.setattr(imageio_v3, 'imwrite', half_written)
    _, path, _, _ = networks
    out = tmp_path / 'out'
    assert generate.run(['--network', path, '--seeds', '0', '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert 'No space left' in err and str(out / 'seed0000.png') in err and '.partial' not in err
    assert not out.exists() or os.listdir(out) == []
