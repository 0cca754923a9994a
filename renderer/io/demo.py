"""The built-in demo network: an untrained StyleGAN3-T made deterministically from a fixed seed.

Random weights, so it shows no faces, but every feature of the tools works on
it without a download. Its input-magnitude EMAs and w_avg are calibrated the
way training would track them, so activations are well scaled and truncation
behaves as on a trained network.
"""

from __future__ import annotations

import torch

from renderer.networks import stylegan3
from renderer.networks.capture import capture_points

DEMO_LABEL = 'untrained demo network'
DEMO_SEED = 20211012
DEMO_KWARGS = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                   channel_base=8192, channel_max=256, mapping_kwargs=dict(num_layers=2))


@torch.no_grad()
def build_demo_network(seed: int = DEMO_SEED, calibration_samples: int = 2) -> stylegan3.Generator:
    """The same network (bit for bit, on one torch version) for the same seed; eval mode, CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = stylegan3.Generator(**DEMO_KWARGS).eval()
        z_avg = torch.randn([1000, G.z_dim])
        z = torch.randn([calibration_samples, G.z_dim])
    G.mapping.w_avg.copy_(G.mapping(z_avg, None)[:, 0].mean(dim=0))
    _calibrate(G, G.mapping(z, None))
    return G


def _calibrate(G: stylegan3.Generator, ws: torch.Tensor) -> None:
    """Set each layer's magnitude_ema to the mean square of its input, layer by layer, and
    scale the ToRGB layer so that images have zero mean and a standard deviation of 0.35."""
    layers = list(capture_points(G).values())[1:]
    x = G.synthesis.input(ws[:, 0])
    for layer, w in zip(layers, ws[:, 1:].unbind(dim=1)):
        layer.magnitude_ema.copy_(x.square().mean())
        x = layer(x, w)
    torgb = layers[-1]
    gain = 0.35 / (x.std(dim=[0, 2, 3]) * G.synthesis.output_scale)
    torgb.weight.mul_(gain.reshape(-1, 1, 1, 1))
    torgb.bias.copy_(-(x.mean(dim=[0, 2, 3]) - torgb.bias) * gain)
