"""The visualizer as an expert drives it (Xvfb, injected input, synchronous renderer, small networks):
no conflicting ImGui IDs, one field per meaning, exact seeds, whole-seed steps, drags without jumps,
clear refusals."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
from gui_harness import ARTIFACTS, compare_driver, compare_networks, section  # noqa: F401 (fixtures)

from renderer.options import MAX_SEED


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
    assert 'from 0 to 4294967295' in viz.latent_widget.seed_error and viz.notice == viz.latent_widget.seed_error
    screenshot(driver, 'seed-refused')
    type_seed(driver, '7')
    assert viz.state.seed == 7.0 and viz.latent_widget.seed_error == '' and viz.notice == ''


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


def test_zoom_keeps_the_pixel_under_the_cursor(driver):
    viz = driver.viz
    driver.mouse = point_on_pixel(driver, 12, 40)
    driver.frames(2)
    assert viz.pixel_readout.startswith('x 12  y 40')
    driver.wheel('image', 1)          # wheel() moves to the image centre first: come back to the pixel
    driver.mouse = point_on_pixel(driver, 12, 40)
    driver.frames(1)
    from imgui_bundle import imgui
    zoom = viz.state.zoom
    imgui.get_io().add_mouse_wheel_event(0.0, 1.0)
    driver.frames(2)
    assert viz.state.zoom == zoom + 1
    assert viz.pixel_readout.startswith('x 12  y 40'), viz.pixel_readout
    assert f'zoom {zoom + 1:g}x' in viz.pixel_readout
    viz.state.zoom, viz.state.pan = None, (0.0, 0.0)
    driver.mouse = (-1.0, -1.0)
    driver.frames(1)


def test_compare_asks_for_b_labels_the_parts_and_says_how_sizes_match(driver, networks):
    from viz.widgets.compare import CHOOSE_B
    viz = driver.viz
    with section(driver, 'Compare A | B'):
        driver.click('compare_enable')
        driver.settle()
        assert viz.state.compare_enabled and viz.result.args.compare_network is None and viz.result.b is None
        assert any('choose network B' in note for note in viz.render_notes)
        assert CHOOSE_B.startswith('Choose network B')
        driver.click('compare_box')
        driver.type_text(networks['b'])
        driver.click('compare_open')
        driver.settle()
        result = viz.result
        assert result.error is None and result.b.network.img_resolution == 32
        assert result.panels == [('A', 0, 0, 64, 64), ('B', 68, 16, 100, 48)]
        driver.frames(1)
        (ax, ay), _ = viz.item_rects['panel_label:A']
        (bx, by), _ = viz.item_rects['panel_label:B']
        assert bx > ax and by > ay, 'B is labelled right of A and lower (centred)'
        screenshot(driver, 'compare-labels')

        driver.click('compare_view:split')
        driver.settle()
        notes = viz.result.b.notes
        assert notes == ['B is 32x32 and A 64x64: for the split view, B resized to A (bilinear, antialiased)']
        resized = viz.result.image.copy()
        viz.state.compare_match = 'pad'
        driver.settle()
        assert viz.result.b.notes == ['B is 32x32 and A 64x64: for the split view, B at its own pixels, centred '
                                      'on A (grey around, or cropped)']
        padded = viz.result.image
        assert (padded[:8, 40:] == padded[0, 63]).all(), 'grey above the centred B'
        assert not np.array_equal(resized, padded)
        viz.state.compare_match = 'resize'
        driver.settle()

        seed = viz.state.seed
        (lx0, ly0), (lx1, ly1) = viz.item_rects['split_line']
        driver.mouse = ((lx0 + lx1) / 2, (ly0 + ly1) / 2)
        driver.frames(2)
        driver.button_down = True
        driver.frames(1)
        from gui_utils.draw import image_rect
        area_pos, area_size = viz.image_area
        zoom = viz.current_zoom(area_size)
        (x0, _), (x1, _) = image_rect((viz.texture.width, viz.texture.height), area_pos, area_size, zoom,
                                      viz.state.pan)
        driver.mouse = (x0 + 0.25 * (x1 - x0), driver.mouse[1])
        driver.frames(1)
        driver.button_down = False
        driver.frames(1)
        assert viz.state.split_pos == pytest.approx(0.25, abs=0.02) and viz.state.seed == seed
        driver.settle()
        assert viz.result.panels == [('A', 0, 0, 16, 64), ('B', 16, 0, 64, 64)]
        screenshot(driver, 'compare-split')
        driver.mouse = (-1.0, -1.0)
        driver.click('compare_view:side')
        viz.state.split_pos = 0.5
        driver.click('compare_enable')
        driver.settle()


def test_dropping_a_capture_restores_its_state(driver, tmp_path):
    viz = driver.viz
    viz.state.seed, viz.state.truncation_psi = 11.0, 0.6
    driver.settle()
    path = viz.capture_widget.capture_image()
    stem = os.path.splitext(path)[0]
    viz.state.seed, viz.state.truncation_psi = 0.0, 1.0
    driver.settle()
    viz.drop(stem + '.json')
    assert (viz.state.seed, viz.state.truncation_psi) == (11.0, 0.6) and viz.notice == ''
    driver.settle()
    viz.drop(stem + '.npy')
    assert viz.state.w is not None and viz.notice == ''
    np.testing.assert_array_equal(np.asarray(viz.state.w, np.float32), np.load(stem + '.npy').ravel())
    (tmp_path / 'bad.json').write_text('{not json')
    viz.drop(str(tmp_path / 'bad.json'))
    assert 'bad.json' in viz.notice and viz.state.w is not None
    viz.drop(str(tmp_path / 'notes.txt'))
    assert 'notes.txt' in viz.notice and '.json' in viz.notice
    viz.notice, viz.state.w, viz.state.seed, viz.state.truncation_psi = '', None, 0.0, 1.0
    driver.settle()


_SESSION = """
import json, sys
sys.path.insert(0, 'tests')
from gui_harness import Driver
from viz.app import Visualizer
path, captures, action = sys.argv[1:4]
viz = Visualizer(sync=True, device='cpu', capture_dir=captures, vsync=False, wait_when_idle=False,
                 settings_path=path)
