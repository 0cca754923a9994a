"""Average power spectra of generated images and of a folder of real images (StyleGAN3 paper, figure 3 style).

    python -m renderer.spectrum --network A.pkl [--network-b B.pkl] [--real-dir DIR] --num-images 1000 \\
        --out spectra.png

(--network defaults to the built-in demo network) writes `spectra.png` (one heat map per source and their
radial profiles overlaid) and `spectra.npz` beside it with the raw arrays: '<label>_power' [H, W],
'<label>_profile' and '<label>_freqs' per source (labels 'a', 'b' for the networks, 'real'), and 'freqs'
(the profile frequencies of the first source).

Conventions. Images are float [N, C, H, W] in [-1, 1]. A spectrum is linear power [H, W], float64, DC at
[H // 2, W // 2] (fftshift), row i is the vertical frequency (i - H // 2) / H cycles per pixel (y down), column j
the horizontal one (j - W // 2) / W. Every image channel has its mean removed and is multiplied by a separable
Kaiser window of the given beta (as the live view in imaging.py does); |FFT2|^2 is divided by the window energy
sum(w^2), so white noise of variance s^2 has a flat spectrum of level s^2 (away from DC, where removing the mean
lowers it) and, with beta = 0, the spectrum is the plain periodogram |FFT2|^2 / (H W).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from .atomic import PendingFile, atomic_path
from .generation import device_of, synthesize_images
from .latents import check_seed

Progress = Optional[Callable[[int], None]]   # Called with the number of images done so far.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')
DEFAULT_RANGE_DB = 50.0                      # Same default as the live spectrum view (RenderArgs.fft_range_db).


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
        raise ValueError(f'expected a non-empty image batch [N, C, H, W], got shape {list(images.shape)}')
    if not beta >= 0:
        raise ValueError(f'Kaiser beta must be >= 0, got {beta}')
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
            raise ValueError(f'image size {list(power.shape)} differs from the earlier images '
                             f'{list(self._sum.shape)}')
        weight = images.shape[0] * images.shape[1]
        self._sum = power * weight if self._sum is None else self._sum + power.to(self._sum.device) * weight
        self._channels += weight
        self.count += images.shape[0]

    def mean(self) -> np.ndarray:
        """Mean spectrum [H, W] float64 (see power_spectrum)."""
        if self._sum is None:
            raise ValueError('no images were added to the spectrum')
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
        raise ValueError(f'expected a non-empty spectrum [H, W], got shape {list(power.shape)}')
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


def _check_count(name: str, value: Optional[int], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')


@torch.no_grad()
def generated_spectrum(G: torch.nn.Module, num_images: int, batch: int = 8, seed: int = 0,
                       truncation_psi: float = 1.0, beta: float = 8.0, progress: Progress = None) -> np.ndarray:
    """Mean power spectrum [H, W] float64 of `num_images` images of G (noise_mode 'const', fp32).

    z is drawn in order from numpy RandomState(seed) ([num_images, z_dim], independent of `batch`); a
    conditional network gets uniformly random classes from a second stream seeded by (seed, 1).
    """
    _check_count('num_images', num_images)
    _check_count('batch', batch)
    check_seed(seed)
    device = device_of(G)
    z_stream = np.random.RandomState(seed)
    class_stream = np.random.default_rng([seed, 1])
    acc = SpectrumAccumulator(beta)
    while acc.count < num_images:
        n = min(batch, num_images - acc.count)
        z = torch.from_numpy(z_stream.randn(n, G.z_dim)).float().to(device)
        c = torch.zeros([n, G.c_dim], device=device)
        if G.c_dim:
            c[torch.arange(n), torch.from_numpy(class_stream.integers(0, G.c_dim, size=n))] = 1
        ws = G.mapping(z, c, truncation_psi=truncation_psi)
        acc.add(synthesize_images(G, ws))
        if progress is not None:
            progress(acc.count)
    return acc.mean()


def image_files(folder: Union[str, os.PathLike]) -> list[str]:
    """Image files (by extension, any case) under folder and its sub-folders, sorted; other files and hidden
    names are skipped. ValueError naming the folder if it is missing or holds no image."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f'{folder}: not a folder')
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        found += [os.path.join(root, f) for f in files
                  if not f.startswith('.') and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise ValueError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    return sorted(found, key=lambda p: os.path.relpath(p, folder))


def read_image(path: str) -> np.ndarray:
    """An image file as float32 [3, H, W] in [-1, 1]: grey replicated, alpha dropped. ValueError naming the file."""
    import imageio.v3 as iio
    try:
        pixels = iio.imread(path, index=0, plugin='pillow')   # Pillow reads all of IMAGE_EXTENSIONS.
    except Exception as e:   # Decoders raise many types (OSError, ValueError, SyntaxError...): all mean "not an image".
        raise ValueError(f'{path}: cannot read as an image ({type(e).__name__}: {e})') from None
    if pixels.dtype == np.bool_:
        x = pixels.astype(np.float32) * 2 - 1
    elif np.issubdtype(pixels.dtype, np.integer):
        x = pixels.astype(np.float32) / np.iinfo(pixels.dtype).max * 2 - 1
    else:
        raise ValueError(f'{path}: unsupported pixel type {pixels.dtype}')
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'{path}: unsupported image layout, array shape {list(pixels.shape)}')
    x = x[:, :, :3] if x.shape[2] >= 3 else x[:, :, :1].repeat(3, axis=2)   # Drop alpha, replicate grey.
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_image(x: np.ndarray, resolution: int) -> np.ndarray:
    """[C, H, W] float32 -> [C, resolution, resolution], Lanczos per channel in float (PIL mode 'F')."""
    from PIL import Image
    if x.shape[1:] == (resolution, resolution):
        return x
    return np.stack([np.asarray(Image.fromarray(ch, mode='F').resize((resolution, resolution), Image.LANCZOS))
                     for ch in x])


