"""Properties of random-weight StyleGAN2 networks: noise modes, truncation, batching, structure."""

from __future__ import annotations

import copy

import pytest
import torch
from net_helpers import make_generator, psnr

RES = 32


@pytest.fixture(scope='module')
def G():
    return make_generator('stylegan2', RES, seed=11)


def z_batch(G, n, seed):
    return torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))


def test_num_ws_and_output_shape(G):
    assert G.num_ws == 2 * 5 - 2  # 2 * log2(res) - 2
    img = G(z_batch(G, 2, 0), None)
    assert img.shape == (2, 3, RES, RES) and torch.isfinite(img).all()


def test_noise_modes(G):
    z = z_batch(G, 1, 1)
    with torch.no_grad():
        const_a, const_b = G(z, None, noise_mode='const'), G(z, None, noise_mode='const')
        torch.manual_seed(0)
        rand_a = G(z, None, noise_mode='random')
        rand_b = G(z, None, noise_mode='random')
        none = G(z, None, noise_mode='none')
    torch.testing.assert_close(const_a, const_b, rtol=0, atol=0)
    assert psnr(rand_a, rand_b) < 60
    assert psnr(none, const_a) < 60
    with pytest.raises(ValueError, match='noise_mode'):
        G(z, None, noise_mode='bogus')


def test_psi_zero_gives_w_avg_image(G):
    # In float64: a batch of 2 and a batch of 1 take different float32 convolution kernels on some CPUs,
    # whose rounding differs by about 1e-5 at these image magnitudes; the identity itself is exact.
    G = copy.deepcopy(G).double()
    with torch.no_grad():
        img = G(z_batch(G, 2, 2).double(), None, truncation_psi=0)
        expected = G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1))
    torch.testing.assert_close(img, expected.expand(2, -1, -1, -1), rtol=0, atol=1e-5)


def test_batch_equals_samples_one_by_one(G):
    z = z_batch(G, 3, 3)
    with torch.no_grad():
        batch = G(z, None)
        single = torch.cat([G(z[i:i + 1], None) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-4)


def test_ws_are_shared_between_torgb_and_next_conv0(G):
    """torgb of block r uses the same w as conv0 of block 2r (spec section 5)."""
    ws = G.mapping(z_batch(G, 1, 4), None)
    with torch.no_grad():
        ref = G.synthesis(ws)
        changed = ws.clone()
        changed[:, 2] += 1  # b4.torgb and b8.conv0
        moved = G.synthesis(changed)
        changed_last = ws.clone()
        changed_last[:, -1] += 1  # only the last torgb
        moved_last = G.synthesis(changed_last)
    assert psnr(ref, moved) < 60 and psnr(ref, moved_last) < 60


def test_upsampling_conv_matches_explicit_definition(G):
    """conv0 = transposed stride-2 conv with the modulated kernel, then the [1,3,3,1] FIR (gain 4, pad 1)."""
    import torch.nn.functional as F

    from renderer.networks.modulation import modulated_conv
    from renderer.networks.stylegan2 import modulated_conv2d
    layer = G.synthesis.b8.conv0
    x = torch.randn([1, layer.in_channels, 4, 4], dtype=torch.float64)
    styles = torch.randn([1, layer.in_channels], dtype=torch.float64)
    weight = layer.weight.double()
    w = weight * styles.reshape(1, -1, 1, 1)
    w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
    y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)  # [1, O, 9, 9]
    f = layer.resample_filter.double()
    y = F.pad(y, [1, 1, 1, 1])
    c = y.shape[1]
    expected = F.conv2d(y, (f.flip([0, 1]) * 4).expand(c, 1, 4, 4), groups=c)
    got = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f)
    assert got.shape == (1, layer.out_channels, 8, 8)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    del modulated_conv
