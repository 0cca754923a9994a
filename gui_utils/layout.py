"""Shared layout constants (in font-size units, 'em') and small shared controls.

Every ImGui push has its pop in a context manager with try/finally, so an
exception inside a widget cannot leave the style or ID stacks unbalanced.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Sequence

from imgui_bundle import imgui

PANE_WIDTH_EM = 24.0        # Width of the control pane on the left.
LABEL_WIDTH_EM = 7.0        # Width of the label column of labelled controls.
BUTTON_WIDTH_EM = 5.0       # Width of small buttons (Open, Reset, Save ...).
TABLE_HEIGHT_EM = 14.0      # Height of scrolling tables.
ERROR_RGBA = (1.0, 0.35, 0.3, 1.0)
DIM_RGBA = (0.6, 0.6, 0.6, 1.0)


def em(count: float = 1.0) -> float:
    """`count` font heights in screen units."""
    return imgui.get_font_size() * count


@contextlib.contextmanager
def item_width(width: float) -> Iterator[None]:
    imgui.push_item_width(width)
    try:
        yield
    finally:
        imgui.pop_item_width()


@contextlib.contextmanager
def id_scope(name: str) -> Iterator[None]:
    imgui.push_id(name)
    try:
        yield
    finally:
        imgui.pop_id()


@contextlib.contextmanager
def text_color(rgba: tuple[float, float, float, float]) -> Iterator[None]:
    imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*rgba))
    try:
        yield
    finally:
        imgui.pop_style_color()


@contextlib.contextmanager
def disabled(flag: bool = True) -> Iterator[None]:
    imgui.begin_disabled(flag)
    try:
        yield
    finally:
        imgui.end_disabled()


def label(text: str) -> None:
    """A label in the label column; the next control starts at the value column."""
    imgui.align_text_to_frame_padding()
    imgui.text(text)
    imgui.same_line(em(LABEL_WIDTH_EM))


def value_width() -> float:
    """Width left for a control after its label."""
    return imgui.get_content_region_avail().x


def labelled_slider(text: str, value: float, v_min: float, v_max: float, fmt: str = '%.2f') -> tuple[bool, float]:
    label(text)
    with item_width(value_width()):
        return imgui.slider_float(f'##{text}', value, v_min, v_max, fmt)


def labelled_log_slider(text: str, value: float, v_min: float, v_max: float,
                        fmt: str = '%.2f') -> tuple[bool, float]:
    """A slider whose position is logarithmic in the value (for gains spanning decades)."""
    label(text)
    with item_width(value_width()):
        return imgui.slider_float(f'##{text}', value, v_min, v_max, fmt, imgui.SliderFlags_.logarithmic)


def labelled_drag(text: str, value: float, speed: float, fmt: str = '%.3f') -> tuple[bool, float]:
    label(text)
    with item_width(value_width()):
        return imgui.drag_float(f'##{text}', value, speed, 0.0, 0.0, fmt)


def labelled_drag2(text: str, values: tuple[float, float], speed: float,
                   fmt: str = '%.3f') -> tuple[bool, tuple[float, float]]:
    label(text)
    with item_width(value_width()):
        changed, out = imgui.drag_float2(f'##{text}', list(values), speed, 0.0, 0.0, fmt)
    return changed, (out[0], out[1])


def labelled_int(text: str, value: int, step: int = 1) -> tuple[bool, int]:
    label(text)
    with item_width(value_width()):
        return imgui.input_int(f'##{text}', value, step)


def reset_button(name: str = 'Reset', enabled: bool = True) -> bool:
    """A small button that does nothing (greyed out) when there is nothing to reset."""
    with disabled(not enabled):
        return imgui.button(name, imgui.ImVec2(em(BUTTON_WIDTH_EM), 0))


def small_button(name: str) -> bool:
    return imgui.button(name, imgui.ImVec2(em(BUTTON_WIDTH_EM), 0))


def error_text(text: str) -> None:
    with text_color(ERROR_RGBA):
        imgui.text_wrapped(text)


def dim_text(text: str) -> None:
    with text_color(DIM_RGBA):
        imgui.text_wrapped(text)


def status_line(text: str, error: bool = False) -> None:
    """Exactly one line, empty or not, so that a message appearing never moves what is below it.

    A text too long for the line is cut at its edge; hovering shows all of it."""
    with text_color(ERROR_RGBA if error else DIM_RGBA):
        imgui.text(text or ' ')
    if text and imgui.is_item_hovered() and imgui.calc_text_size(text).x > imgui.get_item_rect_size().x - 1:
        imgui.set_tooltip(text)


def radio_row(items: Sequence[tuple[str, str]], current: str,
              record: Optional[Callable[[str], None]] = None) -> str:
    """(value, title) radio buttons on one line; returns the chosen value.

    `record(value)` is called after each button (the visualizer remembers item rects for tests).
    The row has an ID scope of its own, so a radio titled like a button beside it is a different item."""
    with id_scope('radio:' + ','.join(value for value, _ in items)):
        for i, (value, title) in enumerate(items):
            if i:
                imgui.same_line()
            if imgui.radio_button(title, current == value):
                current = value
            if record is not None:
                record(value)
    return current
