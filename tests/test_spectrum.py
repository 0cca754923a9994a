"""Average power spectra (renderer/signal/spectra.py, renderer/diagnostics/spectrum.py) against numpy
references, analytic cases and real image files."""

from __future__ import annotations

import math
import os
import pathlib
import re
import select
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pickle_fixtures as pf
import pytest
import torch
from net_helpers import make_generator
from PIL import Image

from renderer import load_network
from renderer.commands.common import run_command
from renderer.commands.spectrum import main
from renderer.diagnostics.spectrum import folder_spectrum, generated_spectrum
from renderer.media.plots import plot_spectra
from renderer.signal.spectra import SpectrumAccumulator, power_spectrum, radial_profile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def numpy_spectrum(images: np.ndarray, beta: float) -> np.ndarray:
    """Reference in float64 numpy: mean over N, C of fftshift(|fft2((x - mean) * w)|^2) / sum(w^2)."""
    h, w = images.shape[2:]
    window = np.outer(np.kaiser(h, beta), np.kaiser(w, beta))
    x = (images - images.mean(axis=(2, 3), keepdims=True)) * window
    power = np.abs(np.fft.fft2(x)) ** 2 / np.sum(window ** 2)
    return np.fft.fftshift(power.mean(axis=(0, 1)))


def sinusoid(h: int, w: int, ky: int, kx: int, phase: float = 0.3) -> np.ndarray:
    """cos(2 pi (ky i / H + kx j / W) + phase): ky, kx cycles per image height / width."""
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    return np.cos(2 * np.pi * (ky * i / h + kx * j / w) + phase)


# power_spectrum -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('h, w, ky, kx', [(32, 32, 3, 5), (32, 48, -4, 7), (33, 31, 6, -2)])
@pytest.mark.parametrize('beta', [0.0, 8.0])
def test_sinusoid_peaks_at_its_bins(h, w, ky, kx, beta):
    x = torch.from_numpy(sinusoid(h, w, ky, kx)[None, None])
    p = power_spectrum(x, beta).numpy()
    cy, cx = h // 2, w // 2
    top_two = sorted(np.argsort(p, axis=None)[-2:])
    assert top_two == sorted([np.ravel_multi_index((cy + ky, cx + kx), p.shape),
                              np.ravel_multi_index((cy - ky, cx - kx), p.shape)])
    assert p[cy + ky, cx + kx] == pytest.approx(p[cy - ky, cx - kx], rel=1e-12)
    # A real image's spectrum is point-symmetric about DC (rows / columns without a partner dropped).
    sub = p[1 - h % 2:, 1 - w % 2:]
    np.testing.assert_allclose(sub, sub[::-1, ::-1], rtol=1e-9, atol=1e-12 * p.max())
    if beta == 0:   # A whole number of periods: all power in the two bins, |FFT|^2 / (HW) = HW / 4 each.
        assert p[cy + ky, cx + kx] == pytest.approx(h * w / 4, rel=1e-12)
        assert p.sum() == pytest.approx(h * w / 2, rel=1e-12)


@pytest.mark.parametrize('beta', [0.0, 3.0, 8.0])
def test_matches_numpy_reference_and_parseval(beta):
    x = np.random.default_rng(0).normal(0.2, 0.7, [2, 3, 16, 24])
    p = power_spectrum(torch.from_numpy(x).float(), beta)
    assert p.dtype == torch.float64 and p.shape == (16, 24)
    expected = numpy_spectrum(x.astype(np.float32).astype(np.float64), beta)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-9, atol=1e-12)
    # Parseval: the mean over bins is the window-weighted variance sum((w x')^2) / sum(w^2).
    window = np.outer(np.kaiser(16, beta), np.kaiser(24, beta))
    xc = x.astype(np.float32).astype(np.float64)
    xc = xc - xc.mean(axis=(2, 3), keepdims=True)
    weighted_var = np.mean(np.sum((xc * window) ** 2, axis=(2, 3))) / np.sum(window ** 2)
    assert p.mean().item() == pytest.approx(weighted_var, rel=1e-10)


