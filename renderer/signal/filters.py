"""Filter design for the generators (docs/generator.md section 2; paper appendix C/F).

- `design_lowpass_filter`: Kaiser-windowed FIR low-pass, separable 1-D
  (scipy.signal.firwin) or 2-D radially symmetric (jinc times a separable
  Kaiser window);
- `setup_resample_filter`: StyleGAN2's normalised binomial FIR ([1, 3, 3, 1]).
Frequencies (`cutoff`, `width`, `fs`) share one unit, e.g. cycles per image.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import scipy.signal
import scipy.special
import torch


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Optional[torch.Tensor]:
    """Kaiser-windowed low-pass FIR filter, float32; None when numtaps == 1 (identity).

    Separable: [numtaps], scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs).
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
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(divide='ignore', invalid='ignore'):
        jinc = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    jinc[r == 0] = cutoff  # limit of J1(2*pi*c*r) / (pi*r) at r = 0
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    taps = jinc * np.outer(window, window)
    taps /= np.sum(taps)
    return torch.as_tensor(taps, dtype=torch.float32)


def setup_resample_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """2-D FIR as the outer product of `taps` with itself, normalised to sum 1 (float32)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f'resample filter taps must be a non-empty 1-D sequence, got {taps!r}')
    f = torch.outer(f, f)
    return f / f.sum()
