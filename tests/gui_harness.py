"""Helpers for GUI tests: a private Xvfb display and a driver that runs frames of the real
Visualizer with mouse and keyboard input injected through ImGui's io (re-sent every frame)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

import numpy as np
import pytest

from gui_utils.xvfb import start_xvfb, stop_xvfb, xvfb_available


@pytest.fixture(scope='session')
def xvfb_display() -> Iterator[str]:
    """A private X display for the whole test session (skips the test if Xvfb is not installed)."""
    if not xvfb_available():
        pytest.skip('Xvfb is not installed (apt-get install xvfb libgl1 libglx-mesa0 libgl1-mesa-dri)')
    process, display = start_xvfb()
    previous = os.environ.get('DISPLAY')
    os.environ['DISPLAY'] = display
    try:
        yield display
    finally:
        stop_xvfb(process)
        if previous is None:
            os.environ.pop('DISPLAY', None)
        else:
            os.environ['DISPLAY'] = previous


class Driver:
    """Runs frames of a Visualizer, holding a virtual mouse whose state is re-sent every frame."""

    def __init__(self, viz):
        self.viz = viz
        self.mouse = (-1.0, -1.0)
        self.button_down = False

    def frames(self, count: int = 1) -> None:
        from imgui_bundle import imgui
        for _ in range(count):
            imgui.set_current_context(self.viz.imgui.context)
            io = imgui.get_io()
            io.add_mouse_pos_event(*self.mouse)
            io.add_mouse_button_event(0, self.button_down)
            self.viz.frame()

    def settle(self, max_frames: int = 600) -> None:
        """Run frames until the renderer has delivered the result of the current arguments."""
        self.frames(2)
        for _ in range(max_frames):
            if not self.viz.renderer.is_busy:
                break
            self.frames(1)
        self.frames(1)

    def centre(self, name: str, fraction_x: float = 0.5) -> tuple[float, float]:
        """A point on the recorded item, `fraction_x` of the way across it."""
        (x0, y0), (x1, y1) = self.viz.item_rects[name]
        return x0 + (x1 - x0) * fraction_x, (y0 + y1) / 2

    def click(self, name: str) -> None:
        self.mouse = self.centre(name)
        self.frames(1)
        self.button_down = True
        self.frames(1)
        self.button_down = False
        self.frames(1)

    def drag(self, name: str, dx: float, steps: int = 4, fraction_x: float = 0.5) -> None:
        x, y = self.centre(name, fraction_x)
        self.mouse = (x, y)
        self.frames(1)
        self.button_down = True
        self.frames(1)
        for i in range(1, steps + 1):
            self.mouse = (x + dx * i / steps, y)
            self.frames(1)
        self.button_down = False
        self.frames(1)

    def key(self, key, ctrl: bool = False) -> None:
        from imgui_bundle import imgui
        io = imgui.get_io()
        if ctrl:
            io.add_key_event(imgui.Key.mod_ctrl, True)
        io.add_key_event(key, True)
        self.frames(1)
        io.add_key_event(key, False)
        if ctrl:
            io.add_key_event(imgui.Key.mod_ctrl, False)
        self.frames(1)

    def wheel(self, name: str, steps: float) -> None:
        from imgui_bundle import imgui
        self.mouse = self.centre(name)
        self.frames(1)
        imgui.get_io().add_mouse_wheel_event(0.0, steps)
        self.frames(1)

    def type_text(self, text: str) -> None:
        from imgui_bundle import imgui
        for char in text:
            imgui.get_io().add_input_character(ord(char))
        self.frames(1)

    def pixels(self) -> np.ndarray:
        """The framebuffer of a fresh frame, uint8 [H, W, 3], top row first."""
        self.viz.read_back = True
        self.frames(1)
        return self.viz.last_pixels

    def image_pixels(self) -> np.ndarray:
        """The part of the framebuffer showing the rendered image."""
        from gui_utils.draw import image_rect
        pixels = self.pixels()
        viz = self.viz
        area_pos, area_size = viz.image_area
        zoom = viz.current_zoom(area_size)
        (x0, y0), (x1, y1) = image_rect((viz.texture.width, viz.texture.height), area_pos, area_size, zoom,
                                        viz.state.pan)
        return pixels[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1]


def red_pixel_count(pixels: np.ndarray, region: Optional[tuple[slice, slice]] = None) -> int:
    """Pixels drawn in the error colour (clearly red, not grey)."""
    p = pixels.astype(int) if region is None else pixels[region].astype(int)
    return int(((p[..., 0] > 180) & (p[..., 1] < 140) & (p[..., 2] < 140)).sum())


def open_visualizer(capture_dir: str, network: str, **kwargs):
    """A synchronous Visualizer on the CPU with `network` opened through its network box; returns its Driver."""
    from viz.app import Visualizer
    viz = Visualizer(sync=True, device='cpu', capture_dir=capture_dir, vsync=False, wait_when_idle=False, **kwargs)
    driver = Driver(viz)
    try:
        driver.settle()
        driver.click('network_box')
        driver.type_text(network)
        driver.click('network_open')
        driver.settle()
    except BaseException:
        viz.close()
        raise
    return driver


@contextlib.contextmanager
def section(driver: Driver, title: str) -> Iterator[None]:
    """Toggle a section of the control pane for the block (open a closed one), and toggle it back."""
    driver.click(f'header:{title}')
    driver.frames(1)
    try:
        yield
    finally:
        driver.click(f'header:{title}')
        driver.frames(1)


ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test-artifacts')


@pytest.fixture(scope='module', name='networks')
def compare_networks(tmp_path_factory) -> dict[str, str]:
    """Published-format files of a 64 px StyleGAN3-T ('a') and a 32 px StyleGAN2 ('b'), per test module."""
    from net_helpers import make_generator
    from pickle_fixtures import write_published
    root = tmp_path_factory.mktemp('nets')
    return dict(a=str(write_published(root / 'sg3t.pkl', make_generator('stylegan3-t', 64, seed=5))),
                b=str(write_published(root / 'sg2.pkl', make_generator('stylegan2', 32, seed=6))))


@pytest.fixture(scope='module', name='driver')
def compare_driver(xvfb_display, tmp_path_factory, networks) -> Iterator[Driver]:
    """A visualizer with network 'a' open, for the whole test module."""
    drv = open_visualizer(str(tmp_path_factory.mktemp('captures')), networks['a'])
    try:
        yield drv
    finally:
        drv.viz.close()
