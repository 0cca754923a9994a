"""The renderer without GL: each RenderArgs field changes the image as it should."""

from __future__ import annotations

import numpy as np
import pytest
from net_helpers import make_generator
from pickle_fixtures import write_published

from renderer.live.render import Renderer
from renderer.live.render_args import RenderArgs


@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    """Small published-format files: an unconditional StyleGAN3-T, a conditional one, a StyleGAN2."""
    root = tmp_path_factory.mktemp('nets')
    paths = {}
    for name, arch, c_dim in [('t', 'stylegan3-t', 0), ('t_cond', 'stylegan3-t', 4), ('sg2', 'stylegan2', 0)]:
        G = make_generator(arch, 64 if arch != 'stylegan2' else 32, c_dim=c_dim, seed=3)
        paths[name] = str(write_published(root / f'{name}.pkl', G))
    return paths


@pytest.fixture(scope='module')
def renderer():
    return Renderer()


def render(renderer, **kwargs):
    result = renderer.render(RenderArgs(**kwargs))
    assert result.error is None, result.error
    return result


def as_float(result):
    return result.image.astype(np.float64)


def test_output_image_and_metadata(renderer, networks):
    r = render(renderer, network=networks['t'])
    assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
    assert r.a.network.architecture == 'stylegan3' and r.a.network.has_input_transform
    assert [layer.name for layer in r.a.layers][0] == 'input' and r.a.layers[-1].shape[1] == 3
    assert r.ws.shape == (r.a.network.num_ws, r.a.network.w_dim)
    assert set(r.impls) == {'bias_act', 'upfirdn2d', 'filtered_lrelu'} and r.device == 'cpu'
    assert r.timings['total'] >= r.a.timings['synthesis'] > 0


def test_deterministic_for_fixed_args(renderer, networks):
    a = render(renderer, network=networks['t'], seed=7)
    b = render(renderer, network=networks['t'], seed=7)
    np.testing.assert_array_equal(a.image, b.image)
    c = render(renderer, network=networks['t'], seed=8)
    assert np.abs(as_float(a) - as_float(c)).mean() > 1


def test_translate_by_whole_pixel_shifts_output(renderer):
    """On the built-in demo network (calibrated to a full-contrast output)."""
    ref = as_float(render(renderer, seed=1))
    moved = as_float(render(renderer, seed=1, translate=(8 / 256, -5 / 256)))
    # Content moves 8 px right and 5 px up.
    overlap_err = np.abs(moved[:-5, 8:] - ref[5:, :-8]).max()
    assert overlap_err <= 2.0  # equal up to uint8 rounding
    assert np.abs(moved - ref).max() > 10 * overlap_err


def test_untransform_undoes_a_fractional_translation(renderer):
    ref = as_float(render(renderer, seed=2))
    moved = as_float(render(renderer, seed=2, translate=(5.5 / 256, 3.25 / 256)))
    back = as_float(render(renderer, seed=2, translate=(5.5 / 256, 3.25 / 256), untransform=True))
    centre = np.s_[32:224, 32:224]
    assert np.abs(back[centre] - ref[centre]).mean() < 0.2 * np.abs(moved[centre] - ref[centre]).mean()


def test_psi_zero_gives_mean_image(renderer, networks):
    a = render(renderer, network=networks['t'], seed=1, truncation_psi=0)
    b = render(renderer, network=networks['t'], seed=99, truncation_psi=0)
    np.testing.assert_array_equal(a.image, b.image)


def test_fractional_seed_blends_ws(renderer, networks):
    a, b = render(renderer, network=networks['t'], seed=4), render(renderer, network=networks['t'], seed=5)
    half = render(renderer, network=networks['t'], seed=4.25)
    np.testing.assert_allclose(half.ws, 0.75 * a.ws + 0.25 * b.ws, rtol=1e-5, atol=1e-5)


def test_explicit_w_overrides_seed(renderer, networks):
    a = render(renderer, network=networks['t'], seed=6)
    b = render(renderer, network=networks['t'], seed=0, w=tuple(a.ws.ravel().tolist()))
    np.testing.assert_array_equal(a.image, b.image)
    bad = renderer.render(RenderArgs(network=networks['t'], w=(1.0, 2.0)))
    assert bad.error and 'w has 2 values' in bad.error


