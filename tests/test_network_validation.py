"""Bad constructor arguments and inputs raise errors that name the problem; float64 copies compute in float64."""

from __future__ import annotations

import copy

import pytest
import torch
from net_helpers import make_generator
from pickle_fixtures import small_generator

from renderer.networks import stylegan2, stylegan3


@pytest.mark.parametrize('cls', [stylegan3.Generator, stylegan2.Generator])
def test_unknown_keyword_argument_names_it(cls):
    with pytest.raises(TypeError, match='bogus_option'):
        cls(32, 0, 32, 32, 3, channel_base=1024, bogus_option=1)


def test_unknown_mapping_keyword_names_it():
    with pytest.raises(TypeError, match='bogus_map'):
        stylegan3.Generator(32, 0, 32, 32, 3, channel_base=1024, mapping_kwargs=dict(bogus_map=1))


def test_stylegan2_resolution_must_be_power_of_two():
    with pytest.raises(ValueError, match='img_resolution'):
        stylegan2.Generator(32, 0, 32, 48, 3)


def test_stylegan2_rejects_other_architectures():
    with pytest.raises(ValueError, match='resnet'):
        stylegan2.Generator(32, 0, 32, 32, 3, architecture='resnet')


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan2'])
def test_wrong_input_shapes(arch):
    G = make_generator(arch, 32)
    with pytest.raises(ValueError, match='z must have shape'):
        G(torch.randn([1, G.z_dim + 1]), None)
    with pytest.raises(ValueError, match='ws must have shape'):
        G.synthesis(torch.randn([1, G.num_ws - 1, G.w_dim]))


def test_conditional_network_needs_label():
    G = make_generator('stylegan3-t', 32, c_dim=3)
    with pytest.raises(ValueError, match='c must have shape'):
        G(torch.randn([1, G.z_dim]), None)


def test_layer_rejects_wrong_input_size():
    G = make_generator('stylegan3-t', 32)
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    with pytest.raises(ValueError, match='expected input'):
        layer(torch.randn([1, layer.in_channels, 5, 5]), torch.randn([1, G.w_dim]))


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan3-r', 'stylegan2'])
def test_a_float64_copy_computes_in_float64(arch):
    """A float64 copy is a reference for the float32 network: same function, float64 throughout."""
    G = small_generator(arch, seed=4)
    G64 = copy.deepcopy(G).double()
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img32, img64 = G(z, None), G64(z.double(), None)
    assert img32.dtype == torch.float32 and img64.dtype == torch.float64
    torch.testing.assert_close(img32.double(), img64, rtol=0, atol=1e-4 * img64.abs().max().item())
    assert not torch.equal(img32.double(), img64)   # really computed in another precision
