"""The built-in demo network: an untrained StyleGAN3-T made deterministically from a fixed seed.

Random weights, so it shows no faces, but every feature of the tools works on
it without a download. Its input-magnitude EMAs and w_avg are calibrated the
way training would track them, so activations are well scaled and truncation
behaves as on a trained network.

Building it takes seconds (its calibration runs the network), so `demo_network()`
builds it once and then loads it from the network cache (renderer.io.download's
folder) as `demo-<digest>.pt`. The digest covers everything the weights depend on:
the constructor arguments and seed, the source of the code that builds and runs
the network, and the torch and numpy versions, CPU kernels and thread count that
computed the calibration, so a cached copy is bit for bit what a fresh build in
this environment gives. A missing, unreadable or unwritable cache only costs the
build.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Optional, Union

import numpy as np
import torch

from renderer.errors import NetworkLoadError
from renderer.io.download import default_cache_dir
from renderer.media.progress import report
from renderer.networks import stylegan3
from renderer.networks.capture import capture_points

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
_SOURCES = ('networks/*.py', 'ops/*.py', 'signal/filters.py', 'io/demo.py')  # Code that makes the weights.

DEMO_LABEL = 'untrained demo network'
DEMO_SEED = 20211012
DEMO_KWARGS = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                   channel_base=8192, channel_max=256, mapping_kwargs=dict(num_layers=2))


def demo_digest(seed: int = DEMO_SEED) -> str:
    """16 hex digits identifying the demo network this code and environment build."""
    h = hashlib.sha256(json.dumps([DEMO_KWARGS, seed, torch.__version__, np.__version__, torch.get_num_threads(),
                                   torch.backends.cpu.get_cpu_capability()], sort_keys=True).encode())
    for pattern in _SOURCES:
        for path in sorted(_PACKAGE.glob(pattern)):
            h.update(path.name.encode() + b'\0' + path.read_bytes())
    return h.hexdigest()[:16]


def demo_network(cache_dir: Optional[Union[str, pathlib.Path]] = None) -> stylegan3.Generator:
    """The demo network: loaded from the cache when this environment built it before, else built and cached."""
    from renderer.io.loading import load_file
    from renderer.io.native_format import save_network
    path = pathlib.Path(cache_dir if cache_dir is not None else default_cache_dir()) / f'demo-{demo_digest()}.pt'
    if path.is_file():
        try:
            return load_file(path).eval()
        except NetworkLoadError:
            pass  # A damaged copy: build it again below, which replaces it.
    report('building the demo network', 0, None, 'once; later starts load it from the cache')
    G = build_demo_network()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_network(G, path)
    except OSError:
        pass  # A read-only cache: the next start builds it again.
    return G


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