def test_style_mixing_replaces_chosen_ws(renderer, networks):
    a = render(renderer, network=networks['t'], seed=1)
    other = render(renderer, network=networks['t'], seed=2)
    mixed = render(renderer, network=networks['t'], seed=1, mix_seed=2, mix_layers=(3, 4, 5))
    np.testing.assert_array_equal(mixed.ws[3:6], other.ws[3:6])
    np.testing.assert_array_equal(mixed.ws[:3], a.ws[:3])


@pytest.mark.parametrize('layer_index', [0, 4, -2])
def test_layer_selection_returns_that_layers_shape(renderer, networks, layer_index):
    full = render(renderer, network=networks['t'])
    layer = full.a.layers[layer_index]
    r = render(renderer, network=networks['t'], layer=layer.name, num_channels=1, channel_base=2)
    assert r.image.shape == (layer.shape[2], layer.shape[3], 3)
    assert (r.image[..., 0] == r.image[..., 1]).all()  # one channel shown as grey


def test_fft_view_has_bright_centre(renderer, networks):
    name = render(renderer, network=networks['t']).a.layers[5].name
    r = render(renderer, network=networks['t'], layer=name, fft=True, fft_range_db=60)
    h, w = r.image.shape[:2]
    centre = r.image[h // 2 - 2:h // 2 + 3, w // 2 - 2:w // 2 + 3, 0].astype(float).mean()
    corners = r.image[:4, :4, 0].astype(float).mean()
    assert centre > corners + 50


def test_conditional_class_changes_image(renderer, networks):
    a = render(renderer, network=networks['t_cond'], class_idx=0)
    b = render(renderer, network=networks['t_cond'], class_idx=3)
    assert np.abs(as_float(a) - as_float(b)).mean() > 1
    bad = renderer.render(RenderArgs(network=networks['t_cond'], class_idx=4))
    assert bad.error and 'class 4 out of range' in bad.error


def test_stylegan2_noise_modes(renderer, networks):
    a = render(renderer, network=networks['sg2'], noise_mode='random', noise_seed=1)
    b = render(renderer, network=networks['sg2'], noise_mode='random', noise_seed=1)
    c = render(renderer, network=networks['sg2'], noise_mode='random', noise_seed=2)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    assert render(renderer, network=networks['sg2']).a.network.has_input_transform is False


@pytest.mark.parametrize('kwargs, message', [
    (dict(seed=-1), 'seed must be an integer'),
    (dict(seed=2 ** 32), 'seed must be an integer'),
    (dict(scale=(0.0, 1.0)), 'singular'),
    (dict(layer='L99'), "no layer 'L99'"),
    (dict(noise_mode='loud'), 'noise mode'),
    (dict(truncation_cutoff=99), 'truncation cutoff'),
    (dict(mix_seed=1, mix_layers=(99,)), 'style-mixing layers'),
    (dict(device='tpu'), 'unknown device'),
    (dict(num_channels=2, layer='input'), 'num_channels'),
])
def test_bad_arguments_give_error_results(renderer, networks, kwargs, message):
    result = renderer.render(RenderArgs(network=networks['t'], **kwargs))
    assert result.error is not None and message in result.error
    assert render(renderer, network=networks['t']).image is not None  # still works afterwards


def test_failing_network_load_returns_error(renderer, tmp_path):
    missing = renderer.render(RenderArgs(network=str(tmp_path / 'missing.pkl')))
    assert missing.image is None and 'no such file' in missing.error
    junk = tmp_path / 'junk.pkl'
    junk.write_bytes(b'not a pickle at all')
    assert renderer.render(RenderArgs(network=str(junk))).error


def test_unavailable_device_falls_back_with_note(renderer, networks):
    r = render(renderer, network=networks['t'], device='cuda' if not __import__('torch').cuda.is_available() else 'cpu')
    assert r.image is not None


def test_render_args_json_round_trip():
    args = RenderArgs(seed=3.5, translate=(0.1, -0.2), mix_layers=(1, 2), layer='L3', fft=True)
    assert RenderArgs.from_json(args.to_json()) == args
    with pytest.raises(ValueError, match='bogus'):
        RenderArgs.from_json('{"bogus": 1}')
    with pytest.raises(ValueError, match='JSON'):
        RenderArgs.from_json('{not json')


def test_renderer_package_never_imports_gl():
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[1] / 'renderer'
    pattern = re.compile(r'^\s*(import|from)\s+(OpenGL|glfw|imgui|imgui_bundle|gui_utils|viz)\b', re.M)
    offenders = [str(p) for p in root.rglob('*.py') if pattern.search(p.read_text())]
    assert offenders == []
