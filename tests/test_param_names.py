"""Every tensor name and shape of the published 1024x1024 checkpoints, and no other, from kwargs."""

from __future__ import annotations

import ast
import pathlib

import pytest
import torch

from renderer.networks import stylegan2, stylegan3

FIXTURES = pathlib.Path(__file__).resolve().parent / 'fixtures' / 'param-names'   # As published (names, shapes).

CONFIGS = {
    'stylegan3-t': lambda: stylegan3.Generator(512, 0, 512, 1024, 3),
    'stylegan3-r': lambda: stylegan3.Generator(512, 0, 512, 1024, 3, channel_base=65536, channel_max=1024,
                                               conv_kernel=1, use_radial_filters=True),
    'stylegan2': lambda: stylegan2.Generator(512, 0, 512, 1024, 3, mapping_kwargs=dict(num_layers=8)),
}


def read_fixture(name: str) -> tuple[dict[str, tuple[str, list[int]]], int]:
    path = FIXTURES / f'{name}-1024.tsv'
    tensors, total = {}, None
    for line in path.read_text().splitlines():
        if line.startswith('#'):
            total = int(line.split(';')[-1].split()[0])
            continue
        name_, kind, shape = line.split('\t')
        tensors[name_] = (kind, ast.literal_eval(shape))
    return tensors, total


def tensors_of(G: torch.nn.Module) -> dict[str, tuple[str, list[int]]]:
    out = {n: ('param', list(p.shape)) for n, p in G.named_parameters()}
    out.update({n: ('buffer', list(b.shape)) for n, b in G.named_buffers()})
    return out


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_names_and_shapes_match_published(name):
    expected, total = read_fixture(name)
    with torch.device('meta'):
        G = CONFIGS[name]()
    got = tensors_of(G)
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert {n: v for n, v in got.items() if expected[n] != v} == {}
    assert sum(p.numel() for p in G.parameters()) == total
