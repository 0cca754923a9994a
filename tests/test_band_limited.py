"""Band-limited shifts, rotations and pseudo-rotations against analytic patterns (renderer/signal/band_limited.py).

Ground truth: sums of sinusoids below the filters' passband, evaluated in float64 at the
transformed coordinates. PSNR uses I_max = 2 on the valid (mask) pixels only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.signal import band_limited as bl
from renderer.signal.transforms import image_transform

# (fx, fy) in cycles per pixel (all within 0.32 of DC: inside the passband at radius 8) and phase.
WAVES = [(0.10, 0.05, 0.3), (0.25, -0.10, 1.0), (0.05, 0.30, 2.0), (-0.20, 0.25, 0.5)]


def pattern(res: int, matrix: np.ndarray = np.eye(3), waves=WAVES) -> torch.Tensor:
    """[1, 1, res, res] float64: sum of cosines at pixel centres, content moved by `matrix` (image units)."""
    centres = (torch.arange(res, dtype=torch.float64) + 0.5) / res - 0.5
    gy, gx = torch.meshgrid(centres, centres, indexing='ij')
    inv = np.linalg.inv(matrix)
    sx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    img = sum(torch.cos(2 * math.pi * res * (fx * sx + fy * sy) + phase) for fx, fy, phase in waves) / len(waves)
    return img[None, None]


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    mse = ((a.double() - b.double()).square() * mask).sum() / (mask.sum() * a.shape[0] * a.shape[1])
    return float('inf') if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse.item())


# ----------------------------------------------------------------------------------------------------
# Shifts.

def test_integer_shift_moves_content_and_masks_the_rest():
    img = torch.randn([2, 3, 10, 12], generator=torch.Generator().manual_seed(0))
    out, mask = bl.integer_shift(img, (3, -2))   # right 3, up 2
    expected = torch.zeros_like(img)
    expected[..., 0:8, 3:12] = img[..., 2:10, 0:9]
    assert torch.equal(out, expected)
    assert mask.shape == (10, 12) and mask.dtype == torch.float32
    assert mask.sum() == 8 * 9 and mask[0:8, 3:12].min() == 1


def test_integer_shift_out_of_view_masks_everything():
    out, mask = bl.integer_shift(torch.ones([1, 1, 8, 8]), (8, 0))
    assert mask.sum() == 0 and out.abs().sum() == 0


def test_integer_shift_rejects_fractions():
    with pytest.raises(ValueError, match='whole pixels'):
        bl.integer_shift(torch.ones([1, 1, 8, 8]), (0.5, 0))


@pytest.mark.parametrize('shift', [(0.3, -2.7), (5.5, 0.25), (-0.5, 7.9)])
def test_fractional_shift_matches_shifted_pattern(shift):
    res = 96
    out, mask = bl.fractional_shift(pattern(res).float(), shift, radius_px=8)
    ideal = pattern(res, image_transform(translate=(shift[0] / res, shift[1] / res)))
    assert masked_psnr(out, ideal, mask) > 60   # measured ~73 dB
    assert mask.mean() > 0.5
    assert (out * (1 - mask)).abs().max() == 0


def test_fractional_shift_by_whole_pixels_is_the_integer_shift():
    img = torch.randn([1, 2, 20, 24], generator=torch.Generator().manual_seed(1))
    out, mask = bl.fractional_shift(img, (3.0, -2.0))
    expected, expected_mask = bl.integer_shift(img, (3, -2))
    assert torch.equal(out, expected) and torch.equal(mask, expected_mask)


def test_fractional_shift_mask_is_the_filter_footprint_and_dc_gain_is_one():
    # Shift 2.5 with radius 8: pixel x uses input pixels x - 2 - 8 ... x - 2 + 7, all inside for 10 <= x <= 34.
    out, mask = bl.fractional_shift(torch.ones([1, 1, 6, 40]), (2.5, 0.0), radius_px=8)
    assert torch.nonzero(mask[0])[:, 0].tolist() == list(range(10, 35))
    assert torch.allclose(out[0, 0][mask > 0], torch.ones([]), atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# Rotations and affine transforms.

@pytest.mark.parametrize('angle', [10.0, 33.0, -60.0, 135.0])
def test_rotation_matches_rotated_pattern(angle):
    res = 128
    out, mask = bl.rotate(pattern(res).float(), angle)
    ideal = pattern(res, image_transform(rotate_deg=angle))
    assert masked_psnr(out, ideal, mask) > 65   # measured 75-81 dB
    assert mask.mean() > 0.4
    assert (out * (1 - mask)).abs().max() == 0


def test_rotation_by_90_degrees_is_rot90_counter_clockwise_on_screen():
    img = pattern(128).float()
    out, mask = bl.rotate(img, 90)
    # image_transform's +90 degrees is counter-clockwise on screen (y down): torch.rot90 with k=1 over (H, W).
    assert masked_psnr(out, torch.rot90(img, k=1, dims=[2, 3]), mask) > 65   # measured ~73 dB
    assert masked_psnr(out, torch.rot90(img, k=-1, dims=[2, 3]), mask) < 20


def test_affine_translation_agrees_with_fractional_shift():
    res, shift = 128, (2.5, -1.25)
    ideal = pattern(res, image_transform(translate=(shift[0] / res, shift[1] / res)))
    moved, mask = bl.affine_transform(pattern(res).float(), image_transform(translate=(shift[0] / res,
                                                                                        shift[1] / res)))
    shifted, shift_mask = bl.fractional_shift(pattern(res).float(), shift)
    assert masked_psnr(moved, ideal, mask) > 55
    assert masked_psnr(moved, shifted, mask * shift_mask) > 55


def test_identity_transform_masks_both_filter_footprints():
    res, radius = 64, 6
    out, mask = bl.affine_transform(pattern(res).float(), np.eye(3), radius_px=radius)
    # Up- and downsampling filters reach `radius` pixels each: the valid square starts 2 * radius in.
    expected = torch.zeros([res, res])
    expected[2 * radius:res - 2 * radius, 2 * radius:res - 2 * radius] = 1
    assert torch.equal(mask, expected)


def test_invalid_input_pixels_spread_by_the_footprint():
    res, radius = 96, 4
    valid = torch.ones([res, res])
    valid[50, 40] = 0
    out, mask = bl.affine_transform(torch.ones([1, 1, res, res]), image_transform(rotate_deg=20), valid, radius)
    rotated = image_transform(rotate_deg=20) @ np.array([(40.5 / res - 0.5), (50.5 / res - 0.5), 1])
    y, x = (int(v) for v in np.floor((rotated[1::-1] + 0.5) * res))  # where the invalid pixel lands
    assert mask[y, x] == 0 and mask[y, x + 3 * radius] == 1
    assert 0 < (1 - mask[y - 2 * radius:y + 2 * radius, x - 2 * radius:x + 2 * radius]).sum() < (4 * radius) ** 2
    assert torch.allclose(out[0, 0][mask > 0], torch.ones([]), atol=1e-3)  # unit DC gain where valid


def test_pseudo_rotation_keeps_content_inside_the_common_band():
    img = pattern(128).float()   # |f| <= 0.32 cycles/pixel: inside S n rot(S) for every angle
    for angle in (33.0, -75.0):
        out, mask = bl.pseudo_rotate(img, angle)
        assert masked_psnr(out, img, mask) > 55   # measured ~68 dB
        assert mask.sum() > 0.1 * 128 ** 2


def test_pseudo_transform_passes_the_band_of_the_ideal_transform():
    """P_M = T_M(T_inv(M)) passes S n A(S) (A: the rotation of content and spectrum), not S n inv(A)(S).

    Plane waves at |f| = 0.54 cycles/pixel, 30 degrees either side of the x axis; rotation by +30
    degrees (counter-clockwise on screen). k1 = (0.468, 0.27): inv(A) k1 = (0.27, 0.468) lies in S, so
    k1 is in S n A(S). k2 = (0.468, -0.27): inv(A) k2 = (0.54, 0) is beyond the stopband (0.557 at
    radius 16: nearly), so k2 is not. The reverse order T_inv(M)(T_M) swaps the roles. Measured gains:
    k1 0.70, k2 0.034.
    """
    res, radius = 192, 16
    k1 = (0.54 * math.cos(math.radians(30)), 0.54 * math.sin(math.radians(30)))
    k2 = (k1[0], -k1[1])
    centres = torch.arange(res, dtype=torch.float64)
    gy, gx = torch.meshgrid(centres, centres, indexing='ij')
    phases = [2 * math.pi * (k[0] * gx + k[1] * gy) for k in (k1, k2)]
    img = torch.stack([f(p) for p in phases for f in (torch.cos, torch.sin)])[None].float()  # cos, sin pairs
    matrix = image_transform(rotate_deg=30)

    def gains(out, mask):  # amplitude of each plane wave (cos, sin pair) averaged over the valid pixels
        amplitude = out[0].reshape(2, 2, res, res).square().sum(dim=1).sqrt()
        return ((amplitude * mask).sum(dim=[1, 2]) / mask.sum()).tolist()

    g1, g2 = gains(*bl.pseudo_transform(img, matrix, radius_px=radius))
    assert g1 > 0.5 and g2 < 0.1
    r1, r2 = gains(*bl.pseudo_transform(img, np.linalg.inv(matrix), radius_px=radius))
    assert r1 < 0.1 and r2 > 0.5


def test_transition_band_of_the_default_radius():
    lo, hi = bl.transition_band(8)
    assert lo == pytest.approx(0.385, abs=0.01) and hi == pytest.approx(0.615, abs=0.01)
    assert bl.resolve_radius(None, 1024) == 8 and bl.resolve_radius(None, 64) == 4 and bl.resolve_radius(None, 16) == 4


def test_float64_images_stay_float64():
    img = pattern(64)
    assert bl.rotate(img, 20)[0].dtype == torch.float64
    assert bl.fractional_shift(img, (0.5, 0.5))[0].dtype == torch.float64


@pytest.mark.parametrize('call, message', [
    (lambda: bl.affine_transform(torch.ones([1, 1, 32, 48]), np.eye(3)), 'square'),
    (lambda: bl.affine_transform(torch.ones([1, 1, 32, 32]), np.diag([1.0, 0.0, 1.0])), 'invertible'),
    (lambda: bl.affine_transform(torch.ones([1, 1, 32, 32]), np.eye(3), radius_px=0), 'radius'),
    (lambda: bl.fractional_shift(torch.ones([1, 1, 32, 32]), (0.5, 0), radius_px=2.5), 'radius'),
    (lambda: bl.fractional_shift(torch.ones([1, 1, 32, 32]), (math.nan, 0)), 'finite'),
    (lambda: bl.rotate(torch.ones([32, 32]), 10), r'\[N, C, H, W\]'),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
