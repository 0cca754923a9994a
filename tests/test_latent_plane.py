"""The 2-D latent plane: grid point (x, y) is seed x + 100 y; between grid points, a bilinear blend of ws."""

from __future__ import annotations

import pytest
import torch
from net_helpers import make_generator

from renderer.errors import RequestError
from renderer.generation import Latents, blended_ws
from renderer.options import MAX_SEED, SEED_ROW_STEP


@pytest.fixture(scope='module')
def G():
    return make_generator('stylegan2', 32, seed=2)


def ws_of(G, seed: int) -> torch.Tensor:
    return Latents().ws(G, [seed]).double()


def test_grid_points_are_seeds(G):
    assert SEED_ROW_STEP == 100
    torch.testing.assert_close(blended_ws(G, 3.0, seed_y=2.0).double(), ws_of(G, 203), rtol=0, atol=0)
    torch.testing.assert_close(blended_ws(G, 7.0).double(), ws_of(G, 7), rtol=0, atol=0)
    wrapped = blended_ws(G, float(MAX_SEED), seed_y=1.0).double()        # (2**32 - 1 + 100) mod 2**32 = 99
    torch.testing.assert_close(wrapped, ws_of(G, 99), rtol=0, atol=0)


def test_between_grid_points_the_blend_is_bilinear(G):
    corners = {(dx, dy): ws_of(G, 3 + dx + (1 + dy) * 100) for dx in (0, 1) for dy in (0, 1)}
    fx, fy = 0.25, 0.75
    expected = ((1 - fx) * (1 - fy) * corners[0, 0] + fx * (1 - fy) * corners[1, 0]
                + (1 - fx) * fy * corners[0, 1] + fx * fy * corners[1, 1])
    torch.testing.assert_close(blended_ws(G, 3 + fx, seed_y=1 + fy).double(), expected, rtol=1e-6, atol=1e-6)
    along_x = (1 - fx) * ws_of(G, 3) + fx * ws_of(G, 4)                  # y = 0: the 1-D blend of seeds
    torch.testing.assert_close(blended_ws(G, 3 + fx).double(), along_x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('seed, seed_y, message', [(1.0, -1.0, 'seed y'), (1.0, float('nan'), 'seed y'),
                                                   (-2.0, 0.0, 'seed'), (float(MAX_SEED) + 0.5, 0.0, 'seed')])
def test_points_off_the_plane_are_refused(G, seed, seed_y, message):
    with pytest.raises(RequestError, match=message):
        blended_ws(G, seed, seed_y=seed_y)
