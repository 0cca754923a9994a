"""Seed input, fractional seed drag and seed animation."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils import layout


class LatentWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state = self.viz.state
        changed, seed = layout.labelled_int('Seed', int(math.floor(state.seed)))
        self.viz.record('seed_input')
        if changed:
            state.seed = float(max(seed, 0))
        changed, seed = layout.labelled_drag('Seed (drag)', state.seed, 0.01, '%.3f')
        self.viz.record('seed_drag')
        if changed:
            state.seed = max(seed, 0.0)
        self._class_selector()
        _, state.animate_seed = imgui.checkbox('Animate', state.animate_seed)
        imgui.same_line()
        with layout.item_width(layout.value_width()):
            _, state.seed_speed = imgui.slider_float('##speed', state.seed_speed, 0.01, 5.0, 'speed %.2f seeds/s')
        if state.w is not None:
            layout.dim_text('Using a loaded w (the seed is ignored).')
            if imgui.button('Use the seed again'):
                state.w = None

    def _class_selector(self) -> None:
        """The class of a conditional network, kept when the seed changes."""
        result = self.viz.result
        network = result.a.network if result is not None else None
        c_dim = network.c_dim if network is not None else 0
        if not c_dim:
            return
        state = self.viz.state
        changed, idx = layout.labelled_int('Class', state.class_idx or 0)
        self.viz.record('class_input')
        if changed:
            state.class_idx = min(max(idx, 0), c_dim - 1)
        layout.dim_text(f'{c_dim} classes (0-{c_dim - 1})')

    def advance(self, dt_s: float) -> None:
        """Move the seed while animating (called once per frame)."""
        if self.viz.state.animate_seed:
            self.viz.state.seed += self.viz.state.seed_speed * dt_s
