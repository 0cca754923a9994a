"""Network pickles for the loading tests: small generators, rendering, comparisons, hostile reduce calls.

The published-format writers themselves live in renderer.io.published_writer (the
benchmarks use them too); they are re-exported here under their usual names.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from renderer.io.published_writer import (  # noqa: F401
    HARMLESS_SOURCE,
    POSITIONAL,
    STAND_IN_MODULES,
    TRAINING_SET_KWARGS,
    Persistent,
    augment_pipe_record,
    discriminator_record,
    easydict,
    generator_record,
    module_record,
    snapshot,
    stand_in_modules,
    write_pickle,
    write_published,
)
from renderer.networks import stylegan2, stylegan3

ARCHS = ('stylegan3-t', 'stylegan3-r', 'stylegan2')


SMALL_CONFIGS = {
    'stylegan3-t': (stylegan3.Generator, dict(channel_base=2048, channel_max=32)),
    'stylegan3-r': (stylegan3.Generator, dict(channel_base=4096, channel_max=64, conv_kernel=1,
                                              use_radial_filters=True)),
    'stylegan2': (stylegan2.Generator, dict(channel_base=1024, channel_max=32, mapping_kwargs=dict(num_layers=2))),
}


def small_generator(arch: str, c_dim: int = 0, seed: int = 0, res: int = 32) -> torch.nn.Module:
    """A small random generator ('stylegan3-t', 'stylegan3-r', 'stylegan2') in eval mode, every tensor non-trivial:
    random biases, w_avg, input-magnitude EMAs and noise strengths, so that a misplaced tensor shows."""
    cls, kwargs = SMALL_CONFIGS[arch]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = cls(32, c_dim, 32, res, 3, **copy.deepcopy(kwargs)).eval()
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            leaf = name.rsplit('.', 1)[-1]
            if leaf in ('bias', 'w_avg'):
                t.add_(torch.randn_like(t) * 0.1)
            elif leaf == 'magnitude_ema':
                t.fill_(float(torch.rand([]) + 0.5))
            elif leaf == 'noise_strength':
                t.fill_(0.5)
    return G


def render(G: torch.nn.Module, seeds=(0, 1, 2), psi: float = 1.0, class_idx: int = 0) -> torch.Tensor:
    """Images [len(seeds), C, H, W] for seeds (numpy RandomState latents), one-hot labels for conditional G."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    c = torch.zeros([len(seeds), G.c_dim])
    if G.c_dim:
        c[:, class_idx % G.c_dim] = 1
    with torch.no_grad():
        return G(z, c, truncation_psi=psi, truncation_cutoff=None, noise_mode='const')


def tensors_equal(A: torch.nn.Module, B: torch.nn.Module) -> list[str]:
    """Names of tensors that differ (or exist in only one) between A and B; empty when identical."""
    a = dict(A.named_parameters()) | dict(A.named_buffers())
    b = dict(B.named_parameters()) | dict(B.named_buffers())
    bad = sorted(set(a) ^ set(b))
    bad += [n for n in sorted(set(a) & set(b)) if a[n].dtype != b[n].dtype or not torch.equal(a[n], b[n])]
    return bad


class Reduce:
    """An object that pickles as a call fn(*args): what hostile pickles are made of."""

    def __init__(self, fn: Any, *args: Any):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return self.fn, self.args
