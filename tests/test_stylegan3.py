"""Properties of random-weight StyleGAN3 networks: equivariance, truncation, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from net_helpers import make_generator, psnr, rotation_matrix, translation_matrix

# Random-weight networks have a small output range; PSNR (I_max = 2) is taken on images
# scaled to a standard deviation of 0.5 so that the thresholds measure relative error.


def normalized_psnr(a, b, ref):
    scale = 0.5 / ref.std()
    return psnr(a * scale, b * scale)

RES = 64


@pytest.fixture(scope='module')
def G_t():
    return make_generator('stylegan3-t', RES, seed=1)


@pytest.fixture(scope='module')
def G_r():
    return make_generator('stylegan3-r', RES, seed=2)


def render(G, ws, transform=None):
    """Synthesis with the input transform temporarily set (the inverse of the output transform)."""
    saved = G.synthesis.input.transform.clone()
    try:
        if transform is not None:
            G.synthesis.input.transform.copy_(transform)
        with torch.no_grad():
            return G.synthesis(ws)
    finally:
        G.synthesis.input.transform.copy_(saved)


@pytest.mark.parametrize('dx,dy', [(1, 0), (0, 1), (-2, 3)])
def test_translation_by_whole_pixels_shifts_image(G_t, dx, dy):
    ws = G_t.mapping(torch.randn([2, G_t.z_dim], generator=torch.Generator().manual_seed(5)), None)
    ref = render(G_t, ws)
    # Output moved by (dx, dy) pixels <=> input transform translated by -(dx, dy) / RES.
    out = render(G_t, ws, translation_matrix(-dx / RES, -dy / RES))
    h, w = ref.shape[2:]
    moved = out[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
    orig = ref[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    matched = normalized_psnr(moved, orig, ref)
    assert matched > 50
    assert normalized_psnr(out, ref, ref) < matched - 10  # the image did move


def test_rotation_by_90_degrees_rotates_image(G_r):
    ws = G_r.mapping(torch.randn([2, G_r.z_dim], generator=torch.Generator().manual_seed(6)), None)
    ref = render(G_r, ws)
    out = render(G_r, ws, torch.linalg.inv(rotation_matrix(np.pi / 2)))
    # y points down in the image, so +90 degrees in image coordinates is clockwise on screen (rot90 k=-1).
    assert normalized_psnr(out, torch.rot90(ref, k=-1, dims=[2, 3]), ref) > 40
    assert normalized_psnr(out, ref, ref) < 30


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan3-r'])
def test_truncation_psi_zero_gives_w_avg_image(arch):
    G = make_generator(arch, RES, seed=3)
    z = torch.randn([3, G.z_dim], generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        img = G(z, None, truncation_psi=0)
        ws_avg = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
        expected = G.synthesis(ws_avg)
    for i in range(3):
        torch.testing.assert_close(img[i:i + 1], expected, rtol=0, atol=1e-5)


def test_truncation_cutoff_only_touches_first_ws(G_t):
    z = torch.randn([2, G_t.z_dim], generator=torch.Generator().manual_seed(8))
    ws = G_t.mapping(z, None)
    ws_cut = G_t.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
    avg = G_t.mapping.w_avg
    torch.testing.assert_close(ws_cut[:, :4], avg + 0.5 * (ws[:, :4] - avg))
    torch.testing.assert_close(ws_cut[:, 4:], ws[:, 4:])


@pytest.mark.parametrize('arch', ['stylegan3-t', 'stylegan3-r'])
def test_batch_equals_samples_one_by_one(arch):
    G = make_generator(arch, RES, seed=4)
    z = torch.randn([3, G.z_dim], generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        batch = G(z, None)
        single = torch.cat([G(z[i:i + 1], None) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-5)


def test_conditional_label_changes_image():
    G = make_generator('stylegan3-t', RES, c_dim=4, seed=5)
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(10))
    c = torch.eye(4)
    with torch.no_grad():
        a, b = G(z, c[:1]), G(z, c[1:2])
    assert a.shape == (1, 3, RES, RES)
    assert psnr(a, b) < 40


def test_layer_schedule_and_attributes(G_t):
    s = G_t.synthesis
    assert G_t.num_ws == s.num_layers + 2 == 16
    first, last = getattr(s, s.layer_names[0]), getattr(s, s.layer_names[-1])
    assert first.in_sampling_rate == 16 and last.out_sampling_rate == RES
    assert last.is_torgb and last.up_filter is None and last.down_filter is None
    for name in s.layer_names:
        layer = getattr(s, name)
        assert layer.tmp_sampling_rate == max(layer.in_sampling_rate, layer.out_sampling_rate) * (
            1 if layer.is_torgb else 2)
    out = G_t(torch.zeros([1, G_t.z_dim]) + 1, None)
    assert out.shape == (1, 3, RES, RES) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_radial_filters_only_in_r_config(G_t, G_r):
    for G, radial in ((G_t, False), (G_r, True)):
        s = G.synthesis
        for name in s.layer_names[:-1]:
            layer = getattr(s, name)
            assert layer.down_filter.ndim == (2 if radial and not layer.is_critically_sampled else 1)
