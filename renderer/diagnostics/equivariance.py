"""Equivariance metrics of StyleGAN3 (docs/metrics.md; paper section 3 and appendix E).

PSNR in dB = 20 log10(2) - 10 log10(MSE): the image range is [-1, 1] (I_max = 2) and
the MSE is the squared error summed over all samples, channels and valid pixels,
divided by their count (not an average of per-sample PSNRs). Per sample: z ~ N(0, I)
(and a uniformly drawn class for conditional networks), w = mapping(z); the
reference is rendered with the identity input transform. Then, per metric:
- EQ-T: t uniform in [-translate_max, translate_max]^2 image widths, rounded to
  whole pixels; the image rendered with the content moved by t (input transform
  translated by -t) is compared with the reference shifted by t; pixels shifted in
  from outside are masked.
- EQ-T_frac: the same without rounding; the reference is shifted by windowed-sinc
  interpolation and its border is masked (band_limited.fractional_shift).
- EQ-R: angle uniform in [-rotate_max_deg, rotate_max_deg]; the band-limited
  rotation of the reference is compared with the band-limited pseudo-rotation of
  the image rendered with the content rotated (band_limited.affine_transform /
  pseudo_transform); both supports are masked.
Every draw comes from a torch.Generator seeded with `seed` (on the CPU), so a seed
gives the same samples and transforms on any device. Under torchrun (renderer.distributed)
the batches are dealt round-robin to the ranks; every rank draws the latents and transforms
of every batch in order, and the squared errors are summed in batch order, so the result is
bit for bit that of one process for any number of ranks (on the same kind of device). StyleGAN3's input transform is
one matrix for the whole batch, so one transform is drawn per batch: `batch=1` gives
every sample its own. StyleGAN3 has no noise inputs (`noise_mode` is passed on for
interface parity); networks without an input transform (StyleGAN2) raise RequestError.

The band-limited operations mask a border of a few filter radii (band_limited.py: 8
pixels by default, fewer below 128 pixels) and are exact only for content below about
0.4 cycles per pixel, which puts a floor under EQ-T_frac and EQ-R for images with
strong content right at the Nyquist frequency (measured in band_limited.py's docstring).
EQ-T uses exact shifts and has no such floor.

An infinite PSNR (no error at all, e.g. a perfectly equivariant fake) is float('inf')
in Python; the JSON written by the command stores it as null with "exact": true,
since JSON has no infinity.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from renderer.distributed import World
from renderer.errors import RequestError
from renderer.generation import check_seed, device_of, require_input_transform, synthesize_images, ws_from_z
from renderer.media.progress import ProgressBar
from renderer.signal import band_limited
from renderer.signal.transforms import image_transform, is_identity

METRICS = ('eq_t', 'eq_t_frac', 'eq_r')
DEFAULT_NUM_SAMPLES = 128   # The paper uses 50,000; a few hundred give a usable estimate on a CPU.
DEFAULT_BATCH = 4
I_MAX = 2.0                 # Peak-to-peak range of the images ([-1, 1]).


def psnr_db(mse: float) -> float:
    """20 log10(I_max) - 10 log10(mse) with I_max = 2; float('inf') for mse == 0 (never NaN)."""
    mse = float(mse)
    if not mse >= 0 or math.isinf(mse):
        raise RequestError(f'mse must be a finite non-negative number, got {mse!r}')
    return math.inf if mse == 0 else 20 * math.log10(I_MAX) - 10 * math.log10(mse)


@dataclasses.dataclass
class EquivarianceResult:
    name: str              # 'eq_t', 'eq_t_frac' or 'eq_r'
    psnr_db: float         # aggregate PSNR over all samples and valid pixels; inf for no error
    num_samples: int
    seconds: float         # wall-clock time of the measurement
    mse: float             # mean squared error over all samples, channels and valid pixels
    valid_fraction: float  # valid pixels / all pixels, over all samples

    def to_json(self) -> dict:
        """JSON-safe dict: an infinite PSNR becomes null with "exact": true."""
        d = dataclasses.asdict(self)
        d['exact'] = math.isinf(self.psnr_db)
        if d['exact']:
            d['psnr_db'] = None
        return d


@dataclasses.dataclass
class TransformComparison:
    psnr_db: float            # inf when identical on the valid pixels
    error: torch.Tensor       # [H, W] float32, |ideal - actual| averaged over channels, 0 outside the mask
    mask: torch.Tensor        # [H, W] float32 {0, 1} valid pixels
    ideal: torch.Tensor       # [C, H, W] the reference transformed ideally (band-limited), masked
    actual: torch.Tensor      # [C, H, W] the image rendered with the input transform (pseudo-filtered for rotations)


# ----------------------------------------------------------------------------------------------------
# Ideal transform of the reference vs the transformed rendering (one implementation for all callers).

def _pixel_translation(matrix: np.ndarray, resolution: int) -> Optional[np.ndarray]:
    """(dx, dy) in pixels if `matrix` is a pure translation, else None."""
    if not np.allclose(matrix[:2, :2], np.eye(2), rtol=0, atol=1e-12) or not np.allclose(matrix[2], [0, 0, 1]):
        return None
    return matrix[:2, 2] * resolution


def compare_images(reference: torch.Tensor, rendered: torch.Tensor, matrix: np.ndarray,
                   radius_px: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ideal, actual, mask [H, W]) for images [N, C, H, W]: reference moved by `matrix` vs rendered.

    Whole-pixel translations are exact shifts, other translations windowed-sinc shifts, anything
    else (rotation, scale, shear, mirror) the band-limited transform vs the pseudo-transform.
    """
    shift = _pixel_translation(matrix, reference.shape[-1])
    if shift is not None:
        rounded = np.round(shift)
        if np.allclose(shift, rounded, rtol=0, atol=1e-6):
            ideal, mask = band_limited.integer_shift(reference, (int(rounded[0]), int(rounded[1])))
        else:
            ideal, mask = band_limited.fractional_shift(reference, (float(shift[0]), float(shift[1])), radius_px)
        return ideal, rendered, mask
    ideal, ideal_mask = band_limited.affine_transform(reference, matrix, radius_px=radius_px)
    actual, actual_mask = band_limited.pseudo_transform(rendered, matrix, radius_px=radius_px)
    return ideal, actual, ideal_mask * actual_mask


