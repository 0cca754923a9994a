"""The visualizer with its renderer process under Xvfb: progress bar and Cancel over the image,
partial pictures, display-only changes without synthesis, and a frame loop that sleeps when idle."""

from __future__ import annotations

import os
import threading
import time

import imageio.v3 as iio
import pytest
from gui_harness import Driver

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test-artifacts')


@pytest.fixture(scope='module')
def driver(xvfb_display, tmp_path_factory):
    from viz.app import Visualizer
    viz = Visualizer(sync=False, device='cpu', capture_dir=str(tmp_path_factory.mktemp('captures')), vsync=False,
                     wait_when_idle=False)
    drv = Driver(viz)
    try:
        frames_until(drv, lambda: viz.final_result is not None)
        yield drv
    finally:
        viz.close()


def frames_until(driver: Driver, condition, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('condition not reached within the time limit')
        driver.frames(1)
        time.sleep(0.01)


def test_long_render_shows_progress_partial_pictures_and_can_be_cancelled(driver):
    viz = driver.viz
    viz.state.diagnostic, viz.state.average_samples = 'average', 64
    frames_until(driver, lambda: 'cancel' in viz.item_rects and viz.result is not None and viz.result.partial)
    assert viz.shown_result.partial and viz.shown_result.image.shape == (256, 2 * 256 + 4, 3)
    progress = viz.renderer.progress
    assert progress is not None and progress.stage == 'averaged image A' and 0 < progress.fraction < 1
    os.makedirs(ARTIFACTS, exist_ok=True)
    iio.imwrite(os.path.join(ARTIFACTS, 'gui-progress-cancel.png'), driver.pixels())
    driver.click('cancel')
    frames_until(driver, lambda: not viz.renderer.is_busy)
    driver.frames(2)
    assert viz.result.cancelled and 'render_again' in viz.item_rects
    assert viz.final_result.args.diagnostic == 'none'        # captures and recordings never take a partial picture
    viz.state.diagnostic = 'none'
    frames_until(driver, lambda: not viz.renderer.is_busy and viz.result.args.diagnostic == 'none'
                 and viz.result.image is not None)


def test_idle_wait_follows_what_is_going_on(driver):
    from viz import app
    viz = driver.viz
    viz.wait_when_idle = True
    try:
        viz._last_event = 0.0
        assert viz.idle_wait() == app.IDLE_WAIT_S
        viz.state.animate_seed = True
        assert viz.idle_wait() is None
        viz.state.animate_seed = False
        viz._last_event = time.perf_counter()
        assert viz.idle_wait() is None                       # just after input: keep drawing a moment
    finally:
        viz.wait_when_idle = False


def test_an_idle_frame_sleeps_until_woken(driver, monkeypatch):
    from viz import app
    viz = driver.viz
    monkeypatch.setattr(app, 'IDLE_WAIT_S', 60.0)
    viz.wait_when_idle = True
    try:
        driver.frames(1)
        viz._last_event = 0.0
        threading.Timer(0.5, viz.window.wake).start()         # what a result from the renderer process does
        start = time.monotonic()
        driver.frames(1)
        assert time.monotonic() - start < 30                  # woken long before the 60 s timeout
        assert time.perf_counter() - viz._last_event < 30     # and the wake counted as activity
    finally:
        viz.wait_when_idle = False
