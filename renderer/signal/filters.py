"""Filter design for the generators (docs/generator.md section 2; paper appendix C/F).

- `design_lowpass_filter`: Kaiser-windowed FIR low-pass, separable 1-D (the
  windowed-sinc design of scipy.signal.firwin, computed here so that starting the
  renderer does not import scipy.signal, which takes seconds) or 2-D radially
  symmetric (jinc times a separable Kaiser window);
- `setup_resample_filter`: StyleGAN2's normalised binomial FIR ([1, 3, 3, 1]).
Frequencies (`cutoff`, `width`, `fs`) share one unit, e.g. cycles per image.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Optional[torch.Tensor]:
    """Kaiser-windowed low-pass FIR filter, float32; None when numtaps == 1 (identity).

    Separable: [numtaps], the taps of scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs) (see
    `windowed_sinc`).
    Radial: [numtaps, numtaps], jinc(r) = J1(2*pi*cutoff*r) / (pi*r) on the tap
    grid (arange(numtaps) - (numtaps - 1) / 2) / fs, times the outer product of
    a Kaiser window with beta = kaiser_beta(kaiser_atten(numtaps, width / (fs / 2))),
    normalised to sum 1.
    """
    if int(numtaps) != numtaps or numtaps < 1:
        raise ValueError(f'numtaps must be a positive integer, got {numtaps!r}')
    numtaps = int(numtaps)
    if numtaps == 1:
        return None
    if not 0 < cutoff < fs / 2:
        raise ValueError(f'cutoff must lie in (0, fs/2) = (0, {fs / 2}), got {cutoff}')
    if width <= 0:
        raise ValueError(f'width must be positive, got {width}')
    if not radial:
        return torch.as_tensor(windowed_sinc(numtaps, cutoff, width, fs), dtype=torch.float32)
    import scipy.special  # Here, not at the top: only config R needs it, and it is slow to import.
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(divide='ignore', invalid='ignore'):
        jinc = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    jinc[r == 0] = cutoff  # limit of J1(2*pi*c*r) / (pi*r) at r = 0
    window = np.kaiser(numtaps, kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2))))
    taps = jinc * np.outer(window, window)
    taps /= np.sum(taps)
    return torch.as_tensor(taps, dtype=torch.float32)


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the stopband attenuation (dB) of a numtaps filter whose transition band is
    `width` (a fraction of the Nyquist frequency): 2.285 (numtaps - 1) pi width + 7.95."""
    return 2.285 * (numtaps - 1) * np.pi * width + 7.95


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser's window parameter for a stopband attenuation in dB."""
    a = attenuation_db
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def windowed_sinc(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """float64 [numtaps] low-pass: the ideal response (c sinc(c m), c = cutoff / (fs / 2), m the tap offset from
    the centre) times a symmetric Kaiser window of Kaiser's beta for the transition `width`, scaled to unit DC
    gain. This is the design of scipy.signal.firwin with width given and the default scaling."""
    nyquist = fs / 2
    c = cutoff / nyquist
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = c * np.sinc(c * m) * np.kaiser(numtaps, kaiser_beta(kaiser_attenuation(numtaps, width / nyquist)))
    return taps / taps.sum()


def setup_resample_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """2-D FIR as the outer product of `taps` with itself, normalised to sum 1 (float32)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f'resample filter taps must be a non-empty 1-D sequence, got {taps!r}')
    f = torch.outer(f, f)
    return f / f.sum()
