"""Average power spectra of generated images and of a folder of real images (StyleGAN3 paper, figure 3 style).

The spectra follow renderer.signal.spectra (Kaiser window, normalised by the window energy, DC centred);
`generated_spectrum` averages them over a network's images, `folder_spectrum` over image files. The
spectrum command (renderer.commands.spectrum) plots them with renderer.media.plots.

Under torchrun (renderer.distributed) both share their batches round-robin among the ranks: each rank
sums the spectra of its own batches, the sums are added in rank order, and every rank gets the mean. The
latents of every batch are drawn by every rank, so the images are the same for any number of ranks and
the mean differs from one process's only by the order of the float64 additions.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Union

import numpy as np
import torch

from renderer.distributed import World
from renderer.errors import RequestError
from renderer.generation import check_seed, device_of, synthesize_images, ws_from_z
from renderer.signal.spectra import SpectrumAccumulator

Progress = Optional[Callable[[int], None]]   # Called with the number of images done so far.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')


def _check_count(name: str, value: Optional[int], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RequestError(f'{name} must be a positive integer, got {value!r}')


def _combined_mean(world: World, what: str, compute: Callable[[], SpectrumAccumulator],
                   channels_per_image: Callable[[], int]) -> tuple[np.ndarray, int]:
    """Every rank's accumulator from compute(), combined: (mean spectrum [H, W] float64, number of images)."""
    if not world.distributed:
        acc = compute()
        return acc.mean(), acc.count

    def own_sum() -> tuple[Optional[np.ndarray], int]:
        acc = compute()
        return (acc.mean() * (acc.count * channels_per_image()) if acc.count else None), acc.count
    shares = world.gather(what, own_sum)
    sums = [total for total, _ in shares if total is not None]
    count = sum(n for _, n in shares)
    if not sums:
        raise RequestError('no images were added to the spectrum')
    total = sums[0].copy()
    for other in sums[1:]:   # In rank order, the same on every rank.
        if other.shape != total.shape:
            raise RequestError(f'image size {list(other.shape)} differs from the earlier images {list(total.shape)}')
        total += other
    return total / (count * channels_per_image()), count


@torch.no_grad()
def generated_spectrum(G: torch.nn.Module, num_images: int, batch: int = 8, seed: int = 0,
                       truncation_psi: float = 1.0, beta: float = 8.0, progress: Progress = None,
                       precision: str = 'fp32', world: Optional[World] = None) -> np.ndarray:
    """Mean power spectrum [H, W] float64 of `num_images` images of G (noise_mode 'const', `precision`).

    z is drawn in order from numpy RandomState(seed) ([num_images, z_dim], independent of `batch` and of the
    number of ranks); a conditional network gets uniformly random classes from a second stream seeded by
    (seed, 1). `world`: the ranks sharing the batches (None: this process alone); `progress` is called on
    rank 0 with the number of its own images done.
    """
    _check_count('num_images', num_images)
    _check_count('batch', batch)
    check_seed(seed)
    world = world or World(device=device_of(G))

    def accumulate() -> SpectrumAccumulator:
        z_stream = np.random.RandomState(seed)
        class_stream = np.random.default_rng([seed, 1])
        acc = SpectrumAccumulator(beta)
        for index, start in enumerate(range(0, num_images, batch)):
            n = min(batch, num_images - start)
            z = torch.from_numpy(z_stream.randn(n, G.z_dim)).float()   # Every rank draws every batch.
            c = torch.zeros([n, G.c_dim])
            if G.c_dim:
                c[torch.arange(n), torch.from_numpy(class_stream.integers(0, G.c_dim, size=n))] = 1
            if not world.owns(index):
                continue
            acc.add(synthesize_images(G, ws_from_z(G, z, c, truncation_psi), precision=precision))
            if progress is not None and world.is_main:
                progress(acc.count)
        return acc

    return _combined_mean(world, 'averaging the spectrum of generated images', accumulate,
                          lambda: G.img_channels)[0]


def image_files(folder: Union[str, os.PathLike]) -> list[str]:
    """Image files (by extension, any case) under folder and its sub-folders, sorted; other files and hidden
    names are skipped. ValueError naming the folder if it is missing or holds no image."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise RequestError(f'{folder}: not a folder')
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        found += [os.path.join(root, f) for f in files
                  if not f.startswith('.') and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise RequestError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    return sorted(found, key=lambda p: os.path.relpath(p, folder))


def read_image(path: str) -> np.ndarray:
    """An image file as float32 [3, H, W] in [-1, 1]: grey replicated, alpha dropped. ValueError naming the file."""
    import imageio.v3 as iio
    try:
        pixels = iio.imread(path, index=0, plugin='pillow')   # Pillow reads all of IMAGE_EXTENSIONS.
    except Exception as e:   # Decoders raise many types (OSError, ValueError, SyntaxError...): all mean "not an image".
        raise RequestError(f'{path}: cannot read as an image ({type(e).__name__}: {e})') from None
    if pixels.dtype == np.bool_:
        x = pixels.astype(np.float32) * 2 - 1
    elif np.issubdtype(pixels.dtype, np.integer):
        x = pixels.astype(np.float32) / np.iinfo(pixels.dtype).max * 2 - 1
    else:
        raise RequestError(f'{path}: unsupported pixel type {pixels.dtype}')
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 2, 3, 4):
        raise RequestError(f'{path}: unsupported image layout, array shape {list(pixels.shape)}')
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
                    batch: int = 8, world: Optional[World] = None) -> tuple[np.ndarray, int]:
    """Mean power spectrum [H, W] float64 of the images in a folder (see image_files), and their number.

    Images are read in sorted order (at most max_images) as RGB in [-1, 1]. Without `resolution` all must
    have the size of the first; with it, every image is resized to resolution x resolution (Lanczos).
    `world`: the ranks sharing the batches of `batch` files (None: this process alone); `progress` is called
    on rank 0 with the number of its own images done.
    """
    _check_count('resolution', resolution, allow_none=True)
    _check_count('max_images', max_images, allow_none=True)
    files = image_files(folder)[:max_images]
    world = world or World()

    def accumulate() -> SpectrumAccumulator:
        acc = SpectrumAccumulator(beta)
        first: Optional[tuple[str, tuple[int, int]]] = None
        if resolution is None and not world.owns(0):   # The size every image must have is the first one's.
            first = (files[0], read_image(files[0]).shape[1:])
        for index, start in enumerate(range(0, len(files), batch)):
            if not world.owns(index):
                continue
            pending: list[np.ndarray] = []
            for path in files[start:start + batch]:
                x = read_image(path)
                if resolution is not None:
                    x = resize_image(x, resolution)
                elif first is None:
                    first = (path, x.shape[1:])
                elif x.shape[1:] != first[1]:
                    raise RequestError(f'{path}: image is {x.shape[2]}x{x.shape[1]} but {first[0]} is '
                                       f'{first[1][1]}x{first[1][0]}; give a resolution to resize all images')
                pending.append(x)
            acc.add(torch.from_numpy(np.stack(pending)))
            if progress is not None and world.is_main:
                progress(acc.count)
        return acc

    return _combined_mean(world, 'averaging the spectrum of the real images', accumulate, lambda: 3)