try:
    driver = Driver(viz)
    driver.settle()
    if action != 'look':
        first, second = json.loads(action)
        viz.open_network(second)
        viz.open_network(first)
        viz.state.seed, viz.state.seed_y = 42.0, 3.0
        driver.click('header:Spectrum')
        driver.settle()
    state = viz.state
    print(json.dumps(dict(network=state.network, recent=state.recent, seed=state.seed, seed_y=state.seed_y,
                          spectrum_open=viz.open_panels.get('Spectrum'), notice=viz.notice,
                          rendered=viz.result.args.network if viz.result is not None else None,
                          error=viz.result.error if viz.result is not None else None)))
finally:
    viz.close()
"""


def session(xvfb_display, tmp_path, action: str) -> dict:
    """One launch of the visualizer in a process of its own (its own window and GLFW), as a user's would be."""
    import json
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, '-c', _SESSION, str(tmp_path / 'config' / 'settings.json'),
                           str(tmp_path / 'captures'), action], cwd=root, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, DISPLAY=xvfb_display))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_recent_networks_and_the_last_state_persist(xvfb_display, tmp_path, networks):
    import json
    first = session(xvfb_display, tmp_path, json.dumps([networks['a'], networks['b']]))
    assert first['network'] == networks['a'] and first['notice'] == ''
    again = session(xvfb_display, tmp_path, 'look')
    assert again['notice'] == '' and again['error'] is None
    assert again['network'] == again['rendered'] == networks['a']
    assert again['recent'][:2] == [networks['a'], networks['b']]
    assert (again['seed'], again['seed_y'], again['spectrum_open']) == (42.0, 3.0, True)
    (tmp_path / 'config' / 'settings.json').write_text('{"version": 1, "seed": "many"')   # corrupt
    fresh = session(xvfb_display, tmp_path, 'look')
    assert fresh['notice'].startswith('Ignored the settings') and fresh['network'] == '' and fresh['seed'] == 0.0


