"""Batch generation shared by the commands and diagnostics (metrics, sticking, spectra, videos).

Conventions: ws are [N, num_ws, w_dim]; images are float [N, C, H, W] in [-1, 1];
a transform `matrix` is a 3x3 float64 array moving the *image content* in image
units ([-0.5, 0.5], y down; see transforms.py). Only StyleGAN3 has an input
transform; asking for one on another network raises ValueError.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from .latents import latent_from_seed, one_hot_label
from .transforms import is_identity

DEMO_SOURCE = 'demo'   # Network name that selects the built-in demo network in commands.


def load_generator(source: str, device: torch.device = torch.device('cpu')) -> torch.nn.Module:
    """Network from a path or URL ('' or 'demo': the built-in demo), in eval mode without gradients."""
    if source in ('', DEMO_SOURCE):
        from .demo import build_demo_network
        G = build_demo_network().to(device)
    else:
        from .loading import load_network
        G = load_network(source, device=device)
    return G.eval().requires_grad_(False)


def has_input_transform(G: torch.nn.Module) -> bool:
    return getattr(G, 'architecture', None) == 'stylegan3'


def device_of(G: torch.nn.Module) -> torch.device:
    return next(G.buffers()).device


@contextlib.contextmanager
def input_transform(G: torch.nn.Module, matrix: np.ndarray) -> Iterator[None]:
    """Temporarily set StyleGAN3's input transform to inv(matrix) (the image is moved by matrix)."""
    if not has_input_transform(G):
        raise ValueError('this network has no input transform (only StyleGAN3 networks can be translated '
                         'or rotated at the input)')
    buffer = G.synthesis.input.transform
    saved = buffer.clone()
    try:
        buffer.copy_(torch.as_tensor(np.linalg.inv(matrix), dtype=buffer.dtype))
        yield
    finally:
        buffer.copy_(saved)


@torch.no_grad()
def ws_from_seeds(G: torch.nn.Module, seeds: Sequence[int], truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] on G's device; z of each seed as in the published tools."""
    device = device_of(G)
    z = torch.cat([latent_from_seed(seed, G.z_dim) for seed in seeds]).to(device)
    c = one_hot_label(G.c_dim, class_idx or 0, device).expand(len(seeds), -1)
    return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@torch.no_grad()
def synthesize_images(G: torch.nn.Module, ws: torch.Tensor, matrix: Optional[np.ndarray] = None,
                      noise_mode: str = 'const', force_fp32: bool = True) -> torch.Tensor:
    """Images [N, C, H, W] (float32) for ws [N, num_ws, w_dim], content moved by `matrix` if given."""
    with contextlib.ExitStack() as stack:
        if matrix is not None and not is_identity(matrix):
            stack.enter_context(input_transform(G, matrix))
        return G.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32).float()