def test_beta_zero_is_the_plain_periodogram():
    x = np.random.default_rng(1).uniform(-1, 1, [3, 1, 20, 20])
    plain = np.abs(np.fft.fft2(x - x.mean(axis=(2, 3), keepdims=True))) ** 2 / 400
    expected = np.fft.fftshift(plain.mean(axis=(0, 1)))
    np.testing.assert_allclose(power_spectrum(torch.from_numpy(x), beta=0).numpy(), expected, rtol=1e-12,
                               atol=1e-15)


def test_white_noise_is_flat_at_its_variance():
    sigma = 0.3
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([64, 3, 32, 32], generator=gen, dtype=torch.float64) * sigma
    p = power_spectrum(x, beta=8.0).numpy()
    freqs, profile = radial_profile(p)
    away_from_dc = np.hypot(*np.meshgrid(np.arange(32) - 16, np.arange(32) - 16, indexing='ij')) >= 3
    # 192 spectra averaged: each bin has a relative standard deviation of about 1 / sqrt(192) = 7 %.
    assert p[away_from_dc].mean() == pytest.approx(sigma ** 2, rel=0.02)
    assert np.all(np.abs(p[away_from_dc] / sigma ** 2 - 1) < 0.4)
    np.testing.assert_allclose(profile[3:], sigma ** 2, rtol=0.08)
    # At DC, removing the mean leaves s^2 (1 - sum(w)^2 / (HW sum(w^2))) in expectation (a 1-dof chi-square: 10 %
    # relative standard deviation here), and a constant offset changes nothing.
    window = np.outer(np.kaiser(32, 8.0), np.kaiser(32, 8.0))
    dc_level = sigma ** 2 * (1 - window.sum() ** 2 / (window.size * np.sum(window ** 2)))
    assert profile[0] == p[16, 16] == pytest.approx(dc_level, rel=0.3)
    np.testing.assert_allclose(power_spectrum(x + 5, beta=8.0).numpy(), p, rtol=1e-9, atol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match='N, C, H, W'):
        power_spectrum(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match='beta'):
        power_spectrum(torch.zeros(1, 1, 8, 8), beta=-1)


def test_accumulator_is_the_mean_over_all_images():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=[7, 3, 12, 12]))
    acc = SpectrumAccumulator(beta=5.0)
    with pytest.raises(ValueError, match='no images'):
        acc.mean()
    acc.add(x[:2])
    acc.add(x[2:7])
    assert acc.count == 7
    mean = acc.mean()
    assert isinstance(mean, np.ndarray) and mean.dtype == np.float64 and mean.shape == (12, 12)
    np.testing.assert_allclose(mean, numpy_spectrum(x.numpy(), 5.0), rtol=1e-12)
    with pytest.raises(ValueError, match='differs'):
        acc.add(torch.zeros(1, 3, 16, 16))


# radial_profile ---------------------------------------------------------------------------------------------------

