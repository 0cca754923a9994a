"""Tensor -> picture: output images, feature-map channels and power spectra made displayable.

A *picture* (or view) is a float tensor [C, H, W] in [-1, 1] with C = 1 (grey) or 3
(RGB); `to_uint8` turns it into the [H, W, C] uint8 array that files and textures take
(x * 127.5 + 128, clamped, as the published tools convert images).
"""

from __future__ import annotations

import numpy as np
import torch

from renderer.errors import RequestError
from renderer.signal.spectra import power_spectrum, to_db


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[C, H, W] image in [-1, 1] -> [H, W, C] uint8 (x * 127.5 + 128, clamped)."""
    return (img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def as_rgb(view: torch.Tensor) -> torch.Tensor:
    """[1 or 3, H, W] -> [3, H, W] (grey replicated, as a view without copying)."""
    return view.expand(3, -1, -1) if view.shape[0] == 1 else view


def shown_channels(channels: int, base: int, count: int) -> range:
    """The channels [base, base + count) of a tensor with `channels`, base clamped so that `count` exist."""
    if count not in (1, 3):
        raise RequestError(f'num_channels must be 1 or 3, got {count}')
    count = min(count, channels)
    base = min(max(int(base), 0), channels - count)
    return range(base, base + count)


def select_channels(x: torch.Tensor, base: int, count: int) -> torch.Tensor:
    """Channels [base, base + count) of x [C, H, W], base clamped so that `count` channels exist."""
    shown = shown_channels(x.shape[0], base, count)
    return x[shown.start:shown.stop]


def feature_view(x: torch.Tensor, normalize: bool, gain_db: float) -> torch.Tensor:
    """Scale selected feature channels [c, H, W] for display in [-1, 1]: per-channel max-abs, then gain."""
    x = x.float()
    if normalize:
        x = x / x.abs().amax(dim=[1, 2], keepdim=True).clamp(1e-8, 1e8)
    return x * (10 ** (gain_db / 20))


def power_spectrum_db(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean power spectrum in dB of x [C, H, W] over its channels, DC at the centre: float32 [H, W].

    See renderer.signal.spectra.power_spectrum (mean removed, Kaiser window of the given beta,
    normalised by the window energy)."""
    return to_db(power_spectrum(x[None], beta)).float()


def spectrum_view(spectrum_db: torch.Tensor, range_db: float) -> torch.Tensor:
    """dB spectrum [H, W] -> grey image [1, H, W] in [-1, 1], the top `range_db` dB mapped linearly."""
    if not range_db > 0:
        raise RequestError(f'fft_range_db must be positive, got {range_db}')
    top = spectrum_db.max()
    return ((spectrum_db - top) / range_db * 2 + 1).clamp(-1, 1).unsqueeze(0)
