"""Small random-weight generators and image comparisons shared by the network tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.networks import stylegan2, stylegan3

SMALL_T = dict(channel_base=4096, channel_max=128)
SMALL_R = dict(channel_base=8192, channel_max=256, conv_kernel=1, use_radial_filters=True)


def make_generator(arch: str, res: int = 64, c_dim: int = 0, seed: int = 0, dim: int = 64) -> torch.nn.Module:
    """A small random-weight generator in eval mode: arch is 'stylegan3-t', 'stylegan3-r' or 'stylegan2'."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == 'stylegan3-t':
            G = stylegan3.Generator(dim, c_dim, dim, res, 3, **SMALL_T)
        elif arch == 'stylegan3-r':
            G = stylegan3.Generator(dim, c_dim, dim, res, 3, **SMALL_R)
        elif arch == 'stylegan2':
            G = stylegan2.Generator(dim, c_dim, dim, res, 3, channel_base=2048, channel_max=128,
                                    mapping_kwargs=dict(num_layers=2))
            for name, p in G.named_parameters():
                if name.endswith('noise_strength'):
                    p.data.fill_(0.5)  # trained networks have non-zero noise strengths
        else:
            raise ValueError(arch)
        G.mapping.w_avg.normal_()
    return G.eval()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1] (I_max = 2)."""
    mse = (a.double() - b.double()).square().mean().item()
    return float('inf') if mse == 0 else 20 * np.log10(2) - 10 * np.log10(mse)


def rotation_matrix(angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float32)


def translation_matrix(tx: float, ty: float) -> torch.Tensor:
    return torch.tensor([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=torch.float32)


@pytest.fixture(scope='module', autouse=True, name='one_thread')
def one_intra_op_thread():
    """One intra-op thread for a test module (import this fixture to use it): on a busy 2-core machine two
    spinning threads make tiny renders many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