def test_bounds_and_names_follow_the_network(driver):
    viz = driver.viz
    network = viz.result.a.network
    assert network.ws_layers[0] == 'input' and network.ws_layers[1] == viz.result.a.layers[1].name
    with section(driver, 'Truncation and noise'):
        viz.state.truncation_cutoff = 10 ** 6
        driver.frames(2)
        assert viz.state.truncation_cutoff == network.num_ws
        screenshot(driver, 'panel-truncation')
        viz.state.truncation_cutoff = None
    with section(driver, 'Style mixing'):
        viz.state.mix_enabled, viz.state.mix_range = True, (2, 10 ** 6)
        driver.frames(2)
        assert viz.state.mix_range == (2, network.num_ws - 1)
        assert viz.style_mix_widget.mixed_layers == [n for n in network.ws_layers[2:] if n]
        screenshot(driver, 'panel-style-mixing')
        viz.state.mix_enabled, viz.state.mix_range = False, (0, 0)
    driver.settle()


def test_animation_speeds(driver):
    viz = driver.viz
    with section(driver, 'Equivariance'):
        assert {'translate_speed', 'rotate_speed'} <= set(viz.item_rects)
        viz.state.translate_speed, viz.state.rotate_speed = 0.5, -30.0
        viz.equivariance_widget.advance(0.1)             # not animating: nothing moves
        assert viz.state.translate == (0.0, 0.0) and viz.state.rotate == 0.0
        viz.state.animate_translate = viz.state.animate_rotate = True
        viz.equivariance_widget.advance(0.1)
        assert viz.state.translate == pytest.approx((0.05, 0.0)) and viz.state.rotate == pytest.approx(357.0)
        screenshot(driver, 'panel-equivariance')
        viz.state.animate_translate = viz.state.animate_rotate = False
        viz.state.translate, viz.state.rotate = (0.0, 0.0), 0.0
    driver.settle()


@pytest.mark.parametrize('title', ['Network', 'Latent', 'Texture sticking', 'Performance', 'Help'])
def test_a_screenshot_of_each_panel(driver, title):
    viz = driver.viz
    opened = not viz.open_panels.get(title, False)
    if opened:
        driver.click(f'header:{title}')
    driver.frames(2)
    assert viz.open_panels[title]
    screenshot(driver, 'panel-' + title.lower().replace(' ', '-'))
    if opened:
        driver.click(f'header:{title}')
        driver.frames(1)


def test_messages_do_not_move_the_control_pane(driver, tmp_path, networks):
    viz = driver.viz
    latent_y = viz.item_rects['header:Latent'][0][1]
    viz.open_network(str(tmp_path / 'missing.pkl'))
    driver.settle()
    assert viz.load_error and 'missing.pkl' in viz.render_error
    driver.frames(1)
    assert viz.item_rects['header:Latent'][0][1] == latent_y, 'a failed load moved the pane'
    screenshot(driver, 'load-failed')
    viz.open_network(networks['a'])
    driver.settle()
    assert not viz.load_error and viz.item_rects['header:Latent'][0][1] == latent_y
    with section(driver, 'Capture'):
        below = viz.item_rects['header:Performance'][0][1]
        assert viz.capture_widget.capture_image() is not None
        driver.frames(1)
        assert viz.capture_widget.message.startswith('Saved')
        assert viz.item_rects['header:Performance'][0][1] == below, 'a capture message moved the pane'


def test_fft_view_shows_the_cutoff_and_nyquist(driver):
    viz = driver.viz
    layer = viz.result.a.layers[5]
    viz.state.layer, viz.state.fft = layer.name, True
    driver.settle()
    driver.frames(1)
    width = layer.shape[3]
    assert viz.fft_overlay['cutoff'] == pytest.approx(layer.cutoff / layer.sampling_rate)
    assert viz.fft_overlay['half_width_px'] == pytest.approx(layer.cutoff / layer.sampling_rate * width)
    screenshot(driver, 'fft-lines')
    viz.state.layer, viz.state.fft = None, False
    driver.settle()
    assert viz.fft_overlay == {}
