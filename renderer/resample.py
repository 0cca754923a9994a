"""Band-limited affine resampling of images (used to 'untransform' StyleGAN3 output).

The image is upsampled `up` times with a Kaiser low-pass filter (cutoff at the
original Nyquist frequency), then sampled bilinearly at the transformed pixel
centres; samples from outside the image are zero and reported in a mask.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .filters import design_lowpass_filter
from .ops import upsample2d


@functools.lru_cache(maxsize=8)
def _lowpass(up: int, taps_per_phase: int) -> torch.Tensor:
    # Frequencies in cycles per original sample: pass below 0.4, stop above 0.6.
    return design_lowpass_filter(numtaps=up * taps_per_phase, cutoff=0.5, width=0.2, fs=up)


def affine_resample(img: torch.Tensor, matrix: np.ndarray, up: int = 4,
                    taps_per_phase: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """out(p) = img(matrix @ p) for pixel centres p in image units ([-0.5, 0.5], y down).

    img: [N, C, H, W] float. matrix: 3x3 mapping output to source coordinates.
    Returns (out [N, C, H, W], mask [1, 1, H, W]) where mask is 1 where the source
    point lies inside the image.
    """
    n, c, h, w = img.shape
    f = _lowpass(up, taps_per_phase).to(img.device)
    big = upsample2d(img.float(), f, up=up)
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) / h - 0.5
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    points = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1) @ torch.as_tensor(matrix, dtype=torch.float64).T
    grid = (points[..., :2] * 2).float().unsqueeze(0).to(img.device)  # normalised [-1, 1] coordinates
    out = F.grid_sample(big, grid.expand(n, -1, -1, -1), mode='bilinear', padding_mode='zeros', align_corners=False)
    inside = (points[..., 0].abs() <= 0.5) & (points[..., 1].abs() <= 0.5)
    return out.to(img.dtype), inside.to(img.device, img.dtype).reshape(1, 1, h, w)
