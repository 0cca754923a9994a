"""Layer capture: every layer's output from one forward pass, or a chosen one."""

from __future__ import annotations

import pytest
import torch
from net_helpers import make_generator

from renderer.networks import capture_layers, capture_points


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan2'])
def test_captures_every_layer_in_one_pass(arch):
    G = make_generator(arch, 32 if arch == 'stylegan2' else 64)
    z = torch.randn([2, G.z_dim])
    calls = []
    handle = G.synthesis.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad(), capture_layers(G) as records:
            img = G(z, None)
    finally:
        handle.remove()
    assert len(calls) == 1
    assert [r.name for r in records] == list(capture_points(G))
    for r in records:
        assert r.shape[0] == 2 and len(r.shape) == 4 and r.dtype == torch.float32
    if arch == 'stylegan3-t':  # the ToRGB layer's output, times output_scale, is the image
        torch.testing.assert_close(records[-1].tensor * G.synthesis.output_scale, img)


def test_stylegan3_layer_shapes_follow_the_schedule():
    G = make_generator('stylegan3-t', 64)
    with torch.no_grad(), capture_layers(G) as records:
        G(torch.randn([1, G.z_dim]), None)
    by_name = {r.name: r for r in records}
    inp = G.synthesis.input
    assert by_name['input'].shape == [1, inp.channels, int(inp.size[1]), int(inp.size[0])]
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        assert by_name[name].shape == [1, layer.out_channels, int(layer.out_size[1]), int(layer.out_size[0])]


def test_chosen_layer_only_and_hooks_removed():
    G = make_generator('stylegan3-t', 64)
    name = G.synthesis.layer_names[3]
    with torch.no_grad(), capture_layers(G, [name]) as records:
        G(torch.randn([1, G.z_dim]), None)
    assert [r.name for r in records] == [name]
    layer = getattr(G.synthesis, name)
    assert len(layer._forward_hooks) == 0
    with pytest.raises(RuntimeError):
        with capture_layers(G, [name]):
            raise RuntimeError('boom')
    assert len(layer._forward_hooks) == 0


def test_unknown_layer_name_is_rejected():
    G = make_generator('stylegan3-t', 64)
    with pytest.raises(ValueError, match='L99'):
        with capture_layers(G, ['L99']):
            pass
