"""Animation paths (renderer/motion.py): interpolation against analytic references, transform
sequences, batching of render_frames, and side_by_side composition.

Also home of the small fake generators (exact, analytic outputs) used by test_sticking.py.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
from net_helpers import make_generator

from renderer.generation import synthesize_images, ws_from_seeds
from renderer.media.compose import GAP_VALUE, side_by_side
from renderer.media.progress import ProgressBar
from renderer.motion import (
    Animation,
    interpolate_ws,
    latent_animation,
    render_frames,
    rotation_animation,
    translation_animation,
    truncation_animation,
)
from renderer.signal.transforms import image_transform

# ----------------------------------------------------------------------------
# Fake generators with the network interface and exactly known outputs.

class _FakeMapping(torch.nn.Module):
    """w = z (identity), broadcast to num_ws, truncated towards w_avg like the real mapping."""

    def __init__(self, w_dim: int, num_ws: int):
        super().__init__()
        self.num_ws = num_ws
        self.register_buffer('w_avg', torch.zeros(w_dim))

    def forward(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        ws = z.float().unsqueeze(1).repeat(1, self.num_ws, 1)
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        ws[:, :cutoff] = self.w_avg + truncation_psi * (ws[:, :cutoff] - self.w_avg)
        return ws


class _FakeInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))


class _FakeSynthesis(torch.nn.Module):
    def __init__(self, render: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.input = _FakeInput()
        self.render = render
        self.calls: list[int] = []   # Batch size of each call.

    def forward(self, ws, noise_mode='const', force_fp32=False):
        self.calls.append(len(ws))
        return self.render(ws, self.input.transform)


class FakeGenerator(torch.nn.Module):
    """Generator interface around render(ws, transform) -> [N, C, H, W]; mapping w = z."""

    def __init__(self, render, res: int = 16, channels: int = 3, w_dim: int = 4, num_ws: int = 2,
                 architecture: str = 'stylegan3'):
        super().__init__()
        self.z_dim = self.w_dim = w_dim
        self.c_dim = 0
        self.num_ws, self.img_resolution, self.img_channels = num_ws, res, channels
        self.architecture = architecture
        self.mapping = _FakeMapping(w_dim, num_ws)
        self.synthesis = _FakeSynthesis(render)


def make_pattern(res: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn([channels, res, res], generator=torch.Generator().manual_seed(seed))


def shift_generator(pattern: torch.Tensor, stuck: bool = False, architecture: str = 'stylegan3') -> FakeGenerator:
    """Output = pattern circularly shifted by the input transform's translation in whole pixels
    (perfectly equivariant); stuck=True ignores the transform (perfectly stuck)."""
    res = pattern.shape[-1]

    def render(ws, transform):
        # transform = inv(content matrix), so the content moves by -transform[:2, 2] image widths.
        sx, sy = [0, 0] if stuck else [int(round(-transform[i, 2].item() * res)) for i in (0, 1)]
        return torch.roll(pattern, shifts=(sy, sx), dims=(1, 2)).expand(len(ws), -1, -1, -1).clone()
    return FakeGenerator(render, res, pattern.shape[0], architecture=architecture)


def value_generator() -> FakeGenerator:
    """Every pixel of image i is ws[i, 0, 0] (shows which frame was rendered where)."""
    return FakeGenerator(lambda ws, transform: ws[:, 0, 0].reshape(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone(), res=8)


# ----------------------------------------------------------------------------
# interpolate_ws.

def random_keys(k: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn([k, 3, 6], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize('kind', ['linear', 'slerp', 'cubic'])
@pytest.mark.parametrize('loop', [True, False])
def test_keyframes_exact_and_frame_counts(kind, loop):
    keys, n = random_keys(), 7
    out = interpolate_ws(keys, n, kind, loop)
    assert out.shape == ((5 * n if loop else 4 * n + 1), 3, 6)
    assert out.dtype == keys.dtype
    for k in range(5):
        assert torch.equal(out[k * n], keys[k])
    if not loop:
        assert torch.equal(out[-1], keys[-1])


def test_grid_dims_and_dtype_kept():
    keys = torch.randn([3, 2, 4, 5, 8])       # K, grid rows, grid cols, num_ws, w_dim
    out = interpolate_ws(keys, 4, 'cubic')
    assert out.shape == (12, 2, 4, 5, 8) and out.dtype == torch.float32
    assert torch.equal(out[4], keys[1])


def test_single_key():
    keys = random_keys(1)
    assert torch.equal(interpolate_ws(keys, 3, 'cubic', loop=False), keys)
    assert torch.equal(interpolate_ws(keys, 3, 'slerp', loop=True), keys.expand(3, -1, -1))


def test_linear_midpoint():
    keys = random_keys(3)
    out = interpolate_ws(keys, 2, 'linear', loop=True)
    torch.testing.assert_close(out[1], (keys[0] + keys[1]) / 2, rtol=0, atol=1e-14)
    torch.testing.assert_close(out[5], (keys[2] + keys[0]) / 2, rtol=0, atol=1e-14)   # back to key 0


def test_slerp_great_circle():
    rng = np.random.default_rng(1)
    p = rng.standard_normal(16)
    q = rng.standard_normal(16)
    q *= np.linalg.norm(p) / np.linalg.norm(q)                # equal norms
    n = 10
    out = interpolate_ws(torch.tensor(np.stack([p, q]))[:, None], n, 'slerp', loop=False)[:, 0].numpy()
    r = np.linalg.norm(p)
    e1 = p / r
    e2 = q - (q @ e1) * e1
    e2 /= np.linalg.norm(e2)
    theta = np.arccos(np.clip(p @ q / r ** 2, -1, 1))
    for f in range(n + 1):
        u = f / n
        expected = r * (np.cos(u * theta) * e1 + np.sin(u * theta) * e2)
        np.testing.assert_allclose(out[f], expected, rtol=0, atol=1e-12)
        assert abs(np.linalg.norm(out[f]) - r) < 1e-12


def test_slerp_parallel_vectors():
    p = torch.randn(1, 1, 32, dtype=torch.float64)
    same = interpolate_ws(torch.cat([p, p]), 4, 'slerp', loop=False)
    assert torch.isfinite(same).all()
    torch.testing.assert_close(same, p.expand(5, -1, -1), rtol=0, atol=1e-14)
    scaled = interpolate_ws(torch.cat([p, 3 * p]), 4, 'slerp', loop=False)    # angle 0, different norms
    torch.testing.assert_close(scaled[2], 2 * p[0], rtol=0, atol=1e-12)
    nearly = interpolate_ws(torch.cat([p, p + 1e-9]), 4, 'slerp', loop=False)
    torch.testing.assert_close(nearly[2], p[0] + 0.5e-9, rtol=0, atol=1e-12)


def _derivative_at_start(a, b, c, d):
    """Exact derivative at the first of four equally spaced samples of a cubic (unit spacing)."""
    return (-11 * a + 18 * b - 9 * c + 2 * d) / 6


def test_cubic_loop_seamless_and_c1():
    keys, n = random_keys(4), 6
    out = interpolate_ws(keys, n, 'cubic', loop=True)
    num_frames = len(out)
    # The path is periodic: interpolating the rotated keys gives the frames shifted by one
    # transition, so "frame F" (frame F - n of the rotated path) equals frame 0.
    rotated = interpolate_ws(torch.roll(keys, -1, dims=0), n, 'cubic', loop=True)
    torch.testing.assert_close(rotated, torch.roll(out, -n, dims=0), rtol=0, atol=1e-12)
    torch.testing.assert_close(rotated[num_frames - n], out[0], rtol=0, atol=1e-12)
    # C1 across the seam: the one-sided derivatives of the last and first segments (each a cubic
    # polynomial, so 4 samples give them exactly) agree, and equal the Catmull-Rom tangent.
    after = _derivative_at_start(out[0], out[1], out[2], out[3])
    before = -_derivative_at_start(out[0], out[-1], out[-2], out[-3])
    torch.testing.assert_close(after, before, rtol=0, atol=1e-10)
    torch.testing.assert_close(after, (keys[1] - keys[-1]) / 2 / n, rtol=0, atol=1e-10)
    # Every interior key is C1 too.
    for k in range(1, 4):
        f = k * n
        after = _derivative_at_start(out[f], out[f + 1], out[f + 2], out[f + 3])
        before = -_derivative_at_start(out[f], out[f - 1], out[f - 2], out[f - 3])
        torch.testing.assert_close(after, before, rtol=0, atol=1e-10)


def test_open_cubic_has_no_seam():
    """The same seam check fails for loop=False: its end does not join its start."""
    keys, n = random_keys(4), 6
    out = interpolate_ws(keys, n, 'cubic', loop=False)
    assert not torch.allclose(out[-1], out[0])
    after = _derivative_at_start(out[0], out[1], out[2], out[3])
    torch.testing.assert_close(after, (keys[1] - keys[0]) / 2 / n, rtol=0, atol=1e-10)   # repeated end key


@pytest.mark.parametrize('n, kind, keys, match', [
    (0, 'cubic', random_keys(), 'frames_per_transition'),
    (1.5, 'cubic', random_keys(), 'frames_per_transition'),
    (4, 'spline', random_keys(), 'unknown interpolation kind'),
    (4, 'linear', torch.zeros(0, 3, 6), 'key_ws'),
    (4, 'linear', torch.zeros(5), 'key_ws'),
])
def test_interpolate_validation(n, kind, keys, match):
    with pytest.raises(ValueError, match=match):
        interpolate_ws(keys, n, kind)


# ----------------------------------------------------------------------------
# Animations.

def test_latent_animation_passes_through_seeds():
    G = shift_generator(make_pattern())
    animation = latent_animation(G, [3, 5, 8], 4, 'cubic', loop=False)
    assert animation.matrices is None and len(animation) == 9
    keys = ws_from_seeds(G, [3, 5, 8])
    for k in range(3):
        assert torch.equal(animation.ws[4 * k], keys[k])
    with pytest.raises(ValueError, match='at least two seeds'):
        latent_animation(G, [3], 4, loop=False)
    with pytest.raises(ValueError, match='at least one seed'):
        latent_animation(G, [], 4)


def test_translation_and_rotation_matrices():
    ws = torch.randn(2, 4)
    animation = translation_animation(ws, 5, step=(0.01, -0.02), start=(0.1, 0.2))
    assert animation.ws.shape == (5, 2, 4) and all(torch.equal(w, ws) for w in animation.ws)
    for k, m in enumerate(animation.matrices):
        np.testing.assert_allclose(m, image_transform(translate=(0.1 + 0.01 * k, 0.2 - 0.02 * k)), atol=1e-15)
        np.testing.assert_allclose(m @ [0, 0, 1], [0.1 + 0.01 * k, 0.2 - 0.02 * k, 1], atol=1e-15)
    rotation = rotation_animation(ws[None], 4, step_deg=30, start_deg=-15)
    for k, m in enumerate(rotation.matrices):
        np.testing.assert_allclose(m, image_transform(rotate_deg=-15 + 30 * k), atol=1e-15)
    per_frame = torch.randn(3, 2, 4)
    assert torch.equal(rotation_animation(per_frame, 3, 10).ws, per_frame)
    with pytest.raises(ValueError, match='ws must be'):
        translation_animation(per_frame, 4, (0, 0))
    with pytest.raises(ValueError, match='num_frames'):
        rotation_animation(ws, 0, 10)


def test_truncation_animation():
    G = make_generator('stylegan3-t', 32)
    animation = truncation_animation(G, 7, [0.0, 0.5, 1.0])
    w = ws_from_seeds(G, [7])[0]
    w_avg = G.mapping.w_avg.expand_as(w)
    torch.testing.assert_close(animation.ws[0], w_avg)
    torch.testing.assert_close(animation.ws[1], (w_avg + w) / 2, rtol=0, atol=1e-5)
    assert torch.equal(animation.ws[2], w)
    with pytest.raises(ValueError, match='psi'):
        truncation_animation(G, 7, [float('nan')])


def test_animation_validation_and_frame():
    ws = torch.randn(3, 2, 4)
    animation = Animation(ws, [np.eye(3)] * 3)
    w, m = animation.frame(-1)
    assert torch.equal(w, ws[2:]) and m.shape == (3, 3)
    assert Animation(ws).frame(1)[1] is None
    with pytest.raises(IndexError):
        animation.frame(3)
    with pytest.raises(ValueError, match='matrices'):
        Animation(ws, [np.eye(3)] * 2)
    with pytest.raises(ValueError, match='3x3'):
        Animation(ws, [np.eye(2)] * 3)
    with pytest.raises(ValueError, match='ws must be'):
        Animation(torch.randn(2, 4))


# ----------------------------------------------------------------------------
# render_frames.

def test_render_frames_batches_in_order():
    G = value_generator()
    ws = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1).expand(10, 2, 4).clone()
    bar = ProgressBar('test', 10, enabled=False)
    batches = list(render_frames(G, Animation(ws), batch=4, progress=bar))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches)[:, 0, 0, 0], torch.arange(10, dtype=torch.float32))
    assert bar.done == 10


def test_render_frames_groups_equal_matrices():
    pattern = make_pattern()
    G = shift_generator(pattern)
    a, b = image_transform(translate=(1 / 16, 0)), image_transform(translate=(0, 2 / 16))
    animation = Animation(torch.zeros(6, 2, 4), [a, a, b, b, b, a])
    frames = torch.cat(list(render_frames(G, animation, batch=8)))
    assert G.synthesis.calls == [2, 3, 1]
    shifted_a, shifted_b = torch.roll(pattern, 1, dims=2), torch.roll(pattern, 2, dims=1)
    for frame, expected in zip(frames, [shifted_a, shifted_a, shifted_b, shifted_b, shifted_b, shifted_a]):
        assert torch.equal(frame, expected)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))     # restored


def test_render_frames_real_network_matches_synthesis():
    G = make_generator('stylegan3-t', 32)
    animation = translation_animation(ws_from_seeds(G, [1]), 3, (2 / 32, 0))
    frames = torch.cat(list(render_frames(G, animation)))
    assert frames.shape == (3, 3, 32, 32) and frames.dtype == torch.float32
    for k in range(3):
        torch.testing.assert_close(frames[k:k + 1], synthesize_images(G, animation.ws[k:k + 1], animation.matrices[k]))


def test_render_frames_validation():
    animation = translation_animation(torch.zeros(2, 4), 2, (0.1, 0))
    with pytest.raises(ValueError, match='input transform'):
        next(render_frames(shift_generator(make_pattern(), architecture='stylegan2'), animation))
    with pytest.raises(ValueError, match='batch'):
        next(render_frames(value_generator(), Animation(torch.zeros(2, 2, 4)), batch=0))


# ----------------------------------------------------------------------------
# side_by_side.

def test_side_by_side_layout():
    a = torch.full([3, 4, 5], 0.5)
    b = torch.full([1, 6, 2], -0.5)
    out = side_by_side([a, b], gap=3)
    assert out.shape == (3, 6, 5 + 3 + 2) and out.dtype == torch.float32
    assert torch.equal(out[:, 1:5, :5], a)                    # shorter image centred vertically
    assert (out[:, [0, 5], :5] == GAP_VALUE).all() and (out[:, :, 5:8] == GAP_VALUE).all()
    assert torch.equal(out[:, :, 8:], b.expand(3, -1, -1))    # grey replicated to RGB
    tall = side_by_side([a, b], gap=1, vertical=True, fill=-1)
    assert tall.shape == (3, 4 + 1 + 6, 5)
    assert torch.equal(tall[:, :4], a) and torch.equal(tall[:, 5:, 1:3], b.expand(3, -1, -1))
    assert (tall[:, 4] == -1).all() and (tall[:, 5:, [0, 3, 4]] == -1).all()


def test_side_by_side_validation():
    with pytest.raises(ValueError, match='at least one'):
        side_by_side([])
    with pytest.raises(ValueError, match='channels'):
        side_by_side([torch.zeros(3, 2, 2), torch.zeros(2, 2, 2)])
    with pytest.raises(ValueError, match=r'\[C, H, W\]'):
        side_by_side([torch.zeros(2, 2)])
