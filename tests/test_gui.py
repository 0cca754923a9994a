"""The real visualizer under Xvfb: renders the demo network, reacts to injected input, captures, shows errors.

One app (synchronous renderer, so every frame is deterministic) is shared by the tests
of this module, which run in order; each test leaves the state as it found it.
"""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
from gui_harness import Driver, red_pixel_count

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test-artifacts')


@pytest.fixture(scope='module')
def driver(xvfb_display, tmp_path_factory):
    from viz.app import Visualizer
    viz = Visualizer(sync=True, device='cpu', capture_dir=str(tmp_path_factory.mktemp('captures')), vsync=False,
                     wait_when_idle=False)
    drv = Driver(viz)
    try:
        drv.settle()
        yield drv
    finally:
        viz.close()


def _differs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference; infinite when the shown sizes differ."""
    if a.shape != b.shape:
        return float('inf')
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_opens_builtin_network_and_renders(driver):
    viz = driver.viz
    assert viz.result is not None and viz.result.error is None
    assert viz.result.a.network.label == 'untrained demo network'
    image = driver.image_pixels()
    assert image.shape[0] > 200 and image.std() > 2  # A picture, not a flat fill.


def test_arrow_keys_change_seed_and_image(driver):
    from imgui_bundle import imgui
    before = driver.image_pixels()
    driver.key(imgui.Key.right_arrow)
    driver.settle()
    assert driver.viz.state.seed == 1.0
    assert _differs(driver.image_pixels(), before) > 2
    driver.key(imgui.Key.left_arrow)
    driver.settle()
    assert driver.viz.state.seed == 0.0


def test_drag_in_image_changes_latent(driver):
    driver.drag('image', 50, steps=1)  # One intermediate seed: one render.
    assert driver.viz.state.seed == pytest.approx(0.5, abs=0.05)
    driver.viz.state.seed = 0.0
    driver.settle()


def test_layer_selection_and_fft_spectrum(driver):
    viz = driver.viz
    driver.click('header:Layers and FFT')
    layer = viz.result.a.layers[4].name  # Visible without scrolling the table.
    before = driver.image_pixels()
    driver.click(f'layer:{layer}')
    driver.settle()
    assert viz.state.layer == layer and viz.result.error is None
    assert _differs(driver.image_pixels(), before) > 2
    driver.click('fft')
    driver.settle()
    assert viz.state.fft and viz.result.error is None
    spectrum = driver.image_pixels().mean(axis=2)
    h, w = spectrum.shape
    centre = spectrum[h // 2 - h // 16:h // 2 + h // 16, w // 2 - w // 16:w // 2 + w // 16].mean()
    assert centre > spectrum.mean() + 20  # Low frequencies (the centre) carry the most power.
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, 'gui_fft.png'), driver.pixels())
    viz.state.fft, viz.state.layer = False, None
    driver.click('header:Layers and FFT')
    driver.settle()


def test_translation_moves_image(driver):
    viz = driver.viz
    driver.click('header:Equivariance')
    before = driver.image_pixels()
    driver.drag('translate', 40, steps=1, fraction_x=0.25)  # The x field of the pair.
    driver.settle()
    assert viz.state.translate[0] == pytest.approx(0.08, abs=0.02)
    assert viz.result.error is None
    assert _differs(driver.image_pixels(), before) > 1
    viz.state.translate = (0.0, 0.0)
    driver.click('header:Equivariance')
    driver.settle()


def test_capture_writes_png_json_and_w(driver):
    from imgui_bundle import imgui
    viz = driver.viz
    driver.key(imgui.Key.s, ctrl=True)
    driver.key(imgui.Key.f12)
    names = sorted(os.listdir(viz.capture_dir))
    assert names == ['image-00000.json', 'image-00000.npy', 'image-00000.png',
                     'image-00001.json', 'image-00001.npy', 'image-00001.png']
    image = iio.imread(os.path.join(viz.capture_dir, 'image-00000.png'))
    assert image.shape == (256, 256, 3)
    assert np.load(os.path.join(viz.capture_dir, 'image-00000.npy')).shape == (16, 512)


def test_load_saved_args_and_w(driver):
    viz, capture = driver.viz, driver.viz.capture_widget
    stem = os.path.join(viz.capture_dir, 'image-00000')
    viz.state.seed = 5.0
    capture.load(stem + '.json')
    assert viz.state.seed == 0.0 and not capture.error
    capture.load(stem + '.npy')
    driver.settle()
    assert viz.state.w is not None and len(viz.state.w) == 16 * 512 and viz.result.error is None
    viz.state.w = None
    capture.load(stem + '.txt')
    assert 'Cannot load' in capture.error
    driver.settle()


def test_wheel_zooms_and_double_click_fits(driver):
    viz = driver.viz
    fitted = viz.current_zoom(viz.image_area[1])
    driver.wheel('image', 1)
    assert viz.state.zoom == fitted + 1
    driver.click('image')
    driver.button_down = True  # Second click of a double click.
    driver.frames(1)
    driver.button_down = False
    driver.frames(1)
    assert viz.state.zoom is None


def test_performance_panel_shows_timings(driver):
    driver.click('header:Performance')
    driver.frames(3)
    assert driver.viz.fps > 0 and driver.viz.frame_ms.max() > 0
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, 'gui_performance.png'), driver.pixels())
    driver.click('header:Performance')


def test_dropped_files(driver):
    viz = driver.viz
    viz.window._on_drop(None, ['/tmp/notes.txt'])  # What GLFW's drop callback delivers.
    driver.frames(1)
    assert 'not a network file' in viz.notice and viz.state.network == ''
    viz.notice = ''


def test_window_screenshot_artifact(driver):
    viz = driver.viz
    viz.request_window_capture()
    driver.frames(1)
    path = os.path.join(viz.capture_dir, 'window-00000.png')
    width, height = viz.window.framebuffer_size
    assert iio.imread(path).shape == (height, width, 3)
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, 'gui_window.png'), driver.pixels())


def test_missing_network_file_shows_error_and_app_recovers(driver):
    viz = driver.viz
    driver.click('network_box')
    driver.type_text('/nonexistent/missing.pkl')
    driver.click('network_open')
    driver.settle()
    assert 'no such file' in viz.load_error
    pixels = driver.pixels()
    assert red_pixel_count(pixels) > 50
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, 'gui_load_error.png'), pixels)
    driver.click('network_demo')
    driver.settle()
    assert viz.result.error is None and viz.state.network == ''
    assert viz.state.recent == ['/nonexistent/missing.pkl']


def test_singular_transform_shows_error_and_app_recovers(driver):
    viz = driver.viz
    viz.state.scale = (0.0, 0.0)
    driver.settle()
    assert 'singular' in viz.render_error
    assert red_pixel_count(driver.pixels()) > 50
    viz.state.scale = (1.0, 1.0)
    driver.settle()
    assert viz.result.error is None


@pytest.mark.slow
def test_command_line_smoke_run(xvfb_display, tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(ARTIFACTS)
    shot = tmp_path / 'shot.png'
    subprocess.run([sys.executable, 'visualizer.py', '--sync', '--device', 'cpu', '--frames', '3',
                    '--capture-dir', str(tmp_path), '--screenshot', str(shot)], cwd=root, check=True, timeout=120)
    assert iio.imread(shot).shape == (800, 1280, 3)


def test_conditional_network_class_selector(driver, tmp_path):
    """A conditional network shows a class selector; typing a class changes the image, the seed stays."""
    from net_helpers import make_generator

    from renderer import save_network
    viz = driver.viz
    path = str(tmp_path / 'conditional.pt')
    save_network(make_generator('stylegan3-t', 64, c_dim=5, seed=2), path)
    viz.open_network(path)
    driver.settle()
    assert viz.result.error is None and viz.result.a.network.c_dim == 5
    driver.frames(2)
    before = driver.image_pixels()
    driver.click('class_input')
    from imgui_bundle import imgui
    driver.key(imgui.Key.a, ctrl=True)
    driver.type_text('3')
    driver.key(imgui.Key.enter)
    driver.settle()
    assert viz.state.class_idx == 3 and viz.result.args.class_idx == 3
    assert _differs(driver.image_pixels(), before) > 0.5
    viz.open_network('')
    driver.settle()
    assert viz.result.error is None
