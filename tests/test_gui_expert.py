"""The visualizer as an expert drives it (Xvfb, injected input, synchronous renderer, small networks):
no conflicting ImGui IDs, one field per meaning, exact seeds, whole-seed steps, drags without jumps,
clear refusals."""

from __future__ import annotations

import contextlib
import os

import imageio.v3 as iio
import numpy as np
import pytest
from gui_harness import Driver
from net_helpers import make_generator
from pickle_fixtures import write_published

from renderer.options import MAX_SEED

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test-artifacts')


@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp('nets')
    return dict(a=str(write_published(root / 'sg3t.pkl', make_generator('stylegan3-t', 64, seed=5))))


@pytest.fixture(scope='module')
def driver(xvfb_display, tmp_path_factory, networks):
    from viz.app import Visualizer
    viz = Visualizer(sync=True, device='cpu', capture_dir=str(tmp_path_factory.mktemp('captures')), vsync=False,
                     wait_when_idle=False)
    drv = Driver(viz)
    try:
        drv.settle()
        drv.click('network_box')
        drv.type_text(networks['a'])
        drv.click('network_open')
        drv.settle()
        yield drv
    finally:
        viz.close()


@contextlib.contextmanager
def section(driver, title: str):
    """Open a collapsed section of the control pane for the block, and close it again."""
    driver.click(f'header:{title}')
    driver.frames(1)
    try:
        yield
    finally:
        driver.click(f'header:{title}')
        driver.frames(1)


def id_conflicts(driver) -> int:
    """Dear ImGui's count of items sharing the hovered item's ID in the last frame."""
    from imgui_bundle import imgui
    return imgui.get_current_context().debug_draw_id_conflicts_count


def hover(driver, name: str) -> int:
    driver.mouse = driver.centre(name)
    driver.frames(2)
    return id_conflicts(driver)


def screenshot(driver, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, f'gui-expert-{name}.png'), driver.pixels())


def test_capture_buttons_and_record_sources_are_distinct_items(driver):
    viz = driver.viz
    with section(driver, 'Capture'):
        for name in ('capture_image', 'capture_window', 'record_source:image', 'record_source:window'):
            assert hover(driver, name) == 0, f'{name} shares its ImGui ID with another item'
        driver.click('record_source:window')
        assert viz.recorder.source == 'window'
        driver.click('record_source:image')
        assert viz.recorder.source == 'image'
        screenshot(driver, 'capture')
    driver.mouse = (-1.0, -1.0)


def test_error_gain_and_compare_gain_are_separate_fields(driver):
    viz = driver.viz
    state = viz.state
    state.diff_gain, state.translate = 20.0, (0.1, 0.0)
    with section(driver, 'Equivariance'):
        state.diagnostic = 'eq_error'
        driver.settle()
        assert viz.result.error is None, viz.result.error
        low = viz.result.image.astype(int)
        driver.drag('error_gain', 400, fraction_x=0.05)      # the log slider to its top
        driver.settle()
        assert state.error_gain > 1000 and state.diff_gain == 20.0
        high = viz.result.image.astype(int)
        width = high.shape[1] // 3
        assert high[:, 2 * width:].mean() > low[:, 2 * width:].mean() + 5, 'the |error| panel got brighter'
        screenshot(driver, 'equivariance')
        state.diagnostic, state.translate, state.error_gain = 'none', (0.0, 0.0), 1.0
        driver.settle()


def test_spectrum_range_is_its_own_field(driver):
    state = driver.viz.state
    with section(driver, 'Spectrum'):
        state.spectrum_plot = True
        driver.settle()
        driver.drag('spectrum_range', -200)
        assert state.spectrum_range_db < 50.0 and state.fft_range_db == 50.0
        state.spectrum_plot, state.spectrum_range_db = False, 50.0
        driver.settle()


def type_seed(driver, text: str) -> None:
    from imgui_bundle import imgui
    driver.click('seed_input')          # focus the text field
    io = imgui.get_io()
    io.add_key_event(imgui.Key.mod_ctrl, True)
    io.add_key_event(imgui.Key.a, True)
    driver.frames(1)
    io.add_key_event(imgui.Key.a, False)
    io.add_key_event(imgui.Key.mod_ctrl, False)
    driver.frames(1)
    driver.type_text(text)
    driver.key(imgui.Key.enter)
    driver.mouse = (-1.0, -1.0)
    driver.frames(1)


