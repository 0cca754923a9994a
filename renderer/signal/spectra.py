"""Power spectra of images: the Kaiser-windowed periodogram, its running mean, radial profiles, dB.

Conventions. Images are float [N, C, H, W]. A spectrum is linear power [H, W], float64, DC at
[H // 2, W // 2] (fftshift), row i is the vertical frequency (i - H // 2) / H cycles per pixel (y down), column j
the horizontal one (j - W // 2) / W. Every image channel has its mean removed and is multiplied by a separable
Kaiser window of the given beta; |FFT2|^2 is divided by the window energy sum(w^2), so white noise of variance
s^2 has a flat spectrum of level s^2 (away from DC, where removing the mean lowers it) and, with beta = 0, the
spectrum is the plain periodogram |FFT2|^2 / (H W). The live FFT view, the spectrum plots and the average
spectra of the diagnostics all use `power_spectrum`.
"""

from __future__ import annotations

from typing import Optional, TypeVar, Union

import numpy as np
import torch

from renderer.errors import RequestError

DB_FLOOR = 1e-30   # Power floor of to_db: a removed DC is exactly zero.


def kaiser_window_2d(height: int, width: int, beta: float, device: torch.device) -> torch.Tensor:
    """Separable symmetric Kaiser window [H, W] (float64): outer product of two 1-D windows."""
    wy = torch.kaiser_window(height, periodic=False, beta=beta, dtype=torch.float64)
    wx = torch.kaiser_window(width, periodic=False, beta=beta, dtype=torch.float64)
    return torch.outer(wy, wx).to(device)


def power_spectrum(images: torch.Tensor, beta: float = 8.0) -> torch.Tensor:
    """Mean power spectrum of images [N, C, H, W] over N and C: float64 [H, W] on the images' device (CPU for MPS).

    Per image and channel: mean removed, Kaiser window (beta) applied, |FFT2|^2 / sum(window^2), fftshift
    (DC at [H // 2, W // 2]). See the module docstring for the normalisation.
    """
    if images.ndim != 4 or 0 in images.shape:
        raise RequestError(f'expected a non-empty image batch [N, C, H, W], got shape {list(images.shape)}')
    if not beta >= 0:
        raise RequestError(f'Kaiser beta must be >= 0, got {beta}')
    if images.device.type == 'mps':  # MPS has no float64.
        images = images.cpu()
    window = kaiser_window_2d(images.shape[2], images.shape[3], beta, images.device)
    x = images.double()
    x = (x - x.mean(dim=[2, 3], keepdim=True)) * window
    power = torch.fft.fft2(x).abs().square().mean(dim=[0, 1]) / window.square().sum()
    return torch.fft.fftshift(power)


class SpectrumAccumulator:
    """Running mean of power spectra over image batches of one size; `count` is the number of images added."""

    def __init__(self, beta: float = 8.0):
        self.beta = beta
        self.count = 0
        self._sum: Optional[torch.Tensor] = None   # Sum over images and channels of their spectra.
        self._channels = 0

    def add(self, images: torch.Tensor) -> None:
        """Add a batch [N, C, H, W]; all batches must have the same H and W."""
        power = power_spectrum(images, self.beta)
        if self._sum is not None and power.shape != self._sum.shape:
            raise RequestError(f'image size {list(power.shape)} differs from the earlier images '
                             f'{list(self._sum.shape)}')
        weight = images.shape[0] * images.shape[1]
        self._sum = power * weight if self._sum is None else self._sum + power.to(self._sum.device) * weight
        self._channels += weight
        self.count += images.shape[0]

    def mean(self) -> np.ndarray:
        """Mean spectrum [H, W] float64 (see power_spectrum)."""
        if self._sum is None:
            raise RequestError('no images were added to the spectrum')
        return (self._sum / self._channels).cpu().numpy()


def radial_profile(power: Union[np.ndarray, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Mean power over annuli of a spectrum [H, W] (linear, DC at [H // 2, W // 2]).

    A pixel's radius is rho = |f| * min(H, W), with f = ((i - H // 2) / H, (j - W // 2) / W) its frequency in
    cycles per pixel; bin r = 0 .. min(H, W) // 2 holds the pixels with rho in [r - 0.5, r + 0.5) (square input:
    |k| in pixels). Corners beyond the last bin are left out. Returns (freqs, profile): freqs = r / min(H, W)
    cycles per pixel (0 .. <= 0.5) and the mean linear power per bin, both float64 contiguous 1-D.
    """
    if isinstance(power, torch.Tensor):
        power = power.detach().cpu().numpy()
    power = np.asarray(power, dtype=np.float64)
    if power.ndim != 2 or 0 in power.shape:
        raise RequestError(f'expected a non-empty spectrum [H, W], got shape {list(power.shape)}')
    h, w = power.shape
    size = min(h, w)
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    rho = np.hypot(fy[:, None], fx[None, :]) * size
    bins = np.floor(rho + 0.5).astype(np.int64).ravel()
    num_bins = size // 2 + 1
    keep = bins < num_bins
    totals = np.bincount(bins[keep], weights=power.ravel()[keep], minlength=num_bins)
    counts = np.bincount(bins[keep], minlength=num_bins)
    freqs = np.arange(num_bins, dtype=np.float64) / size
    return np.ascontiguousarray(freqs), np.ascontiguousarray(totals / counts)


Power = TypeVar('Power', np.ndarray, torch.Tensor)


def to_db(power: Power) -> Power:
    """10 log10(power) of a numpy array or a torch tensor, with power floored at DB_FLOOR."""
    if isinstance(power, torch.Tensor):
        return 10 * torch.log10(power.clamp_min(DB_FLOOR))
    return 10 * np.log10(np.maximum(power, DB_FLOOR))
