"""Placing an image in a screen area: fit-to-window zoom, integer zoom steps and panning (pure math + one draw call)."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from .gl_texture import Texture


def fit_zoom(image_size: tuple[int, int], area_size: tuple[float, float]) -> float:
    """Largest integer zoom that fits (or 1/n when the image is larger than the area)."""
    ratio = min(area_size[0] / max(image_size[0], 1), area_size[1] / max(image_size[1], 1))
    if ratio >= 1:
        return float(math.floor(ratio))
    return 1.0 / math.ceil(1.0 / max(ratio, 1e-6))


def step_zoom(zoom: float, steps: int) -> float:
    """Zoom in (steps > 0) or out by whole steps: ... 1/3, 1/2, 1, 2, 3 ..."""
    level = round(zoom) - 1 if zoom >= 1 else 1 - round(1 / zoom)  # 0 = zoom 1.
    level += steps
    return float(level + 1) if level >= 0 else 1.0 / (1 - level)


def image_rect(image_size: tuple[int, int], area_pos: tuple[float, float], area_size: tuple[float, float],
               zoom: float, pan: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Screen corners (min, max) of the image centred in the area, moved by `pan` screen units."""
    width, height = image_size[0] * zoom, image_size[1] * zoom
    x0 = round(area_pos[0] + (area_size[0] - width) / 2 + pan[0])
    y0 = round(area_pos[1] + (area_size[1] - height) / 2 + pan[1])
    return (x0, y0), (x0 + width, y0 + height)


def draw_texture(texture: Texture, area_pos: tuple[float, float], area_size: tuple[float, float],
                 zoom: float, pan: tuple[float, float]) -> None:
    """Draw the texture into the current window's draw list, clipped to the area."""
    texture.set_filter(nearest=zoom >= 1 and zoom == int(zoom))
    p_min, p_max = image_rect((texture.width, texture.height), area_pos, area_size, zoom, pan)
    draw_list = imgui.get_window_draw_list()
    clip_max = (area_pos[0] + area_size[0], area_pos[1] + area_size[1])
    draw_list.push_clip_rect(imgui.ImVec2(*area_pos), imgui.ImVec2(*clip_max), True)
    try:
        draw_list.add_image(imgui.ImTextureRef(texture.gl_id), imgui.ImVec2(*p_min), imgui.ImVec2(*p_max))
    finally:
        draw_list.pop_clip_rect()
