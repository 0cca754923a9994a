"""The pictures the visualizer shows of one network: image, layer channels, spectrum, diagnostics.

Each view is a float [C, H', W'] picture in [-1, 1]. The numbers behind the diagnostic
pictures come from the library (renderer.diagnostics: sticking, equivariance), which
the commands share; this module only adds what the GUI's arguments mean.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from renderer.diagnostics.equivariance import TransformComparison
from renderer.errors import RequestError
from renderer.generation import Latents
from renderer.live.render_args import RenderArgs
from renderer.media import pictures
from renderer.media.compose import side_by_side
from renderer.motion import Animation, slice_animation
from renderer.options import DIAGNOSTICS, MAX_AVERAGE_SAMPLES
from renderer.signal.spectra import power_spectrum, radial_profile, to_db
from renderer.signal.transforms import image_transform

SPECTRUM_PLOT_SIZE = 256   # Spectra larger than this are block-averaged for the GUI heat map.


def latents_of(args: RenderArgs) -> Latents:
    return Latents(args.truncation_psi, args.truncation_cutoff, args.class_idx)


def check_diagnostic(args: RenderArgs) -> None:
    if args.diagnostic not in DIAGNOSTICS:
        raise RequestError(f'unknown diagnostic {args.diagnostic!r}; choose one of {", ".join(DIAGNOSTICS)}')


def content_transform(args: RenderArgs) -> np.ndarray:
    """The 3x3 matrix moving the image content as the input-transform arguments say."""
    return image_transform(args.translate, args.rotate, args.scale, args.shear, args.mirror)


def make_view(tensor: torch.Tensor, img: torch.Tensor, args: RenderArgs,
              spectrum_db: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
    """The [1 or 3, H, W] picture in [-1, 1] to display: the image, feature channels or a spectrum.

    tensor: the shown layer's output [C, H, W] (the image itself without a layer); img [1, C, H, W].
    spectrum_db(source): the dB power spectrum of the FFT view's source (default: computed here; the
    renderer passes a cached one)."""
    if args.layer is None and not args.fft:
        return img[0].float()
    selected = pictures.select_channels(tensor, args.channel_base, args.num_channels)
    if args.fft:
        source = tensor if args.fft_all_channels else selected
        db = (spectrum_db or (lambda x: pictures.power_spectrum_db(x.float(), args.fft_beta)))(source)
        return pictures.spectrum_view(db, args.fft_range_db)
    if args.layer is None:
        return selected.float()
    return pictures.feature_view(selected, args.normalize, args.gain_db)


MAX_READOUT_VALUES = 4 * 2 ** 20   # Values sent for the pixel readout (16 MB of float32) at most.


def readout(tensor: torch.Tensor, args: RenderArgs) -> Optional[tuple[np.ndarray, tuple[int, ...]]]:
    """The values behind the plain view, for the GUI's pixel readout: (float32 [c, H, W], channel numbers).

    The image's channels, or the shown channels of a layer as computed (before normalisation and gain).
    None for the FFT view, or when the values would exceed MAX_READOUT_VALUES."""
    if args.fft:
        return None
    shown = range(tensor.shape[0]) if args.layer is None else pictures.shown_channels(
        tensor.shape[0], args.channel_base, args.num_channels)
    if len(shown) * tensor.shape[1] * tensor.shape[2] > MAX_READOUT_VALUES:
        return None
    values = tensor[shown.start:shown.stop].float().cpu().numpy()
    return np.ascontiguousarray(values), tuple(shown)


def channel_stats(values: np.ndarray, channels: tuple[int, ...]) -> list[dict[str, float]]:
    """mean/std/min/max (float64) of each channel of values [c, H, W], with its channel number."""
    rows = []
    for channel, plane in zip(channels, values.astype(np.float64)):
        rows.append(dict(channel=channel, mean=float(plane.mean()), std=float(plane.std()),
                         min=float(plane.min()), max=float(plane.max())))
    return rows


def check_average_args(args: RenderArgs) -> int:
    """The seed of the averaged image; RequestError for arguments it cannot use."""
    if not 1 <= args.average_samples <= MAX_AVERAGE_SAMPLES:
        raise RequestError(f'average samples must lie in [1, {MAX_AVERAGE_SAMPLES}], got {args.average_samples}')
    if not (math.isfinite(args.average_sigma) and args.average_sigma >= 0):
        raise RequestError(f'perturbation size must be a finite number >= 0, got {args.average_sigma}')
    return seed_of(args, 'averaged-image')


def seed_of(args: RenderArgs, what: str) -> int:
    if args.w is not None:
        raise RequestError(f'the {what} diagnostic works from a seed; clear the loaded w first')
    return math.floor(args.seed)


def slice_setup(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs) -> tuple[Animation, int]:
    """(animation, row or column index) of the slice diagnostic; RequestError for arguments it cannot use."""
    if not 0 <= args.slice_pos <= 1:
        raise RequestError(f'slice position must lie in [0, 1], got {args.slice_pos}')
    seed = seed_of(args, 'latent-interpolation slice') if args.slice_motion == 'latent' else None
    animation = slice_animation(G, args.slice_motion, args.slice_frames, args.slice_axis, args.slice_step_px,
                                ws=ws, seed=seed, latents=latents_of(args), centre=args.translate)
    return animation, round(args.slice_pos * (G.img_resolution - 1))


def pair_picture(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """[central | average] or [middle frame | slice]."""
    return side_by_side([left, right])


def eq_error_picture(comparison: TransformComparison, gain: float) -> torch.Tensor:
    """rendered | ideal | |error| * gain."""
    error = (comparison.error * gain - 1).clamp(-1, 1)[None]
    return side_by_side([comparison.actual, comparison.ideal, error])


def spectrum_plot_data(tensor: torch.Tensor, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heat map [h, w] float32 dB at most SPECTRUM_PLOT_SIZE a side, radial freqs, radial profile dB) of [C, H, W]."""
    power = power_spectrum(tensor[None].float(), beta)
    freqs, profile = radial_profile(power.cpu().numpy())
    factor = max(1, math.ceil(max(power.shape) / SPECTRUM_PLOT_SIZE))
    small = _block_mean_centred(power, factor) if factor > 1 else power
    heat = to_db(small.cpu().numpy()).astype(np.float32)
    return np.ascontiguousarray(heat), np.ascontiguousarray(freqs), np.ascontiguousarray(to_db(profile))


def _block_mean_centred(power: torch.Tensor, factor: int) -> torch.Tensor:
    """Average factor x factor blocks of a DC-centred spectrum, keeping DC in the centre block."""
    h, w = power.shape
    pad_h, pad_w = (-(h // 2)) % factor, (-(w // 2)) % factor  # Align block edges on the DC row/column.
    padded = torch.nn.functional.pad(power[None, None], (pad_w, (-(w + pad_w)) % factor, pad_h,
                                                         (-(h + pad_h)) % factor))
    return torch.nn.functional.avg_pool2d(padded, factor)[0, 0]


def tensor_stats(x: torch.Tensor) -> dict[str, float]:
    """mean/std/min/max of a tensor (float32)."""
    x = x.float()
    return dict(mean=x.mean().item(), std=x.std().item() if x.numel() > 1 else 0.0,
                min=x.min().item(), max=x.max().item())