def test_large_seeds_are_exact_or_refused(driver):
    viz = driver.viz
    type_seed(driver, str(MAX_SEED))
    driver.settle()
    assert viz.state.seed == float(MAX_SEED) and viz.result.error is None
    assert viz.result.args.seed == MAX_SEED
    type_seed(driver, '5000000000')
    driver.settle()
    assert viz.state.seed == float(MAX_SEED), 'refused, not wrapped to 705032704'
    assert 'from 0 to 4294967295' in viz.latent_widget.seed_error
    screenshot(driver, 'seed-refused')
    type_seed(driver, '7')
    assert viz.state.seed == 7.0 and viz.latent_widget.seed_error == ''


def test_seed_drag_moves_at_large_seeds_and_agrees_with_the_seed(driver):
    viz = driver.viz
    viz.state.seed = 4_000_000_000.0
    driver.frames(1)
    driver.drag('seed_drag', 50, steps=5)
    moved = viz.state.seed - 4_000_000_000.0
    assert 0.2 < moved < 1.0, moved                  # about 50 screen units x 0.01 seeds
    viz.state.seed = 0.0
    driver.settle()


@pytest.mark.parametrize('start, key, expected', [(3.5, 'left', 3.0), (3.5, 'right', 4.0), (3.0, 'left', 2.0),
                                                   (0.2, 'left', 0.0), (0.0, 'left', 0.0)])
def test_arrow_keys_step_to_the_neighbouring_whole_seed(driver, start, key, expected):
    from imgui_bundle import imgui
    viz = driver.viz
    viz.state.seed = start
    driver.key(imgui.Key.left_arrow if key == 'left' else imgui.Key.right_arrow)
    assert viz.state.seed == expected


def test_a_drag_moves_the_seed_by_the_pointer_motion_after_the_press_only(driver):
    """The motion that arrives together with the press (a fast flick-and-click) is not part of the drag."""
    viz = driver.viz
    viz.state.seed = 5.0
    (x0, y0), (x1, y1) = viz.item_rects['image']
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    driver.mouse = centre
    driver.frames(2)                                 # resting over the image
    driver.mouse = (centre[0] + 30, centre[1])
    driver.button_down = True                        # moved 30 units and pressed in the same frame
    driver.frames(1)
    assert viz.state.seed == 5.0, 'the motion before the press counted as a drag'
    driver.mouse = (centre[0] + 50, centre[1])
    driver.frames(1)
    assert viz.state.seed == pytest.approx(5.0 + 20 / 100.0)
    driver.button_down = False
    driver.frames(1)
    viz.state.seed = 0.0
    driver.mouse = (-1.0, -1.0)
    driver.settle()


def test_a_w_of_the_wrong_size_is_refused_without_loaded(driver, tmp_path):
    viz = driver.viz
    widget = viz.capture_widget
    path = tmp_path / 'w.npy'
    np.save(path, np.zeros([3, 5], np.float32))
    widget.message = ''
    widget.load(str(path))
    assert 'shape [3, 5]' in widget.error and widget.message == '' and viz.state.w is None
    network = viz.result.a.network
    np.save(path, np.full([network.num_ws, network.w_dim], 0.1, np.float32))
    widget.load(str(path))
    assert widget.error == '' and widget.message.startswith('Loaded')
    assert len(viz.state.w) == network.num_ws * network.w_dim
    viz.state.w = None
    driver.settle()


def point_on_pixel(driver, x: int, y: int) -> tuple[float, float]:
    """Screen point at the centre of image pixel (x, y)."""
    from gui_utils.draw import image_rect
    viz = driver.viz
    area_pos, area_size = viz.image_area
    zoom = viz.current_zoom(area_size)
    (x0, y0), _ = image_rect((viz.texture.width, viz.texture.height), area_pos, area_size, zoom, viz.state.pan)
    return x0 + (x + 0.5) * zoom, y0 + (y + 0.5) * zoom


