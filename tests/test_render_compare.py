"""Renderer compare mode (A | B, split, difference) and its diagnostics, without GL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from net_helpers import make_generator
from pickle_fixtures import write_published

from renderer.live.render import Renderer
from renderer.live.render_args import RenderArgs
from renderer.media.compose import difference_view, resize_like, split_view


@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp('nets')
    return dict(t=str(write_published(root / 't.pkl', make_generator('stylegan3-t', 64, seed=1))),
                t2=str(write_published(root / 't2.pkl', make_generator('stylegan3-t', 64, seed=2))),
                sg2=str(write_published(root / 'sg2.pkl', make_generator('stylegan2', 32, seed=3))))


@pytest.fixture(scope='module')
def renderer():
    return Renderer()


def render(renderer, **kwargs):
    return renderer.render(RenderArgs(device='cpu', **kwargs))


def ok(result):
    assert result.error is None, result.error
    return result.image.astype(int)


def test_split_and_difference_views():
    a, b = torch.zeros(3, 4, 8), torch.full((3, 4, 8), 0.5)
    split = split_view(a, b, 0.25)
    assert torch.equal(split[:, :, :2], a[:, :, :2]) and (split[:, :, 2] == 1).all()
    assert torch.equal(split[:, :, 3:], b[:, :, 3:])
    assert torch.equal(difference_view(a, b, 2.0), torch.zeros(3, 4, 8))          # |0 - 0.5| * 2 - 1 = 0
    assert torch.equal(difference_view(a, a), torch.full((3, 4, 8), -1.0))        # equal -> black
    with pytest.raises(ValueError, match='split'):
        split_view(a, b, 1.5)
    small = torch.rand(3, 2, 4)
    assert resize_like(small, 2, 4) is small and resize_like(small, 4, 8).shape == (3, 4, 8)


def test_compare_side_by_side_equals_the_two_renders(renderer, networks):
    a = ok(render(renderer, network=networks['t'], seed=4))
    b = ok(render(renderer, network=networks['sg2'], seed=4))
    both = render(renderer, network=networks['t'], compare_network=networks['sg2'], seed=4)
    image = ok(both)
    assert image.shape == (64, 64 + 4 + 32, 3)
    np.testing.assert_array_equal(image[:, :64], a)
    np.testing.assert_array_equal(image[16:48, 68:], b)   # B centred vertically
    assert both.b.network.architecture == 'stylegan2' and both.a.network.architecture == 'stylegan3'
    assert both.a.timings['synthesis'] > 0 and both.b.timings['synthesis'] > 0


def test_compare_same_network_diff_is_black(renderer, networks):
    image = ok(render(renderer, network=networks['t'], compare_network=networks['t'], compare_view='diff', seed=1))
    assert image.max() == 0
    other = ok(render(renderer, network=networks['t'], compare_network=networks['t2'], compare_view='diff', seed=1))
    assert other.mean() > 5


def test_compare_translation_moves_both_stylegan3_networks(renderer, networks):
    """The shared motion: a whole-pixel input translation shifts A and B alike."""
    base = ok(render(renderer, network=networks['t'], compare_network=networks['t2'], seed=2))
    moved = ok(render(renderer, network=networks['t'], compare_network=networks['t2'], seed=2,
                      translate=(8 / 64, 0.0)))
    for lo in (0, 68):
        shifted = np.abs(moved[:, lo + 8:lo + 64] - base[:, lo:lo + 56]).mean()      # content moved right by 8 px
        unshifted = np.abs(moved[:, lo + 8:lo + 64] - base[:, lo + 8:lo + 64]).mean()
        assert shifted < 1.5 and unshifted > 4 * shifted, (lo, shifted, unshifted)


def test_compare_errors_name_network_b(renderer, networks, tmp_path):
    missing = str(tmp_path / 'nope.pkl')
    result = render(renderer, network=networks['t'], compare_network=missing)
    assert result.error.startswith(f'network B ({missing})') and result.image is None
    assert result.a.network.architecture == 'stylegan3'   # A itself loaded fine.
    bad_view = render(renderer, network=networks['t'], compare_network=networks['t'], compare_view='overlay')
    assert 'compare view' in bad_view.error


def test_b_without_the_layer_shows_its_output(renderer, networks):
    result = render(renderer, network=networks['t'], compare_network=networks['sg2'], layer='L2_36_128')
    assert result.error is None, result.error
    assert 'no layer L2_36_128' in result.b.notes[0]


def test_diagnostics_validate_their_arguments(renderer, networks):
    for kwargs, message in [(dict(diagnostic='fancy'), 'unknown diagnostic'),
                            (dict(diagnostic='average', average_samples=0), 'average samples'),
                            (dict(diagnostic='average', average_sigma=float('nan')), 'perturbation size'),
                            (dict(diagnostic='slice', slice_frames=1), 'slice frames'),
                            (dict(diagnostic='slice', slice_axis='diagonal'), 'slice axis'),
                            (dict(diagnostic='slice', slice_pos=2.0), 'slice position'),
                            (dict(diagnostic='slice', slice_motion='zoom'), 'slice motion'),
                            (dict(diagnostic='eq_error'), 'needs an input transform'),
                            (dict(diagnostic='average', w=tuple([0.0] * 64)), 'clear the loaded w')]:
        result = render(renderer, network=networks['t'], **kwargs)
        assert result.error is not None and message in result.error, (kwargs, result.error)
    result = render(renderer, network=networks['sg2'], diagnostic='slice', slice_motion='translate')
    assert 'input transform' in result.error


def test_diagnostic_views_have_documented_sizes(renderer, networks):
    average = ok(render(renderer, network=networks['t'], diagnostic='average', average_samples=3))
    assert average.shape == (64, 64 + 4 + 64, 3)
    row = ok(render(renderer, network=networks['t'], diagnostic='slice', slice_frames=10))
    assert row.shape == (64, 64 + 4 + 64, 3)            # middle frame | [10 frames x 64] slice (top-aligned)
    column = ok(render(renderer, network=networks['t'], diagnostic='slice', slice_frames=10, slice_axis='column'))
    assert column.shape == (64, 64 + 4 + 10, 3)         # middle frame | [64 x 10 frames] slice
    eq = render(renderer, network=networks['t'], diagnostic='eq_error', translate=(0.3 / 64, 0.0))
    assert ok(eq).shape == (64, 3 * 64 + 2 * 4, 3) and np.isfinite(eq.a.eq_psnr_db)


def test_eq_measure_reports_psnr_for_each_network(renderer, networks):
    identity = render(renderer, network=networks['t'], eq_measure=True)
    assert identity.a.eq_psnr_db == float('inf')
    both = render(renderer, network=networks['t'], compare_network=networks['t2'], eq_measure=True,
                  translate=(3 / 64, 0.0))
    assert both.a.eq_psnr_db > 30 and both.b.eq_psnr_db > 30
    sg2 = render(renderer, network=networks['t'], compare_network=networks['sg2'], eq_measure=True,
                 translate=(3 / 64, 0.0))
    assert sg2.b.eq_psnr_db is None   # StyleGAN2 has no input transform to measure.


def test_spectrum_plot_data(renderer, networks):
    result = render(renderer, network=networks['t'], spectrum_plot=True)
    assert result.spectrum_db.shape == (64, 64) and result.spectrum_db.dtype == np.float32
    assert result.spectrum_freqs[0] == 0 and result.spectrum_freqs[-1] == pytest.approx(0.5)
    assert result.spectrum_profile_db.shape == result.spectrum_freqs.shape
    layer = render(renderer, network=networks['t'], spectrum_plot=True, layer='input')
    assert layer.spectrum_db.shape[0] == layer.a.layers[0].shape[2]


def test_eq_measure_out_of_view_keeps_the_image(renderer, networks):
    result = render(renderer, network=networks['t'], eq_measure=True, translate=(1.5, 0.0))
    assert result.error is None and result.image is not None
    assert result.a.eq_psnr_db is None and 'cannot measure the PSNR' in result.a.notes[0]


def test_eq_measure_reuses_the_shown_render_and_matches_the_library(renderer, networks):
    """The readout compares the image it shows; on CPU (float32) that equals a fresh comparison."""
    from renderer.diagnostics.equivariance import compare_transform
    from renderer.generation import load_generator, ws_from_seeds
    from renderer.signal.transforms import image_transform
    result = render(renderer, network=networks['t'], seed=5, eq_measure=True, translate=(0.3 / 64, 0.1), rotate=20)
    G = load_generator(networks['t'])
    expected = compare_transform(G, ws_from_seeds(G, [5]), image_transform((0.3 / 64, 0.1), 20)).psnr_db
    assert result.a.eq_psnr_db == pytest.approx(expected, abs=1e-3)
