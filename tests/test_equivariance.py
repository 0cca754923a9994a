"""EQ-T, EQ-T_frac and EQ-R (renderer/diagnostics/equivariance.py): analytic fakes, real small networks, the command.

Fake generators expose the network interface the metrics use (mapping, synthesis with an
input.transform buffer, architecture, z_dim, ...) and render known functions of the input
transform, so the expected PSNR is known exactly or to the accuracy of the band-limited ops.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pickle_fixtures as pf
import pytest
import torch
from net_helpers import make_generator

from renderer.commands import equivariance as eq_command
from renderer.commands.common import run_command
from renderer.diagnostics import equivariance as eq
from renderer.networks.stylegan3 import SynthesisLayer
from renderer.signal.transforms import image_transform

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------------
# Fake generators.

class FakeMapping(torch.nn.Module):
    def __init__(self, num_ws: int):
        super().__init__()
        self.num_ws = num_ws

    def forward(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        return z[:, None, :].repeat(1, self.num_ws, 1)


class FakeInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))


class FakeSynthesis(torch.nn.Module):
    """Calls render(ws, transform [3, 3] float64) and records (transform, batch size) of every call."""

    def __init__(self, render):
        super().__init__()
        self.input = FakeInput()
        self.render = render
        self.calls = []

    def forward(self, ws, noise_mode='const', force_fp32=False):
        transform = self.input.transform.double().numpy().copy()
        self.calls.append((transform, ws.shape[0]))
        return self.render(ws, transform)


class FakeGenerator(torch.nn.Module):
    architecture = 'stylegan3'

    def __init__(self, render, res: int, channels: int = 3):
        super().__init__()
        self.z_dim = self.w_dim = 4
        self.c_dim = 0
        self.num_ws = 2
        self.img_resolution = res
        self.img_channels = channels
        self.mapping = FakeMapping(self.num_ws)
        self.synthesis = FakeSynthesis(render)


def shifting_fake(res: int = 32, error: float = 0.0) -> FakeGenerator:
    """Output = a whole-pixel shift of a fixed random field (scaled per sample), plus `error` when moved."""
    pad = res
    field = torch.randn([3, res + 2 * pad, res + 2 * pad], generator=torch.Generator().manual_seed(3)) * 0.3

    def render(ws, transform):
        if not np.allclose(transform[:2, :2], np.eye(2)):
            raise AssertionError('the shifting fake only translates')
        dx, dy = (-transform[:2, 2] * res).round().astype(int)   # the input transform is the inverse
        crop = field[:, pad - dy:pad - dy + res, pad - dx:pad - dx + res]
        out = crop[None] * (1 + 0.1 * ws[:, 0, :1, None, None])
        return out + (0 if np.allclose(transform, np.eye(3)) else error)

    return FakeGenerator(render, res)


WAVES = [(0.10, 0.05), (0.23, -0.12), (0.04, 0.29), (-0.20, 0.22)]   # cycles/pixel, all below 0.32


def analytic_fake(res: int = 128, rotate: bool = True) -> FakeGenerator:
    """Band-limited sum of cosines evaluated at transform @ p (phases from w).

    rotate=False keeps only the translation of the transform (ignores rotation, scale, shear, mirror).
    """
    centres = (torch.arange(res, dtype=torch.float64) + 0.5) / res - 0.5
    gy, gx = torch.meshgrid(centres, centres, indexing='ij')

    def render(ws, transform):
        t = transform if rotate else np.array([[1, 0, transform[0, 2]], [0, 1, transform[1, 2]], [0, 0, 1]])
        sx = t[0, 0] * gx + t[0, 1] * gy + t[0, 2]
        sy = t[1, 0] * gx + t[1, 1] * gy + t[1, 2]
        images = []
        for w in ws[:, 0].double():
            waves = [torch.cos(2 * math.pi * res * (fx * sx + fy * sy) + w[i]) for i, (fx, fy) in enumerate(WAVES)]
            images.append(sum(waves) / len(WAVES) * 0.8)
        return torch.stack(images)[:, None].float()

    return FakeGenerator(render, res, channels=1)


# ----------------------------------------------------------------------------------------------------
# psnr_db and the result record.

def test_psnr_db_formula_and_edge_cases():
    assert eq.psnr_db(1e-4) == pytest.approx(20 * math.log10(2) + 40)
    assert eq.psnr_db(4.0) == pytest.approx(0.0)
    assert eq.psnr_db(0.0) == math.inf
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            eq.psnr_db(bad)


# ----------------------------------------------------------------------------------------------------
# EQ-T on analytic fakes.

def test_whole_pixel_shifting_fake_has_infinite_eq_t():
    G = shifting_fake()
    result = eq.eq_t(G, num_samples=6, batch=2, seed=1, progress=False)
    assert result.psnr_db == math.inf and result.mse == 0 and result.num_samples == 6
    assert any(not np.allclose(t, np.eye(3)) for t, _ in G.synthesis.calls)   # it did move
    record = result.to_json()
    assert record['psnr_db'] is None and record['exact'] is True
    json.dumps(record, allow_nan=False)


def test_measure_runs_the_requested_metrics_in_order():
    results = eq.measure(shifting_fake(), 'eq_t_frac,eq_t', num_samples=2, batch=1, progress=False)
    assert list(results) == ['eq_t_frac', 'eq_t'] and results['eq_t'].psnr_db == math.inf


def test_constant_error_gives_the_analytic_psnr():
    """The fake adds c to every moved image: MSE = c^2 * (valid values of moved batches) / (all valid values).

    Translations up to 0.04 image widths at 16 pixels round to 0 or +-1 pixel: batches that did not
    move have no error but full masks, so the mask fractions enter the expected value.
    """
    res, c = 16, 0.05
    G = shifting_fake(res, error=c)
    result = eq.eq_t(G, num_samples=16, batch=2, seed=4, translate_max=0.04, progress=False)
    moved_values = all_values = 0
    rendered = G.synthesis.calls[1::2]   # calls alternate: reference, transformed
    for transform, n in rendered:
        dx, dy = np.abs(transform[:2, 2] * res).round()
        valid = n * (res - dx) * (res - dy)
        all_values += valid
        moved_values += valid * (dx != 0 or dy != 0)
    assert 0 < moved_values < all_values   # both kinds of batches occurred
    expected = 20 * math.log10(2) - 10 * math.log10(c ** 2 * moved_values / all_values)
    assert result.psnr_db == pytest.approx(expected, abs=1e-6)
    assert result.psnr_db > 20 * math.log10(2) - 10 * math.log10(c ** 2)


def test_fractional_shift_of_band_limited_fake_is_accurate():
    result = eq.eq_t(analytic_fake(), num_samples=4, batch=1, fractional=True, seed=2, progress=False)
    assert 60 < result.psnr_db < math.inf   # measured 76.5 dB
    lazy = analytic_fake()
    lazy.synthesis.render = _rounding(lazy.synthesis.render, 128)
    assert eq.eq_t(lazy, num_samples=4, batch=1, fractional=True, seed=2, progress=False).psnr_db < 40  # 25.8


def _rounding(render, res):
    """Wrap a fake renderer so that it ignores the fractional part of translations."""
    def rounded(ws, transform):
        transform = transform.copy()
        transform[:2, 2] = np.round(transform[:2, 2] * res) / res
        return render(ws, transform)
    return rounded


# ----------------------------------------------------------------------------------------------------
# EQ-R on analytic fakes.

def test_eq_r_of_exactly_rotating_fake_is_high_and_of_ignoring_fake_low():
    exact = eq.eq_r(analytic_fake(rotate=True), num_samples=3, batch=1, seed=5, progress=False)
    ignoring = eq.eq_r(analytic_fake(rotate=False), num_samples=3, batch=1, seed=5, progress=False)
    assert exact.psnr_db > 60       # measured 76.0 dB
    assert ignoring.psnr_db < 25    # measured 14.0 dB (uncorrelated images of this amplitude: ~14 dB)
    assert 0.05 < exact.valid_fraction < 1


# ----------------------------------------------------------------------------------------------------
# Real networks.

def impulse_filters(G: torch.nn.Module) -> torch.nn.Module:
    """A copy of a StyleGAN3 whose up/down filters are unit impulses: aliased by construction.

    The upsampling impulse (1/up per axis, offsetting the up^2 gain) keeps the inserted zeros, and the
    downsampling impulse only decimates. The impulses sit on the phase where the decimation picks the
    input samples (from the upfirdn2d index arithmetic: up sample k meets down tap kd when
    down_taps + up_taps - 2 - kd - ku - pad_lo = 0 mod up), so layers keep their signal: where the rate
    stays, the leaky ReLU acts on the original samples; where it doubles, every other sample is zero.
    """
    G = copy.deepcopy(G)
    for layer in G.modules():
        if not isinstance(layer, SynthesisLayer) or layer.up_filter is None or layer.down_filter is None:
            continue
        taps_up, taps_down = layer.up_filter.shape[0], layer.down_filter.shape[0]
        kd = taps_down // 2
        ku = taps_up // 2 - (taps_up // 2 - (taps_up + taps_down - 2 - kd - layer.padding[0])) % layer.up_factor
        up = torch.zeros_like(layer.up_filter)
        up[ku] = 1 / layer.up_factor
        down = torch.zeros_like(layer.down_filter)
        down[(kd,) * down.ndim] = 1
        layer.up_filter.copy_(up)
        layer.down_filter.copy_(down)
    return G


@pytest.fixture(scope='module')
def G_t():
    return make_generator('stylegan3-t', 64, seed=1)


def test_eq_t_of_stylegan3_far_exceeds_its_aliased_variant(G_t):
    """Measured (64 px random-weight StyleGAN3-T, 4 samples, seeds 0/1/2): 77.5/83.9/76.3 dB vs
    32.7/32.2/29.0 dB with impulse filters. The aliased images are also smaller (std 0.041 vs 0.072),
    which favours their PSNR, so the margin understates the difference."""
    alias_free = eq.eq_t(G_t, num_samples=4, batch=2, seed=0, progress=False)
    aliased = eq.eq_t(impulse_filters(G_t), num_samples=4, batch=2, seed=0, progress=False)
    assert aliased.psnr_db < math.inf
    assert alias_free.psnr_db > 60
    assert alias_free.psnr_db - aliased.psnr_db >= 25


def test_eq_results_are_reproducible_and_depend_on_the_seed(G_t):
    a = eq.eq_t(G_t, num_samples=2, batch=1, seed=3, fractional=True, progress=False)
    b = eq.eq_t(G_t, num_samples=2, batch=1, seed=3, fractional=True, progress=False)
    c = eq.eq_t(G_t, num_samples=2, batch=1, seed=4, fractional=True, progress=False)
    assert a.psnr_db == b.psnr_db and a.mse == b.mse
    assert c.psnr_db != a.psnr_db


def test_metrics_reject_networks_without_input_transform_and_bad_counts(G_t):
    G2 = make_generator('stylegan2', 32)
    with pytest.raises(ValueError, match='input transform'):
        eq.eq_t(G2, num_samples=1, progress=False)
    with pytest.raises(ValueError, match='num_samples'):
        eq.eq_r(G_t, num_samples=0, progress=False)
    with pytest.raises(ValueError, match='unknown metric'):
        eq.measure(G_t, metrics=('eq_t', 'eq_x'), progress=False)
    with pytest.raises(ValueError, match='seed'):
        eq.eq_t(G_t, num_samples=1, seed=-1, progress=False)
    with pytest.raises(ValueError, match='translate_max'):
        eq.eq_t(G_t, translate_max=-0.1, progress=False)


# ----------------------------------------------------------------------------------------------------
# compare_transform.

def ws_of(G, seed=0):
    return G.mapping(torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(seed)), None)


def test_compare_identity_is_exact(G_t):
    result = eq.compare_transform(G_t, ws_of(G_t), np.eye(3))
    assert result.psnr_db == math.inf
    assert result.mask.min() == 1 and result.error.abs().max() == 0
    assert result.ideal.shape == result.actual.shape == (3, 64, 64)


@pytest.mark.parametrize('translate', [(3 / 64, -2 / 64), (2.5 / 64, 0.75 / 64)])
def test_compare_translation_on_stylegan3(G_t, translate):
    result = eq.compare_transform(G_t, ws_of(G_t), image_transform(translate=translate))
    assert 60 < result.psnr_db < math.inf    # measured 81.2 dB (whole pixels), 84.9 dB (fractional)
    outside = result.mask == 0
    assert outside.any() and result.mask[~outside].min() == 1
    assert result.error[outside].abs().max() == 0 and result.ideal[:, outside].abs().max() == 0
    assert result.error.shape == (64, 64) and result.error.dtype == torch.float32
    # The error image is the channel-mean absolute difference on the valid pixels.
    expected = (result.ideal - result.actual).abs().mean(dim=0) * result.mask
    assert torch.allclose(result.error, expected)


@pytest.mark.parametrize('transform', [dict(rotate_deg=37), dict(rotate_deg=20, translate=(0.05, 0.02)),
                                       dict(scale=(1.25, 1.25)), dict(scale=(0.8, 0.8)), dict(mirror=(True, False)),
                                       dict(shear=0.2)])
def test_compare_affine_transforms_follow_the_fakes(transform):
    """Measured: the exact fake 74.5-79.2 dB, the one ignoring the linear part 13.8-14.6 dB."""
    ws = torch.tensor([[[0.3, 1.1, -0.4, 2.0]] * 2])
    exact = eq.compare_transform(analytic_fake(), ws, image_transform(**transform))
    ignoring = eq.compare_transform(analytic_fake(rotate=False), ws, image_transform(**transform))
    assert exact.psnr_db > 60 and ignoring.psnr_db < 25
    assert exact.error[exact.mask == 0].abs().max() == 0 and 0.1 < exact.mask.mean() < 1


def test_compare_rejects_stylegan2_and_out_of_view(G_t):
    G2 = make_generator('stylegan2', 32)
    with pytest.raises(ValueError, match='input transform'):
        eq.compare_transform(G2, ws_of(G2), image_transform(translate=(0.1, 0)))
    with pytest.raises(ValueError, match='out of view'):
        eq.compare_transform(G_t, ws_of(G_t), image_transform(translate=(1.0, 0)))
    with pytest.raises(ValueError, match=r'\[1, num_ws, w_dim\]'):
        eq.compare_transform(G_t, ws_of(G_t).repeat(2, 1, 1), np.eye(3))


# ----------------------------------------------------------------------------------------------------
# The command.

@pytest.fixture(scope='module')
def network_pickle(tmp_path_factory):
    return str(pf.write_published(tmp_path_factory.mktemp('net') / 'sg3t.pkl',
                                  pf.small_generator('stylegan3-t', res=64)))


def command(network, out, *extra):
    return ['--network', network, '--metrics', 'eq_t,eq_t_frac,eq_r', '--num-samples', '4', '--batch', '2',
            '--seed', '0', '--device', 'cpu', '--out', str(out), *extra]


def test_command_writes_json_and_is_reproducible(network_pickle, tmp_path, capsys):
    first, second = tmp_path / 'a' / 'result.json', tmp_path / 'b.json'
    assert run_command(eq_command.main, command(network_pickle, first)) == 0
    captured = capsys.readouterr()
    assert 'eq_t_frac [' in captured.err and '4/4 samples' in captured.err   # progress bar on stderr
    assert 'eq_r' in captured.out and str(first) in captured.out
    assert run_command(eq_command.main, command(network_pickle, second, '--no-progress')) == 0
    assert 'samples' not in capsys.readouterr().err
    a, b = (json.loads(p.read_text()) for p in (first, second))
    assert list(a['metrics']) == ['eq_t', 'eq_t_frac', 'eq_r']
    for name in a['metrics']:
        assert a['metrics'][name]['psnr_db'] == b['metrics'][name]['psnr_db']
        assert a['metrics'][name]['num_samples'] == 4 and math.isfinite(a['metrics'][name]['psnr_db'])
    assert a['seed'] == 0 and a['batch'] == 2 and a['network'] == network_pickle
    assert a['radius_px'] == 4   # the automatic filter radius of 64-pixel images
    assert sorted(os.listdir(tmp_path)) == ['a', 'b.json'] and os.listdir(tmp_path / 'a') == ['result.json']


@pytest.mark.parametrize('args, message', [
    (['--metrics', 'eq_t,eq_x'], 'unknown metric'),
    (['--translate-max', '1.5'], '--translate-max'),
    (['--network', 'missing.pkl'], 'missing.pkl'),
])
def test_command_bad_values_exit_2(network_pickle, tmp_path, capsys, args, message):
    argv = command(network_pickle, tmp_path / 'r.json') + args
    assert run_command(eq_command.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert not os.listdir(tmp_path)


def test_command_rejects_networks_without_input_transform_and_folders(tmp_path, capsys):
    stylegan2 = str(pf.write_published(tmp_path / 'sg2.pkl', pf.small_generator('stylegan2', res=32)))
    assert run_command(eq_command.main, ['--network', stylegan2, '--out', str(tmp_path / 'r.json')]) == 2
    assert 'StyleGAN3' in capsys.readouterr().err
    assert run_command(eq_command.main, ['--network', stylegan2, '--out', str(tmp_path)]) == 2
    assert 'is a folder' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['sg2.pkl']


def test_command_rejects_negative_sample_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        eq_command.main(['--num-samples', '-3', '--out', str(tmp_path / 'r.json')])
    assert exit_info.value.code == 2 and 'positive integer' in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_interrupted_command_leaves_no_file(network_pickle, tmp_path, monkeypatch):
    calls = []
    real = eq.synthesize_images

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:   # mid-run: in the second metric
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(eq, 'synthesize_images', interrupting)
    assert run_command(eq_command.main, command(network_pickle, tmp_path / 'result.json', '--no-progress')) == 130
    assert len(calls) == 5 and os.listdir(tmp_path) == []


def test_module_runs_as_a_command(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'renderer.commands.equivariance',
                             '--network', str(tmp_path / 'none.pkl'), '--out', str(tmp_path / 'r.json')],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith('error: ') and 'none.pkl' in result.stderr


def test_out_may_be_standard_output(network_pickle, tmp_path):
    """--out /dev/stdout prints the JSON: the link is written through, never replaced."""
    link = tmp_path / 'stdout'
    link.symlink_to('/proc/self/fd/1')        # what /dev/stdout is, without touching /dev
    argv = command(network_pickle, link, '--no-progress', '--metrics', 'eq_t', '--num-samples', '1')
    result = subprocess.run([sys.executable, '-m', 'renderer.commands.equivariance', *argv],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index('{'):])   # then the table
    assert 'eq_t' in data['metrics']
    assert link.is_symlink() and os.listdir(tmp_path) == ['stdout']
