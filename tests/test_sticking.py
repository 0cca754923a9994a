"""Texture-sticking diagnostics (renderer/diagnostics/sticking.py): slices and averages on fake networks with
exact answers, on small real StyleGAN3-T / StyleGAN2 networks, and the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from net_helpers import make_generator, psnr
from test_motion import FakeGenerator, make_pattern, shift_generator

from renderer.commands import sticking as sticking_command
from renderer.commands.common import run_command
from renderer.diagnostics import sticking
from renderer.diagnostics.sticking import SliceAccumulator, averaged_image, perturbed_ws, slice_diagnostic, take_slice
from renderer.generation import synthesize_images, ws_from_seeds
from renderer.media.compose import side_by_side
from renderer.media.pictures import to_uint8
from renderer.motion import latent_animation, translation_animation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numbered_frames(f: int = 5, c: int = 2, h: int = 4, w: int = 6) -> torch.Tensor:
    return torch.arange(f * c * h * w, dtype=torch.float32).reshape(f, c, h, w)


# ----------------------------------------------------------------------------
# take_slice / SliceAccumulator.

def test_take_slice_row_and_column():
    frames = numbered_frames()
    rows = take_slice(frames, 'row', 2)
    assert rows.shape == (2, 5, 6)
    cols = take_slice(frames, 'column', 4)
    assert cols.shape == (2, 4, 5)
    for k in range(5):
        assert torch.equal(rows[:, k, :], frames[k, :, 2, :])       # time runs down
        assert torch.equal(cols[:, :, k], frames[k, :, :, 4])       # time runs right


@pytest.mark.parametrize('axis, index, match', [('diagonal', 0, 'axis'), ('row', 4, 'row index'),
                                                ('column', -1, 'column index'), ('row', 1.5, 'row index')])
def test_take_slice_validation(axis, index, match):
    with pytest.raises(ValueError, match=match):
        take_slice(numbered_frames(), axis, index)


@pytest.mark.parametrize('axis, index', [('row', 1), ('column', 5)])
def test_slice_accumulator(axis, index):
    frames = numbered_frames(7)
    full = take_slice(frames, axis, index)
    time_dim = 1 if axis == 'row' else 2
    acc = SliceAccumulator(axis, index, num_frames=7)
    acc.add(frames[:3])
    acc.add(frames[3:5])
    partial = acc.image(fill=-1.0)
    assert partial.shape == full.shape and len(acc) == 5
    assert torch.equal(partial.narrow(time_dim, 0, 5), full.narrow(time_dim, 0, 5))
    assert (partial.narrow(time_dim, 5, 2) == -1).all()
    acc.add(frames[5:])
    assert torch.equal(acc.image(), full)
    with pytest.raises(ValueError, match='more than num_frames'):
        acc.add(frames[:1])

    growing = SliceAccumulator(axis, index)
    growing.add(frames[:2])
    assert torch.equal(growing.image(), full.narrow(time_dim, 0, 2))
    growing.add(frames[2:])
    assert torch.equal(growing.image(), full)
    with pytest.raises(ValueError, match='do not match'):
        growing.add(numbered_frames(1, c=3))


def test_slice_accumulator_validation():
    with pytest.raises(ValueError, match='no frames'):
        SliceAccumulator('row', 0, 4).image()
    with pytest.raises(ValueError, match='axis'):
        SliceAccumulator('depth', 0)
    with pytest.raises(ValueError, match='num_frames'):
        SliceAccumulator('row', 0, 0)


# ----------------------------------------------------------------------------
# Slices of exactly equivariant and exactly stuck fakes.

def test_equivariant_fake_gives_diagonal_row_slice():
    pattern = make_pattern(16)
    G = shift_generator(pattern)
    animation = translation_animation(torch.zeros(2, 4), 12, step=(1 / 16, 0))   # 1 px per frame
    middle, slice_img = slice_diagnostic(G, animation, 'row', index=5, batch=4)
    assert slice_img.shape == (3, 12, 16) and middle.shape == (3, 16, 16)
    for k in range(12):
        assert torch.equal(slice_img[:, k, :], torch.roll(pattern[:, 5, :], k, dims=-1))
    assert torch.equal(middle, torch.roll(pattern, 6, dims=2))


def test_equivariant_fake_gives_diagonal_column_slice():
    pattern = make_pattern(16, seed=3)
    animation = translation_animation(torch.zeros(2, 4), 9, step=(0, 1 / 16), start=(0, -2 / 16))
    _, slice_img = slice_diagnostic(shift_generator(pattern), animation, 'column')      # centre column 8
    assert slice_img.shape == (3, 16, 9)
    for k in range(9):
        assert torch.equal(slice_img[:, :, k], torch.roll(pattern[:, :, 8], k - 2, dims=-1))


def test_stuck_fake_gives_straight_streaks():
    pattern = make_pattern(16)
    animation = translation_animation(torch.zeros(2, 4), 10, step=(1 / 16, 0))
    _, slice_img = slice_diagnostic(shift_generator(pattern, stuck=True), animation, 'row', index=3)
    assert torch.equal(slice_img, pattern[:, 3:4, :].expand(-1, 10, -1))


# ----------------------------------------------------------------------------
# Averaged image and perturbations.

def test_average_of_latent_independent_fake_is_the_image():
    pattern = make_pattern(16)
    G = shift_generator(pattern, stuck=True)
    central, average = averaged_image(G, perturbed_ws(G, 4, 9, sigma=0.5), batch=4)
    assert torch.equal(central, pattern) and torch.equal(average, pattern)
    assert average.dtype == torch.float32


def test_average_of_linear_fake_is_image_of_mean_w():
    res, w_dim = 8, 4
    A = torch.randn([3 * res * res, w_dim], generator=torch.Generator().manual_seed(2))
    G = FakeGenerator(lambda ws, transform: (ws[:, 0] @ A.T).reshape(-1, 3, res, res), res, w_dim=w_dim)
    ws = perturbed_ws(G, 1, 20, sigma=0.3)
    central, average = averaged_image(G, ws, batch=6)
    assert central.shape == average.shape == (3, res, res)
    expected = (A.double() @ ws[:, 0].double().mean(dim=0)).reshape(3, res, res)
    torch.testing.assert_close(average.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(central.double(), (A.double() @ ws[0, 0].double()).reshape(3, res, res),
                               rtol=0, atol=1e-5)
    assert (average - central).abs().max() > 0.1      # the perturbations really moved the image


def test_perturbed_ws_definition():
    G = shift_generator(make_pattern())      # mapping w = z, so ws show z directly
    ws = perturbed_ws(G, 11, 500, sigma=0.25, perturb_seed=3)
    assert ws.shape == (501, 2, 4)
    assert torch.equal(ws[:1], ws_from_seeds(G, [11]))
    noise = torch.randn([500, 4], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close((ws[1:, 0] - ws[0, 0]) / 0.25, noise, rtol=0, atol=1e-5)
    assert torch.equal(perturbed_ws(G, 11, 500, 0.25, perturb_seed=3), ws)
    assert not torch.equal(perturbed_ws(G, 11, 500, 0.25, perturb_seed=4), ws)
    with pytest.raises(ValueError, match='sigma'):
        perturbed_ws(G, 11, 2, sigma=-1)
    with pytest.raises(ValueError, match='num_samples'):
        perturbed_ws(G, 11, 0, sigma=0.1)


# ----------------------------------------------------------------------------
# Small real networks.

@pytest.fixture(scope='module')
def sg3():
    return make_generator('stylegan3-t', 32)


@pytest.fixture(scope='module')
def sg2():
    return make_generator('stylegan2', 32)


def test_real_networks_average(sg3, sg2):
    for G in (sg3, sg2):
        ws = perturbed_ws(G, 0, 2, sigma=0.2, truncation_psi=0.7)
        assert ws.shape == (3, G.num_ws, G.w_dim)
        assert torch.equal(ws[:1], ws_from_seeds(G, [0], 0.7))
        central, average = averaged_image(G, ws)
        assert central.shape == average.shape == (3, 32, 32)
        assert torch.isfinite(average).all()
        torch.testing.assert_close(central[None], synthesize_images(G, ws[:1]))
        # sigma 0: every sample is the central image (up to batch-size rounding).
        torch.testing.assert_close(averaged_image(G, perturbed_ws(G, 0, 2, 0.0, truncation_psi=0.7))[1], central,
                                   rtol=0, atol=1e-5)


def test_stylegan3_translation_slice_is_diagonal(sg3):
    """StyleGAN3-T is translation equivariant by construction: undoing the 1 px/frame shear of the
    slice recovers the first row (interior columns; the border is not equivariant)."""
    animation = translation_animation(ws_from_seeds(sg3, [0]), 5, (1 / 32, 0))
    middle, slice_img = slice_diagnostic(sg3, animation)
    assert middle.shape == (3, 32, 32) and slice_img.shape == (3, 5, 32)
    for k in range(1, 5):
        diagonal = psnr(slice_img[:, k, 8 + k:24 + k], slice_img[:, 0, 8:24])
        vertical = psnr(slice_img[:, k, 8:24], slice_img[:, 0, 8:24])
        assert diagonal > 60 and diagonal > vertical + 20, (k, diagonal, vertical)


def test_real_networks_latent_slice(sg3, sg2):
    for G in (sg3, sg2):
        animation = latent_animation(G, [0, 1], 5, 'linear', loop=False)
        middle, slice_img = slice_diagnostic(G, animation, 'column', batch=4)
        assert middle.shape == (3, 32, 32) and slice_img.shape == (3, 32, 6)
        frames = synthesize_images(G, animation.ws)
        torch.testing.assert_close(middle, frames[3])
        torch.testing.assert_close(slice_img, take_slice(frames, 'column', 16))


def test_stylegan2_cannot_translate(sg2):
    animation = translation_animation(ws_from_seeds(sg2, [0]), 3, (1 / 32, 0))
    with pytest.raises(ValueError, match='input transform'):
        slice_diagnostic(sg2, animation)


# ----------------------------------------------------------------------------
# Command line.

@pytest.fixture(scope='module')
def network_files(tmp_path_factory, sg3, sg2):
    from renderer import save_network
    folder = tmp_path_factory.mktemp('networks')
    paths = {'sg3': str(folder / 'sg3.pt'), 'sg2': str(folder / 'sg2.pt')}
    save_network(sg3, paths['sg3'])
    save_network(sg2, paths['sg2'])
    return paths


def run(*argv) -> int:
    return run_command(sticking_command.main, [str(a) for a in argv])


def test_command_average(network_files, tmp_path, sg3):
    out = tmp_path / 'avg.png'
    assert run('average', '--network', network_files['sg3'], '--device', 'cpu', '--seed', 5,
               '--num-samples', 2, '--out', out) == 0
    image = iio.imread(out)
    assert image.shape == (32, 32 + 4 + 32, 3)
    arrays = np.load(tmp_path / 'avg.npy')
    assert arrays.shape == (2, 3, 32, 32) and arrays.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(arrays[0]), synthesize_images(sg3, ws_from_seeds(sg3, [5]))[0])
    assert np.array_equal(image, to_uint8(side_by_side(list(torch.from_numpy(arrays)), 4)))
    assert sorted(os.listdir(tmp_path)) == ['avg.npy', 'avg.png']


def test_command_average_a_and_b(network_files, tmp_path):
    out = tmp_path / 'ab.png'
    assert run('average', '--network', network_files['sg3'], '--network-b', network_files['sg2'],
               '--device', 'cpu', '--num-samples', 1, '--out', out) == 0
    assert iio.imread(out).shape == (32 + 16 + 32, 68, 3)        # B's pair below A's
    assert np.load(tmp_path / 'ab-b.npy').shape == (2, 3, 32, 32)
    assert sorted(os.listdir(tmp_path)) == ['ab-b.npy', 'ab.npy', 'ab.png']


def test_command_slice_translate(network_files, tmp_path, sg3):
    out = tmp_path / 'slice.png'
    assert run('slice', '--network', network_files['sg3'], '--device', 'cpu', '--seed', 2, '--frames', 3,
               '--out', out) == 0
    image = iio.imread(out)
    assert image.shape == (32, 32 + 4 + 32, 3)      # [middle frame | 3 x 32 row slice, centred vertically]
    # The translation is centred on the middle frame, which is the untransformed image.
    expected = to_uint8(synthesize_images(sg3, ws_from_seeds(sg3, [2]))[0])
    assert np.abs(image[:, :32].astype(int) - expected).max() <= 1
    assert (image[:14, 36:] == 128).all() and (image[17:, 36:] == 128).all()    # grey around the slice rows
    assert os.listdir(tmp_path) == ['slice.png']


def test_command_slice_latent_a_and_b(network_files, tmp_path):
    out = tmp_path / 'slice.png'
    assert run('slice', '--network', network_files['sg3'], '--network-b', network_files['sg2'], '--device', 'cpu',
               '--motion', 'latent', '--frames', 5, '--axis', 'column', '--index', 3, '--out', out) == 0
    assert iio.imread(out).shape == (32, 2 * (32 + 4 + 5) + 16, 3)


@pytest.mark.parametrize('extra, message', [
    (['--network-b', 'SG2'], 'no input transform'),
    (['--index', '32'], 'row index 32 out of range'),
    (['--frames', '1'], '--frames'),
    (['--seed', '-1'], 'seed'),
    (['--trunc-cutoff', '-1'], '--trunc-cutoff'),
    (['--out', 'OUT/x.jpg'], '.png'),
    (['--network', 'OUT/missing.pt'], 'missing.pt'),
])
def test_command_bad_input(network_files, tmp_path, capsys, extra, message):
    argv = ['slice', '--network', network_files['sg3'], '--device', 'cpu', '--frames', '3',
            '--out', str(tmp_path / 'x.png')] + [a.replace('SG2', network_files['sg2']).replace('OUT', str(tmp_path))
                                                  for a in extra]
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert os.listdir(tmp_path) == []


def test_command_process_exit_code(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'renderer.commands.sticking', 'average', '--network',
                             str(tmp_path / 'nope.pkl'), '--out', str(tmp_path / 'a.png')],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and 'nope.pkl' in result.stderr and 'Traceback' not in result.stderr


def test_ctrl_c_while_rendering_leaves_nothing(network_files, tmp_path, monkeypatch):
    real = sticking.render_frames

    def interrupted(*args, **kwargs):
        frames = real(*args, **kwargs)
        yield next(frames)
        raise KeyboardInterrupt
    monkeypatch.setattr(sticking, 'render_frames', interrupted)
    assert run('average', '--network', network_files['sg3'], '--device', 'cpu', '--num-samples', 3,
               '--batch', 1, '--out', tmp_path / 'a.png') == 130
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_writing_leaves_nothing(network_files, tmp_path, monkeypatch):
    def interrupted_save(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sticking_command.np, 'save', interrupted_save)     # the PNG is written first
    assert run('average', '--network', network_files['sg3'], '--device', 'cpu', '--num-samples', 1,
               '--out', tmp_path / 'a.png') == 130
    assert os.listdir(tmp_path) == []


def test_unwritable_out_is_refused_before_any_work(network_files, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError('the network was opened although the output cannot be written')
    monkeypatch.setattr(sticking_command, 'open_network', no_work)
    (tmp_path / 'a-file').write_bytes(b'x')
    out = tmp_path / 'a-file' / 'avg.png'
    assert run('average', '--network', network_files['sg3'], '--num-samples', 2, '--out', out) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(out) in err and 'cannot write' in err and '.partial' not in err
    assert os.listdir(tmp_path) == ['a-file']