def test_pixel_readout_shows_what_the_renderer_returned(driver):
    viz = driver.viz
    driver.mouse = point_on_pixel(driver, 10, 20)
    driver.frames(2)
    values = viz.result.a.readout[:, 20, 10]
    assert viz.pixel_readout.startswith('x 10  y 20')
    for channel, value in zip(viz.result.a.readout_channels, values):
        assert f'ch {channel}: {value:.5g}' in viz.pixel_readout
    layer = viz.result.a.layers[3]
    viz.state.layer, viz.state.channel_base = layer.name, 5
    driver.settle()
    height, width = layer.shape[2:]
    driver.mouse = point_on_pixel(driver, width - 1, 0)
    driver.frames(2)
    assert viz.result.a.readout_channels == (5, 6, 7) and viz.result.a.readout.shape == (3, height, width)
    expected = viz.result.a.readout[:, 0, width - 1]
    assert viz.pixel_readout.startswith(f'x {width - 1}  y 0') and f'ch 7: {expected[2]:.5g}' in viz.pixel_readout
    screenshot(driver, 'pixel-readout')
    driver.mouse = (-1.0, -1.0)
    driver.frames(1)
    assert viz.pixel_readout == ''


def test_channel_statistics_and_bounds_follow_the_layer(driver):
    viz = driver.viz
    layer = viz.result.a.layers[3]
    viz.state.layer = layer.name
    with section(driver, 'Layers and FFT'):
        driver.settle()
        stats = viz.result.a.channel_stats
        planes = viz.result.a.readout.astype(np.float64)
        assert [row['channel'] for row in stats] == list(viz.result.a.readout_channels)
        np.testing.assert_allclose([row['mean'] for row in stats], planes.mean(axis=(1, 2)))
        np.testing.assert_allclose([row['max'] for row in stats], planes.max(axis=(1, 2)))
        assert 'channel_stats' in viz.item_rects
        viz.state.channel_base = 10 ** 6                 # typed far beyond the layer
        driver.frames(2)
        assert viz.state.channel_base == layer.shape[1] - 3
        screenshot(driver, 'layers')
    viz.state.layer, viz.state.channel_base = None, 0
    driver.settle()


def test_spectrum_panel_draws_the_layers_cutoff_and_nyquist(driver):
    viz = driver.viz
    layer = viz.result.a.layers[5]
    viz.state.layer = layer.name
    # Close the two open sections (toggled like any other) so that the plots fit on the pane.
    with section(driver, 'Network'), section(driver, 'Latent'), section(driver, 'Spectrum'):
        viz.state.spectrum_plot = True
        driver.settle()
        driver.frames(1)
        widget = next(w for title, w, _ in viz.sections if title == 'Spectrum')
        assert widget.lines == dict(cutoff=pytest.approx(layer.cutoff / layer.sampling_rate), nyquist=0.5)
        assert {'spectrum_heat_map', 'spectrum_colour_bar', 'spectrum_profile'} <= set(viz.item_rects)
        screenshot(driver, 'spectrum')
        viz.state.spectrum_plot = False
    viz.state.layer = None
    driver.settle()


def test_drag_in_the_image_moves_across_the_latent_plane_and_snap_rounds(driver):
    import torch

    from renderer import load_network
    from renderer.generation import blended_ws
    viz = driver.viz
    viz.state.seed, viz.state.seed_y = 2.0, 0.0
    driver.settle()
    (x0, y0), (x1, y1) = viz.item_rects['image']
    start = ((x0 + x1) / 2, (y0 + y1) / 2)
    driver.mouse = start
    driver.frames(2)
    driver.button_down = True
    driver.frames(1)
    for i in range(1, 5):
        driver.mouse = (start[0] + 10 * i, start[1] + 5 * i)
        driver.frames(1)
    driver.button_down = False
    driver.settle()
    assert viz.state.seed == pytest.approx(2.4) and viz.state.seed_y == pytest.approx(0.2)
    G = load_network(viz.state.network)
    expected = blended_ws(G, viz.state.seed, seed_y=viz.state.seed_y)[0].numpy()
    np.testing.assert_allclose(viz.result.ws, expected, rtol=1e-5, atol=1e-6)
    assert viz.result.args.seed_y == viz.state.seed_y
    screenshot(driver, 'latent-plane')
    driver.mouse = (-1.0, -1.0)
    driver.click('snap')
    assert (viz.state.seed, viz.state.seed_y) == (2.0, 0.0)
    viz.state.seed_y = 1.0
    driver.settle()
    torch.testing.assert_close(torch.from_numpy(viz.result.ws), blended_ws(G, 2.0, seed_y=1.0)[0])
    viz.state.seed_y = 0.0
    driver.settle()
