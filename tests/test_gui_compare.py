"""The visualizer's compare mode, texture-sticking and equivariance panels, spectrum plots and MP4 recording,
driven through the real GUI under Xvfb with small networks (synchronous renderer, deterministic frames)."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
from gui_harness import ARTIFACTS, compare_driver, compare_networks, section  # noqa: F401 (fixtures)

from renderer.live.render import Renderer
from renderer.live.render_args import RenderArgs


def alone(**kwargs) -> np.ndarray:
    result = Renderer().render(RenderArgs(device='cpu', **kwargs))
    assert result.error is None, result.error
    return result.image


def test_compare_mode_shows_both_networks(driver, networks):
    viz = driver.viz
    assert viz.result.a.network.architecture == 'stylegan3' and viz.result.error is None
    with section(driver, 'Compare A | B'):
        driver.click('compare_enable')
        driver.click('compare_box')
        driver.type_text(networks['b'])
        driver.click('compare_open')
        driver.settle()
        result = viz.result
        assert result.error is None, result.error
        assert result.b.network.architecture == 'stylegan2' and result.b.network.source == networks['b']
        image_a, image_b = alone(network=networks['a']), alone(network=networks['b'])
        assert result.image.shape == (64, 64 + 4 + 32, 3)          # A | gap | B, B centred.
        np.testing.assert_array_equal(result.image[:, :64], image_a)
        np.testing.assert_array_equal(result.image[16:48, 68:], image_b)
        shown = driver.image_pixels()
        assert shown.shape[1] / shown.shape[0] == pytest.approx(100 / 64, rel=0.05)
        os.makedirs(ARTIFACTS, exist_ok=True)
        iio.imwrite(os.path.join(ARTIFACTS, 'gui-compare-side.png'), driver.pixels())

        driver.click('compare_view:split')
        driver.settle()
        split = viz.result.image
        assert split.shape == (64, 64, 3)
        np.testing.assert_array_equal(split[:, :31], image_a[:, :31])
        assert np.abs(split[:, 34:].astype(int) - image_a[:, 34:]).mean() > 5   # B on the right.

        driver.click('compare_view:diff')
        driver.settle()
        diff = viz.result.image.astype(int)
        assert diff.shape == (64, 64, 3) and diff.max() > 40 and diff.min() < 140

        driver.click('compare_view:side')
        driver.settle()


def test_same_motion_moves_both(driver):
    viz = driver.viz
    before = viz.result.image.copy()
    viz.state.seed = 3.0
    driver.settle()
    after = viz.result.image
    assert np.abs(after[:, :64].astype(int) - before[:, :64]).mean() > 2     # A moved with the latent,
    assert np.abs(after[16:48, 68:].astype(int) - before[16:48, 68:]).mean() > 2  # and so did B.
    viz.state.seed = 0.0
    driver.settle()


def test_notes_of_a_render_are_shown_above_the_image(driver):
    viz = driver.viz
    viz.state.layer = viz.result.a.layers[1].name      # a StyleGAN3 layer, which B (StyleGAN2) lacks
    driver.settle()
    assert viz.result.error is None and viz.render_notes == [f'B: B has no layer {viz.state.layer}; '
                                                             'showing its output image']
    (_, (_, note_bottom)), ((_, image_top), _) = viz.item_rects['render_note'], viz.image_area
    assert note_bottom <= image_top + 1, 'the note sits above the picture, not on it'
    viz.state.layer = None
    driver.settle()
    assert viz.render_notes == []


def test_sticking_diagnostics_for_a_and_b(driver):
    viz = driver.viz
    with section(driver, 'Texture sticking'):
        viz.state.average_samples = 4
        driver.click('diagnostic:average')
        driver.settle()
        result = viz.result
        assert result.error is None, result.error
        # (A central | A average) | gap | (B central | B average).
        assert result.image.shape == (64, (64 + 4 + 64) + 4 + (32 + 4 + 32), 3)
        # B (StyleGAN2) has no input transform: the shared motion is the latent.
        viz.state.slice_motion, viz.state.slice_frames = 'latent', 8
        driver.click('diagnostic:slice')
        driver.settle()
        assert 'slice_motion:translate' in viz.item_rects
        result = viz.result
        assert result.error is None, result.error
        assert result.image.shape == (64, (64 + 4 + 64) + 4 + (32 + 4 + 32), 3)
        assert result.a.timings['diagnostic'] > 0 and result.b.timings['diagnostic'] > 0
        driver.click('diagnostic:none')
        driver.settle()


def test_translation_slice_on_b_without_transform_is_a_clear_error(driver):
    viz = driver.viz
    viz.state.diagnostic, viz.state.slice_motion, viz.state.slice_frames = 'slice', 'translate', 4
    driver.settle()
    assert viz.render_error.startswith('network B') and 'input transform' in viz.render_error
    viz.state.diagnostic = 'none'
    driver.settle()
    assert viz.result.error is None


def test_equivariance_readout_and_error_image(driver):
    viz = driver.viz
    viz.state.compare_enabled = False
    with section(driver, 'Equivariance'):
        viz.state.translate = (2 / 64, 0.0)   # Two whole pixels.
        driver.click('eq_measure')
        driver.settle()
        psnr = viz.result.a.eq_psnr_db
        assert psnr > 30, psnr
        assert 'A ' in viz.equivariance_widget.readout() and 'dB' in viz.equivariance_widget.readout()
        driver.click('eq_error')
        driver.settle()
        assert viz.state.diagnostic == 'eq_error' and viz.result.error is None
        assert viz.result.image.shape == (64, 3 * 64 + 2 * 4, 3)  # rendered | ideal | error
        driver.click('eq_error')
        driver.click('eq_measure')
        viz.state.translate = (0.0, 0.0)
        driver.settle()
        assert viz.state.diagnostic == 'none' and not viz.state.eq_measure


def test_spectrum_plots(driver):
    viz = driver.viz
    # Fold the sections open at start (the toggle reopens them afterwards) so the plots are on screen.
    with section(driver, 'Network'), section(driver, 'Latent'), section(driver, 'Spectrum'):
        driver.click('spectrum_plot')
        driver.settle()
        result = viz.result
        assert result.spectrum_db.shape == (64, 64) and result.spectrum_db.dtype == np.float32
        assert result.spectrum_freqs.shape == result.spectrum_profile_db.shape
        assert result.spectrum_freqs.flags.c_contiguous and result.spectrum_freqs.ndim == 1
        driver.frames(2)
        assert 'spectrum_heat_map' in viz.item_rects and 'spectrum_profile' in viz.item_rects
        os.makedirs(ARTIFACTS, exist_ok=True)
        iio.imwrite(os.path.join(ARTIFACTS, 'gui-spectrum.png'), driver.pixels())
        driver.click('spectrum_plot')
        driver.settle()


def record(driver, frames: int, source: str, animate: bool = False) -> str:
    """Record `frames` frames through the Capture panel; with `animate`, the seed animation runs meanwhile
    (switched on once recording holds the clock, so frame 0 shows the starting seed)."""
    viz = driver.viz
    with section(driver, 'Capture'):
        viz.capture_widget.record_frames = frames
        viz.recorder.source = source
        driver.frames(1)
        driver.click('record_button')
        assert viz.recorder.active
        viz.state.animate_seed = animate
        for _ in range(2000):
            if not viz.recorder.active:
                break
            driver.frames(1)
        assert not viz.recorder.active and not viz.recorder.error, viz.recorder.error
        path = viz.recorder.message.split()[1]
        assert os.path.isfile(path) and path.endswith('.mp4')
        viz.state.animate_seed = False
        return path


def test_recording_ten_frames_writes_a_valid_mp4(driver, networks):
    viz = driver.viz
    viz.state.compare_enabled = True
    viz.state.seed, viz.state.seed_speed = 0.0, 3.0
    driver.settle()
    path = record(driver, 10, 'image', animate=True)
    meta = iio.immeta(path)
    video = np.stack(list(iio.imiter(path)))
    assert video.shape == (10, 64, 100, 3) and meta['fps'] == 30
    # Frame k shows seed 3 k / 30 exactly: the animation advanced one step per recorded frame.
    for k in (0, 5, 9):
        expected = alone(network=networks['a'], seed=3.0 * k / 30)
        assert np.abs(video[k, :, :64].astype(int) - expected).mean() < 4, k
    assert np.abs(video[9].astype(int) - video[0]).mean() > 2
    assert not [n for n in os.listdir(viz.capture_dir) if '.partial' in n]


def test_recording_the_window(driver):
    path = record(driver, 3, 'window')
    video = np.stack(list(iio.imiter(path)))
    width, height = driver.viz.window.framebuffer_size
    assert video.shape == (3, height + height % 2, width + width % 2, 3)
