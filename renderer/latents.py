"""Latents from seeds, as in the published tools: z = numpy RandomState(seed).randn(1, z_dim)."""

from __future__ import annotations

import numpy as np
import torch

MAX_SEED = 2 ** 32 - 1


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise ValueError(f'seed must be an integer in [0, {MAX_SEED}], got {seed!r}')
    return int(seed)


def latent_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The z [1, z_dim] (float32) of a seed."""
    return torch.from_numpy(np.random.RandomState(check_seed(seed)).randn(1, z_dim)).float()


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds = []
    for part in text.split(','):
        part = part.strip()
        lo, sep, hi = part.partition('-')
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(part)])
        except ValueError:
            raise ValueError(f'invalid seed list {text!r}: expected e.g. "0-3,7"') from None
    for seed in seeds:
        check_seed(seed)
    return seeds


def one_hot_label(c_dim: int, class_idx: int, device: torch.device = torch.device('cpu')) -> torch.Tensor:
    """The label c [1, c_dim] of a class (zeros [1, 0] for unconditional networks)."""
    c = torch.zeros([1, c_dim], device=device)
    if c_dim == 0:
        return c
    if not 0 <= class_idx < c_dim:
        raise ValueError(f'class {class_idx} out of range: this network has {c_dim} classes (0-{c_dim - 1})')
    c[0, class_idx] = 1
    return c