def _squared_error(ideal: torch.Tensor, actual: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(sum of squared errors over valid pixels and channels, number of valid values), in float64."""
    diff = (ideal.double() - actual.double()) * mask.double()
    return float(diff.square().sum()), int(mask.sum().item()) * ideal.shape[0] * ideal.shape[1]


def compare_transform(G: torch.nn.Module, ws: torch.Tensor, matrix: np.ndarray, noise_mode: str = 'const',
                      radius_px: Optional[int] = None, rendered: Optional[torch.Tensor] = None,
                      reference: Optional[torch.Tensor] = None) -> TransformComparison:
    """Compare the image rendered with content transform `matrix` against the ideally transformed reference.

    ws: [1, num_ws, w_dim]; matrix: 3x3 content transform (transforms.py convention). The reference
    uses the identity input transform; radius_px is the band-limited filters' radius (None: automatic,
    see band_limited.resolve_radius). `rendered` [1, C, H, W]: the image already rendered with `matrix`
    (saves one synthesis; the GUI passes what it shows); `reference` likewise the image with the identity
    transform. Raises RequestError for a network without an input transform and when no pixel stays valid
    (the transform moved the image out of view).
    """
    require_input_transform(G, 'the equivariance comparison')
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise RequestError(f'ws must have shape [1, num_ws, w_dim], got {list(ws.shape)}')
    matrix = np.asarray(matrix, dtype=np.float64)
    if reference is None:
        reference = synthesize_images(G, ws, noise_mode=noise_mode)
    if is_identity(matrix):
        rendered, ideal, mask = reference, reference, torch.ones(reference.shape[-2:], device=reference.device)
    else:
        if rendered is None:
            rendered = synthesize_images(G, ws, matrix, noise_mode=noise_mode)
        ideal, rendered, mask = compare_images(reference, rendered, matrix, radius_px)
    squared, count = _squared_error(ideal, rendered, mask)
    if count == 0:
        raise RequestError('no pixel of the transformed image has a valid reference: the transform moves the '
                         'image (nearly) out of view')
    error = (ideal[0] - rendered[0]).abs().mean(dim=0) * mask
    return TransformComparison(psnr_db=psnr_db(squared / count), error=error.float(), mask=mask.float(),
                               ideal=(ideal[0] * mask).float(), actual=rendered[0].float())


# ----------------------------------------------------------------------------------------------------
# Metrics.

def _check_counts(num_samples: int, batch: int) -> None:
    for name, value in (('num_samples', num_samples), ('batch', batch)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise RequestError(f'{name} must be a positive integer, got {value!r}')


def _random_latents(G: torch.nn.Module, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """z [n, z_dim] and one-hot labels c [n, c_dim] (uniform classes), drawn from gen in this order."""
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, G.c_dim])
    if G.c_dim:
        c[torch.arange(n), torch.randint(G.c_dim, [n], generator=gen)] = 1
    return z, c


def _uniform(gen: torch.Generator, size: int, limit: float) -> np.ndarray:
    return ((torch.rand([size], generator=gen, dtype=torch.float64) * 2 - 1) * limit).numpy()


@dataclasses.dataclass(frozen=True)
class _BatchError:
    """One batch's share of a metric: sums that add up exactly (float64 and integers)."""
    squared: float       # Sum of squared errors over its valid values.
    count: int           # Its valid values (pixels x channels x samples).
    pixels: int          # All its values.


