"""Layer capture: one forward pass hands back the output of every layer (or of chosen ones).

Usage:
    with capture_layers(G, names=None) as records:
        img = G.synthesis(ws)
    for r in records: print(r.name, r.shape, r.dtype)
The hooks are removed when the block exits, also on error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import torch


@dataclass
class LayerRecord:
    name: str                 # Module path below `synthesis`, e.g. 'L3_52_512' or 'b64.conv0'.
    tensor: torch.Tensor      # [N, C, H, W], detached, as computed (float16 layers stay float16).

    @property
    def shape(self) -> list[int]:
        return list(self.tensor.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.tensor.dtype


def capture_points(G: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Ordered {name: module} of the layers whose outputs are feature maps, input to output."""
    synthesis = G.synthesis
    if hasattr(synthesis, 'layer_names'):  # StyleGAN3
        return {'input': synthesis.input, **{name: getattr(synthesis, name) for name in synthesis.layer_names}}
    points = {}
    for res in synthesis.block_resolutions:  # StyleGAN2
        block = getattr(synthesis, f'b{res}')
        for child in ('conv0', 'conv1', 'torgb'):
            if hasattr(block, child):
                points[f'b{res}.{child}'] = getattr(block, child)
    return points


@contextlib.contextmanager
def capture_layers(G: torch.nn.Module, names: Optional[Iterable[str]] = None) -> Iterator[list[LayerRecord]]:
    """Record the outputs of the named layers (all when None) during forward passes in the block."""
    points = capture_points(G)
    wanted = list(points) if names is None else list(names)
    unknown = [n for n in wanted if n not in points]
    if unknown:
        raise ValueError(f'unknown layer name(s) {unknown}; available: {list(points)}')
    records: list[LayerRecord] = []
    handles = []
    try:
        for name in wanted:
            def hook(module, inputs, output, name=name):
                records.append(LayerRecord(name, output.detach()))
            handles.append(points[name].register_forward_hook(hook))
        yield records
    finally:
        for handle in handles:
            handle.remove()