def loop_profile(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direct float64 loop over pixels: bin round-half-up of |f| * min(H, W), f in cycles per pixel."""
    h, w = power.shape
    size = min(h, w)
    sums, counts = [0.0] * (size // 2 + 1), [0] * (size // 2 + 1)
    for i in range(h):
        for j in range(w):
            rho = math.sqrt(((i - h // 2) / h) ** 2 + ((j - w // 2) / w) ** 2) * size
            r = math.floor(rho + 0.5)
            if r <= size // 2:
                sums[r] += float(power[i, j])
                counts[r] += 1
    return np.arange(size // 2 + 1) / size, np.array(sums) / np.array(counts)


@pytest.mark.parametrize('shape', [(8, 8), (7, 7), (16, 16), (15, 15), (6, 9), (9, 6), (12, 20), (1, 5)])
def test_radial_profile_matches_pixel_loop(shape):
    power = np.random.default_rng(3).uniform(0, 10, shape)
    freqs, profile = radial_profile(power)
    ref_freqs, ref_profile = loop_profile(power)
    n = min(shape) // 2 + 1
    assert freqs.shape == profile.shape == (n,)
    for a in (freqs, profile):
        assert a.dtype == np.float64 and a.ndim == 1 and a.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(freqs, ref_freqs)
    np.testing.assert_allclose(profile, ref_profile, rtol=1e-13)
    assert freqs[0] == 0 and freqs[-1] <= 0.5 and (freqs[-1] == 0.5) == (min(shape) % 2 == 0)


@pytest.mark.parametrize('shape', [(64, 64), (63, 63), (48, 80)])
def test_radial_profile_of_isotropic_pattern(shape):
    """power = g(|f|) with |f| in cycles per pixel, g decreasing: each bin lies between g at its edges
    (|f| * min(H, W) in [r - 0.5, r + 0.5)) and near the area-weighted mean of g over the annulus."""
    h, w = shape
    size = min(shape)
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    f = np.hypot(fy[:, None], fx[None, :])
    g = lambda freq: np.exp(-freq / 0.1)
    freqs, profile = radial_profile(torch.from_numpy(g(f)).float())
    np.testing.assert_allclose(freqs, np.arange(size // 2 + 1) / size)
    inner, outer = np.maximum(freqs - 0.5 / size, 0), freqs + 0.5 / size
    assert np.all(profile <= g(inner) * (1 + 1e-6)) and np.all(profile > g(outer))
    antiderivative = lambda rho: -0.1 * np.exp(-rho / 0.1) * (rho + 0.1)   # Of g(rho) rho.
    annulus_mean = (antiderivative(outer) - antiderivative(inner)) / ((outer ** 2 - inner ** 2) / 2)
    np.testing.assert_allclose(profile[1:], annulus_mean[1:], rtol=0.03)   # Lattice sampling: up to 2 %.


def test_radial_profile_rejects_bad_shapes():
    with pytest.raises(ValueError, match='H, W'):
        radial_profile(np.zeros(8))
    with pytest.raises(ValueError, match='H, W'):
        radial_profile(np.zeros((0, 4)))


# generated_spectrum ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def small_t():
    return make_generator('stylegan3-t', res=32, seed=1)


def test_generated_spectrum_is_reproducible_and_correct(small_t):
    G = small_t
    done = []
    p = generated_spectrum(G, 3, batch=2, seed=5, progress=done.append)
    assert p.shape == (32, 32) and p.dtype == np.float64 and done == [2, 3]
    np.testing.assert_array_equal(generated_spectrum(G, 3, batch=2, seed=5), p)
    # Ground truth: the same z (RandomState(seed), in order) through the network, then the numpy spectrum.
    z = torch.from_numpy(np.random.RandomState(5).randn(3, G.z_dim)).float()
    with torch.no_grad():
        images = G.synthesis(G.mapping(z, None), noise_mode='const', force_fp32=True)
    np.testing.assert_allclose(p, numpy_spectrum(images.double().numpy(), 8.0), rtol=1e-4, atol=1e-9 * p.max())
    np.testing.assert_allclose(generated_spectrum(G, 3, batch=3, seed=5), p, rtol=1e-4, atol=1e-9 * p.max())
    assert not np.allclose(generated_spectrum(G, 3, batch=3, seed=6), p, rtol=1e-2)


def test_generated_spectrum_truncation_and_conditional():
    # In float64, so that the batch of 2 and the reference batch of 1 agree beyond float32 rounding (their
    # float32 convolution kernels differ on some CPUs); images still pass through float32 on both sides.
    G = pf.small_generator('stylegan3-t', c_dim=3, res=32).double()
    full = generated_spectrum(G, 2, seed=0)
    truncated = generated_spectrum(G, 2, seed=0, truncation_psi=0.0)
    assert full.shape == truncated.shape == (32, 32) and not np.allclose(full, truncated)
    # psi = 0: every image is the one at w_avg, whatever z and class.
    with torch.no_grad():
        ws = G.mapping.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1)
        image = G.synthesis(ws, noise_mode='const', force_fp32=True)
    np.testing.assert_allclose(truncated, numpy_spectrum(image.float().double().numpy(), 8.0), rtol=1e-4,
                               atol=1e-9 * truncated.max())
    with pytest.raises(ValueError, match='num_images'):
        generated_spectrum(G, 0)


# folder_spectrum --------------------------------------------------------------------------------------------------

def smooth_rgb(seed: int, size: int = 24) -> np.ndarray:
    """A uint8 [size, size, 3] image with structure at several scales."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, [size // 4, size // 4, 3]).repeat(4, 0).repeat(4, 1) * 180
    return (x + rng.uniform(0, 60, [size, size, 3])).astype(np.uint8)


def as_float(pixels: np.ndarray, max_value: float = 255) -> np.ndarray:
    x = pixels.astype(np.float64) / max_value * 2 - 1
    if x.ndim == 2:
        x = x[:, :, None]
    x = x[:, :, :3] if x.shape[2] >= 3 else np.repeat(x, 3, axis=2)
    return x.transpose(2, 0, 1)


@pytest.fixture
def image_folder(tmp_path):
    """RGB PNG, JPEG, greyscale PNG, RGBA PNG, 16-bit greyscale PNG, BMP and lossless WebP, plus files that are
    skipped (other extensions, hidden names)."""
    folder = tmp_path / 'real'
    (folder / 'sub').mkdir(parents=True)
    rgb = smooth_rgb(0)
    iio.imwrite(folder / 'a.png', rgb)
    iio.imwrite(folder / 'b.JPG', smooth_rgb(1), extension='.jpg', quality=95)
    grey = smooth_rgb(2)[:, :, 0]
    iio.imwrite(folder / 'c.png', grey)
    rgba = np.concatenate([smooth_rgb(3), np.full([24, 24, 1], 77, np.uint8)], axis=2)
    iio.imwrite(folder / 'd.png', rgba)
    grey16 = (smooth_rgb(4)[:, :, 1].astype(np.uint16) * 257 + 100).astype(np.uint16)
    iio.imwrite(folder / 'sub' / 'e.png', grey16)
    iio.imwrite(folder / 'sub' / 'f.bmp', smooth_rgb(5))
    Image.fromarray(smooth_rgb(6)).save(folder / 'sub' / 'g.webp', lossless=True)
    (folder / 'dataset.json').write_text('{"labels": null}')
    (folder / '.hidden.png').write_text('not an image, and hidden')
    jpg = np.asarray(Image.open(folder / 'b.JPG').convert('RGB'))   # What the lossy file decodes to.
    expected = [as_float(rgb), as_float(jpg), as_float(grey), as_float(rgba), as_float(grey16, 65535),
                as_float(smooth_rgb(5)), as_float(smooth_rgb(6))]
    return folder, np.stack(expected)


def test_folder_spectrum_reads_all_formats(image_folder):
    folder, expected = image_folder
    with Image.open(folder / 'sub' / 'e.png') as im:
        assert im.mode.startswith('I')   # Really a 16-bit file.
    done = []
    power, count = folder_spectrum(folder, progress=done.append, batch=4)
    assert count == 7 and done == [4, 7] and power.shape == (24, 24) and power.dtype == np.float64
    np.testing.assert_allclose(power, numpy_spectrum(expected, 8.0), rtol=1e-5, atol=1e-9 * power.max())
    power3, count3 = folder_spectrum(str(folder), max_images=3, beta=0)
    assert count3 == 3
    np.testing.assert_allclose(power3, numpy_spectrum(expected[:3], 0.0), rtol=1e-5, atol=1e-9 * power3.max())


def test_folder_spectrum_sizes(tmp_path):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    iio.imwrite(folder / 'a.png', smooth_rgb(0, 32))
    iio.imwrite(folder / 'b.png', smooth_rgb(1, 32))
    iio.imwrite(folder / 'c.png', smooth_rgb(2, 24))
    with pytest.raises(ValueError, match=r'c\.png.*24x24.*a\.png.*32x32'):
        folder_spectrum(folder)
    power, count = folder_spectrum(folder, resolution=16)
    assert power.shape == (16, 16) and count == 3


def test_resolution_keeps_cycles_per_image(tmp_path):
    """A 64 px sinusoid with 3 x 5 cycles per image, resized to 32 px, still peaks 3 and 5 bins from DC;
    an image already at the resolution is unchanged."""
    folder = tmp_path / 'sine'
    folder.mkdir()
    wave = np.round((sinusoid(64, 64, 3, 5) * 0.8 + 1) * 127.5).astype(np.uint8)
    iio.imwrite(folder / 'wave.png', wave)
    power, _ = folder_spectrum(folder, resolution=32, beta=0)
    assert power.shape == (32, 32)
    assert sorted(np.argsort(power, axis=None)[-2:]) == [np.ravel_multi_index((16 - 3, 16 - 5), (32, 32)),
                                                         np.ravel_multi_index((16 + 3, 16 + 5), (32, 32))]
    np.testing.assert_array_equal(folder_spectrum(folder, resolution=64)[0], folder_spectrum(folder)[0])


def test_folder_errors(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match='empty.*no images'):
        folder_spectrum(empty)
    with pytest.raises(ValueError, match='missing.*not a folder'):
        folder_spectrum(tmp_path / 'missing')
    bad = tmp_path / 'bad'
    bad.mkdir()
    iio.imwrite(bad / 'a.png', smooth_rgb(0))
    (bad / 'b.png').write_text('this is text, not a PNG')
    with pytest.raises(ValueError, match=r'b\.png: cannot read as an image'):
        folder_spectrum(bad)
    with pytest.raises(ValueError, match='resolution'):
        folder_spectrum(bad, resolution=0)


# plot_spectra and the command -------------------------------------------------------------------------------------

def test_plot_spectra_writes_a_png(tmp_path):
    x = torch.from_numpy(np.random.default_rng(4).normal(size=[2, 3, 32, 32]))
    path = tmp_path / 'plot.png'
    plot_spectra(path, {'noise': power_spectrum(x).numpy(), 'sine': power_spectrum(
        torch.from_numpy(sinusoid(16, 16, 2, 3)[None, None])).numpy()}, range_db=40)
    image = iio.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 3 * image.shape[0]
    assert os.listdir(tmp_path) == ['plot.png']
    with pytest.raises(ValueError, match='nothing to plot'):
        plot_spectra(tmp_path / 'x.png', {})


@pytest.fixture(scope='module')
def command_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('command')
    net_a = pf.write_published(root / 'a.pkl', pf.small_generator('stylegan3-t', res=32))
    net_b = pf.write_published(root / 'b.pkl', pf.small_generator('stylegan2', res=32, seed=2))
    real = root / 'real'
    real.mkdir()
    for i in range(3):
        iio.imwrite(real / f'{i}.png', smooth_rgb(i, 32))
    return net_a, net_b, real


def test_command_end_to_end(tmp_path, command_inputs):
    net_a, net_b, real = command_inputs
    out = tmp_path / 'out' / 'spectra.png'
    cmd = [sys.executable, '-m', 'renderer.commands.spectrum', '--network', str(net_a), '--network-b', str(net_b),
           '--real-dir', str(real), '--num-images', '3', '--batch', '2', '--seed', '7', '--device', 'cpu',
           '--out', str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out.parent)) == ['spectra.npz', 'spectra.png']
    assert iio.imread(out).ndim == 3
    with np.load(out.with_suffix('.npz')) as data:
        arrays = dict(data)
    assert set(arrays) == {'freqs'} | {f'{s}_{k}' for s in ('a', 'b', 'real') for k in ('power', 'profile', 'freqs')}
    expected_a = generated_spectrum(load_network(net_a), 3, batch=2, seed=7)
    np.testing.assert_allclose(arrays['a_power'], expected_a, rtol=1e-6)
    assert not np.allclose(arrays['b_power'], expected_a, rtol=0.1)
    np.testing.assert_allclose(arrays['real_power'], folder_spectrum(real)[0], rtol=1e-12)
    np.testing.assert_allclose(arrays['a_profile'], radial_profile(expected_a)[1], rtol=1e-6)
    np.testing.assert_array_equal(arrays['freqs'], np.arange(17) / 32)