def _measure(G: torch.nn.Module, name: str, draw_matrix: Callable[[torch.Generator], np.ndarray],
             num_samples: int, batch: int, seed: int, truncation_psi: float, noise_mode: str, radius_px: Optional[int],
             progress: bool, precision: str = 'fp32', world: Optional[World] = None) -> EquivarianceResult:
    """Aggregate PSNR of `name` over num_samples samples, one transform drawn per batch, batches shared by the
    ranks of `world` (None: this process alone)."""
    require_input_transform(G, name)
    _check_counts(num_samples, batch)
    band_limited.check_radius(radius_px)
    world = world or World(device=device_of(G))
    gen = torch.Generator().manual_seed(check_seed(seed))
    num_batches = -(-num_samples // batch)
    start = time.perf_counter()

    def measure_own() -> list[_BatchError]:
        own: list[_BatchError] = []
        label = name if not world.distributed else f'{name} (rank 0 of {world.world_size})'
        owned_samples = sum(min(batch, num_samples - i * batch) for i in range(num_batches) if world.owns(i))
        done = 0
        with ProgressBar(label, owned_samples, 'samples', enabled=progress and world.is_main) as bar:
            for index in range(num_batches):
                n = min(batch, num_samples - index * batch)
                z, c = _random_latents(G, n, gen)   # Every rank draws every batch: the draws never depend on
                matrix = draw_matrix(gen)           # the number of ranks.
                if not world.owns(index):
                    continue
                ws = ws_from_z(G, z, c, truncation_psi)
                reference = synthesize_images(G, ws, noise_mode=noise_mode, precision=precision)
                rendered = synthesize_images(G, ws, matrix, noise_mode=noise_mode, precision=precision)
                ideal, actual, mask = compare_images(reference, rendered, matrix, radius_px)
                own.append(_BatchError(*_squared_error(ideal, actual, mask), reference.numel()))
                done += n
                bar.update(done)
        return own

    shares = world.gather(f'measuring {name}', measure_own)
    squared, count, total_pixels = 0.0, 0, 0
    for index in range(num_batches):   # In batch order, as one process adds them.
        part = shares[index % world.world_size][index // world.world_size]
        squared += part.squared
        count += part.count
        total_pixels += part.pixels
    if count == 0:
        raise RequestError(f'{name}: no valid pixels in any sample (the transforms move the image out of view)')
    mse = squared / count
    return EquivarianceResult(name=name, psnr_db=psnr_db(mse), num_samples=num_samples,
                              seconds=time.perf_counter() - start, mse=mse, valid_fraction=count / total_pixels)


def eq_t(G: torch.nn.Module, num_samples: int = DEFAULT_NUM_SAMPLES, batch: int = DEFAULT_BATCH, seed: int = 0,
         fractional: bool = False, translate_max: float = 0.125, truncation_psi: float = 1.0,
         noise_mode: str = 'const', radius_px: Optional[int] = None, progress: bool = True,
         precision: str = 'fp32', world: Optional[World] = None) -> EquivarianceResult:
    """EQ-T (whole-pixel translations) or, with fractional=True, EQ-T_frac. translate_max in image widths.
    `precision` of the renders ('fp32', 'bf16', 'fp16'); `world`: the ranks sharing the batches."""
    if not 0 <= translate_max < 1:
        raise RequestError(f'translate_max must be in [0, 1) image widths, got {translate_max!r}')
    resolution = G.img_resolution

    def draw(gen: torch.Generator) -> np.ndarray:
        t = _uniform(gen, 2, translate_max)
        if not fractional:
            t = np.round(t * resolution) / resolution
        return image_transform(translate=(float(t[0]), float(t[1])))

    return _measure(G, 'eq_t_frac' if fractional else 'eq_t', draw, num_samples, batch, seed, truncation_psi,
                    noise_mode, radius_px, progress, precision, world)


def eq_r(G: torch.nn.Module, num_samples: int = DEFAULT_NUM_SAMPLES, batch: int = DEFAULT_BATCH, seed: int = 0,
         rotate_max_deg: float = 180.0, truncation_psi: float = 1.0, noise_mode: str = 'const',
         radius_px: Optional[int] = None, progress: bool = True, precision: str = 'fp32',
         world: Optional[World] = None) -> EquivarianceResult:
    """EQ-R: rotations uniform in [-rotate_max_deg, rotate_max_deg] (counter-clockwise on screen)."""
    if not 0 <= rotate_max_deg <= 180:
        raise RequestError(f'rotate_max_deg must be in [0, 180], got {rotate_max_deg!r}')

    def draw(gen: torch.Generator) -> np.ndarray:
        return image_transform(rotate_deg=float(_uniform(gen, 1, rotate_max_deg)[0]))

    return _measure(G, 'eq_r', draw, num_samples, batch, seed, truncation_psi, noise_mode, radius_px, progress,
                    precision, world)


def parse_metrics(text: str) -> tuple[str, ...]:
    """'eq_t,eq_r' -> ('eq_t', 'eq_r'); ValueError naming unknown or missing metrics."""
    names = tuple(part.strip() for part in text.split(',') if part.strip())
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise RequestError(f'unknown metric(s) {", ".join(unknown) or "(none given)"}; '
                           f'choose from {", ".join(METRICS)}')
    return tuple(dict.fromkeys(names))


def measure(G: torch.nn.Module, metrics: Union[str, Sequence[str]] = METRICS, num_samples: int = DEFAULT_NUM_SAMPLES,
            batch: int = DEFAULT_BATCH, seed: int = 0, translate_max: float = 0.125, rotate_max_deg: float = 180.0,
            truncation_psi: float = 1.0, noise_mode: str = 'const', radius_px: Optional[int] = None,
            progress: bool = True, precision: str = 'fp32',
            world: Optional[World] = None) -> dict[str, EquivarianceResult]:
    """Each requested metric with the same seed (so the same latents); {name: result} in the order asked.

    `precision` of the renders (fp32 by default: metrics are float32); `world`: the ranks sharing the
    batches (renderer.distributed; None: this process alone), every rank gets the same results."""
    metrics = parse_metrics(metrics if isinstance(metrics, str) else ','.join(metrics))
    _check_counts(num_samples, batch)
    common = dict(num_samples=num_samples, batch=batch, seed=seed, truncation_psi=truncation_psi,
                  noise_mode=noise_mode, radius_px=radius_px, progress=progress, precision=precision, world=world)
    results = {}
    for name in metrics:
        if name == 'eq_r':
            results[name] = eq_r(G, rotate_max_deg=rotate_max_deg, **common)
        else:
            results[name] = eq_t(G, fractional=(name == 'eq_t_frac'), translate_max=translate_max, **common)
    return results
