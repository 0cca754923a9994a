"""The renderer's diagnostic views of one network (texture sticking, equivariance error), and spectrum plots.

Each view is a float [3, H', W'] picture in [-1, 1] composed of panels (see
`render_args.DIAGNOSTICS`); the numbers behind the pictures live in the library
modules (sticking.py, equivariance.py, spectrum.py), which the commands share.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from .compose import side_by_side
from .render_args import DIAGNOSTICS, SLICE_MOTIONS, RenderArgs
from .transforms import image_transform, is_identity

MAX_AVERAGE_SAMPLES = 1024
MAX_SLICE_FRAMES = 4096
SPECTRUM_PLOT_SIZE = 256   # Spectra larger than this are block-averaged for the GUI heat map.


class DiagnosticError(ValueError):
    """A diagnostic that cannot run with these arguments; the message is shown to the user."""


def diagnostic_view(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, metrics: dict[str, float],
                    suffix: str = '') -> torch.Tensor:
    """The [3, H', W'] picture of `args.diagnostic` for G with ws [1, num_ws, w_dim]."""
    if args.diagnostic not in DIAGNOSTICS or args.diagnostic == 'none':
        raise DiagnosticError(f'unknown diagnostic {args.diagnostic!r}; choose one of {", ".join(DIAGNOSTICS)}')
    if args.diagnostic == 'average':
        return _average_view(G, args)
    if args.diagnostic == 'slice':
        return _slice_view(G, ws, args)
    return _eq_error_view(G, ws, args, metrics, suffix)


def _seed_of(args: RenderArgs, what: str) -> int:
    if args.w is not None:
        raise DiagnosticError(f'the {what} diagnostic works from a seed; clear the loaded w first')
    return math.floor(args.seed)


def _average_view(G: torch.nn.Module, args: RenderArgs) -> torch.Tensor:
    from .sticking import averaged_image, perturbed_ws
    if not 1 <= args.average_samples <= MAX_AVERAGE_SAMPLES:
        raise DiagnosticError(f'average samples must lie in [1, {MAX_AVERAGE_SAMPLES}], got {args.average_samples}')
    if not (math.isfinite(args.average_sigma) and args.average_sigma >= 0):
        raise DiagnosticError(f'perturbation size must be a finite number >= 0, got {args.average_sigma}')
    ws = perturbed_ws(G, _seed_of(args, 'averaged-image'), args.average_samples, args.average_sigma,
                      truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                      class_idx=args.class_idx)
    central, average = averaged_image(G, ws, noise_mode=args.noise_mode)
    return side_by_side([central, average])


def slice_animation(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs):
    """The animation of the slice diagnostic; its middle frame is the current view."""
    from .generation import has_input_transform
    from .motion import latent_animation, translation_animation
    if args.slice_motion not in SLICE_MOTIONS:
        raise DiagnosticError(f'slice motion must be one of {", ".join(SLICE_MOTIONS)}, got {args.slice_motion!r}')
    if not 2 <= args.slice_frames <= MAX_SLICE_FRAMES:
        raise DiagnosticError(f'slice frames must lie in [2, {MAX_SLICE_FRAMES}], got {args.slice_frames}')
    if args.slice_motion == 'latent':
        seed = _seed_of(args, 'latent-interpolation slice')
        return latent_animation(G, [seed, seed + 1], args.slice_frames - 1, kind='linear', loop=False,
                                truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                                class_idx=args.class_idx)
    if not has_input_transform(G):
        raise DiagnosticError('a translation slice needs an input transform (StyleGAN3); use the latent motion')
    if not math.isfinite(args.slice_step_px):
        raise DiagnosticError(f'slice step must be finite, got {args.slice_step_px}')
    res = G.img_resolution
    step = (args.slice_step_px / res, 0.0) if args.slice_axis == 'row' else (0.0, args.slice_step_px / res)
    half = args.slice_frames // 2
    start = (args.translate[0] - half * step[0], args.translate[1] - half * step[1])
    return translation_animation(ws, args.slice_frames, step=step, start=start)


def _slice_view(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    from .sticking import slice_diagnostic
    if not 0 <= args.slice_pos <= 1:
        raise DiagnosticError(f'slice position must lie in [0, 1], got {args.slice_pos}')
    index = round(args.slice_pos * (G.img_resolution - 1))
    middle, stacked = slice_diagnostic(G, slice_animation(G, ws, args), axis=args.slice_axis, index=index)
    return side_by_side([middle, stacked])


def current_transform(args: RenderArgs) -> np.ndarray:
    try:
        return image_transform(args.translate, args.rotate, args.scale, args.shear, args.mirror)
    except ValueError as e:
        raise DiagnosticError(str(e)) from None


def measure_transform(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, metrics: dict[str, float],
                      suffix: str = '', rendered: Optional[torch.Tensor] = None):
    """PSNR (dB) of the current input transform against the ideal transform, into metrics['eq_psnr_db' + suffix].

    rendered: the image [1, C, H, W] already rendered with the transform, if any (saves a synthesis).
    Returns the TransformComparison, or None for the identity (PSNR reported as inf without rendering)."""
    from .equivariance import compare_transform
    matrix = current_transform(args)
    if is_identity(matrix):
        metrics['eq_psnr_db' + suffix] = float('inf')
        return None
    comparison = compare_transform(G, ws, matrix, noise_mode=args.noise_mode, rendered=rendered)
    metrics['eq_psnr_db' + suffix] = comparison.psnr_db
    return comparison


def _eq_error_view(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, metrics: dict[str, float],
                   suffix: str) -> torch.Tensor:
    comparison = measure_transform(G, ws, args, metrics, suffix)
    if comparison is None:
        raise DiagnosticError('the equivariance error needs an input transform: translate or rotate first')
    error = (comparison.error * args.diff_gain - 1).clamp(-1, 1)[None]
    return side_by_side([comparison.actual, comparison.ideal, error])


def spectrum_plot_data(tensor: torch.Tensor, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heat map [h, w] float32 dB at most SPECTRUM_PLOT_SIZE a side, radial freqs, radial profile dB) of [C, H, W]."""
    from .spectrum import power_spectrum, radial_profile, to_db
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
