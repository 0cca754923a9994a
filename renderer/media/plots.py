"""PNG plots (matplotlib, Agg backend, no display) and the files of the spectrum command."""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from renderer.errors import RequestError
from renderer.media.atomic import atomic_files, atomic_path
from renderer.signal.spectra import radial_profile, to_db

DEFAULT_RANGE_DB = 50.0   # Dynamic range of spectrum plots; the live spectrum view has the same default.


def _frequency_extent(height: int, width: int) -> list[float]:
    """imshow extent (left, right, bottom, top) in cycles per pixel, row 0 at the top (y down)."""
    return [(-(width // 2) - 0.5) / width, (width - 1 - width // 2 + 0.5) / width,
            (height - 1 - height // 2 + 0.5) / height, (-(height // 2) - 0.5) / height]


def plot_spectra(path: Union[str, os.PathLike], spectra: dict[str, np.ndarray],
                 range_db: float = DEFAULT_RANGE_DB) -> None:
    """PNG at path: a heat map per spectrum (dB relative to its peak, shown over range_db, DC centred, axes in
    cycles per pixel, y down) and their radial profiles overlaid (absolute dB; y axis spans range_db below the
    highest profile). Titles and legend entries are the dict keys. Written atomically.
    """
    if not spectra:
        raise RequestError('nothing to plot: no spectra given')
    if not range_db > 0:
        raise RequestError(f'range_db must be positive, got {range_db}')
    for name, power in spectra.items():
        if np.ndim(power) != 2:
            raise RequestError(f'spectrum {name!r} must be [H, W], got shape {list(np.shape(power))}')
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.figure import Figure  # Figure objects, not pyplot: no global figure registry.

    fig = Figure(figsize=(4.2 * (len(spectra) + 1), 4.0), layout='constrained')
    axes = fig.subplots(1, len(spectra) + 1, squeeze=False)[0]
    top_db = -np.inf
    for ax, (name, power) in zip(axes, spectra.items()):
        db = to_db(power)
        image = ax.imshow(db - db.max(), cmap='inferno', vmin=-range_db, vmax=0, interpolation='nearest',
                          extent=_frequency_extent(*db.shape))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel('horizontal frequency (cycles/pixel)')
        ax.set_ylabel('vertical frequency (cycles/pixel, y down)')
        fig.colorbar(image, ax=ax, shrink=0.8, label='dB relative to peak')
        freqs, profile = radial_profile(power)
        profile_db = to_db(profile)
        top_db = max(top_db, profile_db.max())
        axes[-1].plot(freqs, profile_db, label=name)
    ax = axes[-1]
    ax.set_xlim(0, 0.5)
    ax.set_ylim(top_db - range_db, top_db + 3)
    ax.set_xlabel('frequency (cycles/pixel)')
    ax.set_ylabel('power (dB)')
    ax.set_title('radial profile', fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=100)


def write_spectrum_files(png_path: str, spectra: dict[str, np.ndarray], titles: dict[str, str],
                         range_db: float = DEFAULT_RANGE_DB) -> None:
    """The PNG plot and the .npz arrays beside it; both are written to temporary files first and renamed only
    when both are complete, so an interruption leaves neither under its final name."""
    arrays: dict[str, np.ndarray] = {}
    for label, power in spectra.items():
        freqs, profile = radial_profile(power)
        arrays[f'{label}_power'] = power
        arrays[f'{label}_profile'] = profile
        arrays[f'{label}_freqs'] = freqs
        arrays.setdefault('freqs', freqs)
    stem = os.path.splitext(png_path)[0]
    with atomic_files([stem + '.npz', png_path]) as (npz_tmp, png_tmp):
        with open(npz_tmp, 'wb') as f:
            np.savez(f, **arrays)
        plot_spectra(png_tmp, {titles.get(k, k): v for k, v in spectra.items()}, range_db)