def folder_spectrum(folder: Union[str, os.PathLike], resolution: Optional[int] = None,
                    max_images: Optional[int] = None, beta: float = 8.0, progress: Progress = None,
                    batch: int = 8) -> tuple[np.ndarray, int]:
    """Mean power spectrum [H, W] float64 of the images in a folder (see image_files), and their number.

    Images are read in sorted order (at most max_images) as RGB in [-1, 1]. Without `resolution` all must
    have the size of the first; with it, every image is resized to resolution x resolution (Lanczos).
    """
    _check_count('resolution', resolution, allow_none=True)
    _check_count('max_images', max_images, allow_none=True)
    files = image_files(folder)[:max_images]
    acc = SpectrumAccumulator(beta)
    pending: list[np.ndarray] = []
    first: Optional[tuple[str, tuple[int, int]]] = None
    for index, path in enumerate(files):
        x = read_image(path)
        if resolution is not None:
            x = resize_image(x, resolution)
        elif first is None:
            first = (path, x.shape[1:])
        elif x.shape[1:] != first[1]:
            raise ValueError(f'{path}: image is {x.shape[2]}x{x.shape[1]} but {first[0]} is '
                             f'{first[1][1]}x{first[1][0]}; give a resolution to resize all images')
        pending.append(x)
        if len(pending) == batch or index == len(files) - 1:
            acc.add(torch.from_numpy(np.stack(pending)))
            pending = []
            if progress is not None:
                progress(acc.count)
    return acc.mean(), acc.count


def to_db(power: np.ndarray) -> np.ndarray:
    """10 log10(power), with power floored at 1e-30 (a removed DC is exactly zero)."""
    return 10 * np.log10(np.maximum(power, 1e-30))


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
        raise ValueError('nothing to plot: no spectra given')
    if not range_db > 0:
        raise ValueError(f'range_db must be positive, got {range_db}')
    for name, power in spectra.items():
        if np.ndim(power) != 2:
            raise ValueError(f'spectrum {name!r} must be [H, W], got shape {list(np.shape(power))}')
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.figure import Figure   # Figure objects, not pyplot: no global figure registry.

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


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from .cli import add_network_options
    parser = argparse.ArgumentParser(prog='python -m renderer.spectrum', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_options(parser)
    parser.add_argument('--network-b', default=None, help='a second network to compare (path, URL or "demo")')
    parser.add_argument('--real-dir', default=None, help='folder of real images (searched recursively)')
    parser.add_argument('--num-images', type=int, default=64,
                        help='images per network, and at most this many real images (default 64)')
    parser.add_argument('--batch', type=int, default=8, help='images per forward pass (default 8)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random latents (default 0)')
    parser.add_argument('--trunc', type=float, default=1.0, help='truncation psi (default 1)')
    parser.add_argument('--resolution', type=int, default=None,
                        help='resize real images to this size (default: require one size)')
    parser.add_argument('--beta', type=float, default=8.0, help='Kaiser window beta (default 8)')
    parser.add_argument('--range-db', type=float, default=DEFAULT_RANGE_DB,
                        help=f'dynamic range of the plots in dB (default {DEFAULT_RANGE_DB:g})')
    parser.add_argument('--out', default='spectra.png', help='output PNG; the arrays go to the same stem .npz')
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    from .cli import open_network
    from .progress import ProgressBar
    args = _parse_args(argv)
    if os.path.splitext(args.out)[1].lower() != '.png':
        raise ValueError(f'--out must be a .png file, got {args.out!r}')
    for name in ('num_images', 'batch'):
        _check_count('--' + name.replace('_', '-'), getattr(args, name))
    check_seed(args.seed)
    if not args.beta >= 0 or not args.range_db > 0:
        raise ValueError(f'--beta must be >= 0 and --range-db positive, got {args.beta} and {args.range_db}')

    spectra: dict[str, np.ndarray] = {}
    titles: dict[str, str] = {}
    if args.real_dir is not None:   # First: a bad image should fail before minutes of generation.
        total = min(len(image_files(args.real_dir)), args.num_images)
        with ProgressBar('real images', total, 'images') as bar:
            real, count = folder_spectrum(args.real_dir, args.resolution, args.num_images, args.beta, bar.update)
        titles['real'] = f'real: {os.path.basename(os.path.normpath(args.real_dir))} ({count} images)'
    for label, source in (('a', args.network), ('b', args.network_b)):
        if source is None:
            continue
        G = open_network(source, args.device)
        with ProgressBar(f'network {label}', args.num_images, 'images') as bar:
            spectra[label] = generated_spectrum(G, args.num_images, args.batch, args.seed, args.trunc,
                                                args.beta, bar.update)
        titles[label] = f'{label}: {os.path.basename(source) or source} ({args.num_images} images)'
        del G
    if args.real_dir is not None:
        spectra['real'] = real
    write_outputs(args.out, spectra, titles, args.range_db)
    print(args.out)
    print(os.path.splitext(args.out)[0] + '.npz')
    return 0


def write_outputs(png_path: str, spectra: dict[str, np.ndarray], titles: dict[str, str],
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
    npz = PendingFile(os.path.splitext(png_path)[0] + '.npz')
    png = PendingFile(png_path)
    try:
        with open(npz.tmp, 'wb') as f:
            np.savez(f, **arrays)
        plot_spectra(png.tmp, {titles.get(k, k): v for k, v in spectra.items()}, range_db)
        npz.commit()
        png.commit()
    finally:
        npz.discard()
        png.discard()


if __name__ == '__main__':
    from .cli import run_command
    sys.exit(run_command(main))