@pytest.mark.parametrize('extra, message', [
    (['--network', 'missing.pkl'], 'missing.pkl'),
    (['--real-dir', 'REAL/nowhere'], 'nowhere: not a folder'),
    (['--out', 'OUT/spectra.jpg'], r'\.png'),
    (['--num-images', '0'], 'num-images'),
    (['--beta', '-2'], 'beta'),
])
def test_command_bad_input(tmp_path, capsys, command_inputs, extra, message):
    net_a, _, real = command_inputs
    argv = ['--network', str(net_a), '--num-images', '1', '--device', 'cpu', '--out', str(tmp_path / 's.png')]
    argv += [a.replace('REAL', str(real)).replace('OUT', str(tmp_path)) for a in extra]
    assert run_command(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert os.listdir(tmp_path) == []


def test_command_mixed_real_sizes_named(tmp_path, capsys, command_inputs):
    net_a, _, real = command_inputs
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    iio.imwrite(mixed / 'a.png', smooth_rgb(0, 32))
    iio.imwrite(mixed / 'b.png', smooth_rgb(0, 24))
    out = tmp_path / 'out' / 's.png'
    argv = ['--network', str(net_a), '--real-dir', str(mixed), '--num-images', '2', '--out', str(out)]
    assert run_command(main, argv) == 2
    assert 'b.png: image is 24x24' in capsys.readouterr().err
    assert run_command(main, argv + ['--resolution', '32']) == 0
    assert sorted(os.listdir(out.parent)) == ['s.npz', 's.png']


def test_interrupt_while_writing_leaves_nothing(tmp_path, capsys, command_inputs, monkeypatch):
    """Ctrl-C after the PNG data is on disk but before the files are renamed: neither appears."""
    from matplotlib.figure import Figure
    net_a, _, _ = command_inputs
    real_savefig = Figure.savefig

    def savefig_then_interrupt(self, *args, **kwargs):
        real_savefig(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, 'savefig', savefig_then_interrupt)
    out = tmp_path / 'out'
    argv = ['--network', str(net_a), '--num-images', '1', '--out', str(out / 's.png')]
    assert run_command(main, argv) == 130
    assert os.listdir(out) == []


def test_ctrl_c_while_generating_leaves_nothing(tmp_path, command_inputs):
    net_a, _, _ = command_inputs
    out = tmp_path / 'out'
    cmd = [sys.executable, '-m', 'renderer.commands.spectrum', '--network', str(net_a), '--num-images', '1000000',
           '--batch', '1', '--device', 'cpu', '--out', str(out / 'spectra.png')]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err, deadline = b'', time.monotonic() + 120
        while b'network a [' not in err and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 1.0)[0]:
                err += os.read(proc.stderr.fileno(), 4096)
        assert b'network a [' in err, err.decode()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (err + rest).decode()
    assert b'interrupted' in rest
    assert not out.exists() or os.listdir(out) == []


def test_import_stays_light():
    code = ('import sys, renderer.diagnostics.spectrum, renderer.commands.spectrum, renderer.media.plots; '
            'print(sorted(m for m in ("matplotlib", "imageio", "PIL") if m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == '[]'


def test_unwritable_out_is_refused_before_any_work(tmp_path, capsys, command_inputs, monkeypatch):
    import renderer.commands.spectrum as spectrum_command

    def no_work(*args, **kwargs):
        raise AssertionError('work started although the output cannot be written')
    monkeypatch.setattr(spectrum_command, 'open_network', no_work)
    monkeypatch.setattr(spectrum_command, 'folder_spectrum', no_work)
    net_a, _, real = command_inputs
    (tmp_path / 'a-file').write_bytes(b'x')
    out = tmp_path / 'a-file' / 's.png'
    argv = ['--network', str(net_a), '--real-dir', str(real), '--num-images', '1', '--out', str(out)]
    assert run_command(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(out) in err and 'cannot write' in err and '.partial' not in err
    assert os.listdir(tmp_path) == ['a-file']
