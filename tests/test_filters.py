"""Filter design (docs/generator.md section 2) against scipy and an independent jinc * Kaiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.special
import torch

from renderer.signal.filters import design_lowpass_filter, setup_resample_filter


def stylegan3_schedule(res, num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1,
                       last_stopband_rel=2 ** 0.3):
    """Cutoff, half width and sampling rate per layer, from the spec's formulas."""
    e = [min(i / (num_layers - num_critical), 1) for i in range(num_layers + 1)]
    fc = [first_cutoff * (res / 2 / first_cutoff) ** ei for ei in e]
    ft = [first_stopband * (res / 2 * last_stopband_rel / first_stopband) ** ei for ei in e]
    s = [2 ** math.ceil(math.log2(min(2 * t, res))) for t in ft]
    fh = [max(t, si / 2) - c for t, si, c in zip(ft, s, fc)]
    return fc, fh, s


def stylegan3_filter_params(res, filter_size=6, lrelu_upsampling=2, num_layers=14, num_critical=2):
    """(numtaps, cutoff, width, fs, critical) of every up and down filter with numtaps > 1."""
    fc, fh, s = stylegan3_schedule(res, num_layers, num_critical)
    params = []
    for i in range(1, num_layers + 1):
        torgb = i == num_layers
        tmp = max(s[i - 1], s[i]) * (1 if torgb else lrelu_upsampling)
        up, down = tmp // s[i - 1], tmp // s[i]
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        critical = i >= num_layers - num_critical
        if up_taps > 1:
            params.append((up_taps, fc[i - 1], 2 * fh[i - 1], tmp, critical))
        if down_taps > 1:
            params.append((down_taps, fc[i], 2 * fh[i], tmp, critical))
    return params


LAYER_PARAMS = sorted(set(p for res in (256, 1024) for p in stylegan3_filter_params(res)))


def test_schedule_matches_spec_facts():
    fc, fh, s = stylegan3_schedule(1024)
    assert len(fc) == 15
    assert fc[0] == pytest.approx(2) and fc[12] == pytest.approx(512) and fc[14] == pytest.approx(512)
    assert s[0] == 16 and s[-1] == 1024
    taps = {p[0] for p in LAYER_PARAMS}
    fs = {p[3] for p in LAYER_PARAMS}
    assert taps == {12, 24}
    assert min(fs) == 32 and max(fs) == 2048


@pytest.mark.parametrize('numtaps,cutoff,width,fs,critical', LAYER_PARAMS)
def test_separable_matches_firwin_for_stylegan3_layers(numtaps, cutoff, width, fs, critical):
    f = design_lowpass_filter(numtaps, cutoff, width, fs)
    expected = scipy.signal.firwin(numtaps, cutoff=cutoff, width=width, fs=fs)
    assert f.dtype == torch.float32 and f.shape == (numtaps,)
    np.testing.assert_allclose(f.double().numpy(), expected, rtol=0, atol=1e-7)
    assert float(f.double().sum()) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize('index', range(20))
def test_separable_matches_firwin_random(index):
    rng = np.random.default_rng(4000 + index)
    numtaps = int(rng.integers(2, 33))
    fs = float(rng.uniform(1, 3000))
    cutoff = float(rng.uniform(0.02, 0.48)) * fs
    width = float(rng.uniform(0.01, 0.5)) * fs
    f = design_lowpass_filter(numtaps, cutoff, width, fs)
    expected = scipy.signal.firwin(numtaps, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_allclose(f.double().numpy(), expected, rtol=0, atol=1e-7)


def jinc_kaiser(numtaps, cutoff, width, fs):
    """Independent float64 radial filter: jinc(r) times an outer-product Kaiser window."""
    taps = np.array([(i - (numtaps - 1) / 2) / fs for i in range(numtaps)])
    out = np.empty((numtaps, numtaps))
    for a in range(numtaps):
        for b in range(numtaps):
            r = math.sqrt(taps[a] ** 2 + taps[b] ** 2)
            z = 2 * math.pi * cutoff * r
            # J1(2 pi c r) / (pi r) = 2c * J1(z) / z, and J1(z) / z -> 1/2 at z = 0.
            out[a, b] = 2 * cutoff * (scipy.special.j1(z) / z if z > 0 else 0.5)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    out *= window[:, None] * window[None, :]
    return out / out.sum()


RADIAL_PARAMS = sorted({p[:4] for p in LAYER_PARAMS if not p[4]}) + [
    (7, 3.0, 2.0, 16.0), (11, 10.0, 6.0, 64.0), (2, 0.2, 0.3, 1.0), (5, 100.0, 80.0, 512.0)]


@pytest.mark.parametrize('numtaps,cutoff,width,fs', RADIAL_PARAMS)
def test_radial_filter(numtaps, cutoff, width, fs):
    f = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
    assert f.dtype == torch.float32 and f.shape == (numtaps, numtaps)
    np.testing.assert_allclose(f.double().numpy(), jinc_kaiser(numtaps, cutoff, width, fs), rtol=0, atol=1e-7)
    assert float(f.double().sum()) == pytest.approx(1, abs=1e-6)
    torch.testing.assert_close(f, f.t(), rtol=0, atol=1e-9)
    torch.testing.assert_close(f, f.flip(0), rtol=0, atol=1e-9)
    torch.testing.assert_close(f, f.flip(1), rtol=0, atol=1e-9)


def test_radial_differs_from_separable():
    sep = design_lowpass_filter(12, 10.0, 8.0, 64.0)
    rad = design_lowpass_filter(12, 10.0, 8.0, 64.0, radial=True)
    assert not torch.allclose(torch.outer(sep, sep), rad, atol=1e-4)


@pytest.mark.parametrize('radial', [False, True])
def test_one_tap_is_identity(radial):
    assert design_lowpass_filter(1, 10.0, 5.0, 64.0, radial=radial) is None


@pytest.mark.parametrize('kwargs', [
    dict(numtaps=0), dict(numtaps=-3), dict(numtaps=2.5),
    dict(cutoff=0.0), dict(cutoff=-1.0), dict(cutoff=32.0), dict(cutoff=40.0),
    dict(width=0.0), dict(width=-2.0),
])
@pytest.mark.parametrize('radial', [False, True])
def test_invalid_inputs_raise(kwargs, radial):
    args = dict(numtaps=12, cutoff=10.0, width=8.0, fs=64.0, radial=radial)
    args.update(kwargs)
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        design_lowpass_filter(**args)


def test_setup_resample_filter():
    f = setup_resample_filter([1, 3, 3, 1])
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.double().numpy(), expected, rtol=0, atol=1e-8)
    assert float(f.sum()) == pytest.approx(1, abs=1e-7)
    torch.testing.assert_close(setup_resample_filter(), f)


@pytest.mark.parametrize('taps', [[], [[1, 2], [3, 4]]])
def test_setup_resample_filter_rejects_bad_taps(taps):
    with pytest.raises(ValueError, match='taps'):
        setup_resample_filter(taps)
