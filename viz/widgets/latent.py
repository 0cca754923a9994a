"""Seed input, fractional seed drag, the 2-D latent plane (seed, seed y) with Snap, and seed animation."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils import layout
from renderer.options import MAX_SEED, SEED_ROW_STEP

SEED_DRAG_SPEED = 0.01   # Seeds per screen unit of drag on the "Seed (drag)" field.


class LatentWidget:
    def __init__(self, viz):
        self.viz = viz
        self.seed_error = ''

    def __call__(self) -> None:
        state = self.viz.state
        self._seed_input(state)
        self._seed_drag(state)
        self._plane(state)
        self._class_selector()
        self._class_selector()
        _, state.animate_seed = imgui.checkbox('Animate', state.animate_seed)
        imgui.same_line()
        with layout.item_width(layout.value_width()):
            _, state.seed_speed = imgui.slider_float('##speed', state.seed_speed, 0.01, 5.0, 'speed %.2f seeds/s')
        if state.w is not None:
            layout.dim_text('Using a loaded w (the seed is ignored).')
            if imgui.button('Use the seed again'):
                state.w = None

    def _seed_input(self, state) -> None:
        """The whole seed, exact up to MAX_SEED (a double holds every such integer; an ImGui int would wrap)."""
        layout.label('Seed')
        with layout.item_width(layout.value_width()):
            changed, value = imgui.input_double('##Seed', float(math.floor(state.seed)), 1.0, 100.0, '%.0f')
        self.viz.record('seed_input')
        if changed:
            if value.is_integer() and 0 <= value <= MAX_SEED:
                state.seed, self.seed_error = value, ''
            else:   # Shown above the image (viz.notice), so that nothing in the pane moves.
                self.seed_error = f'Seeds are whole numbers from 0 to {MAX_SEED}; {value:.0f} is not one.'
            self.viz.notice = self.seed_error

    def _seed_drag(self, state) -> None:
        """Drag to move the seed continuously. The field drags a per-frame offset and shows the seed itself,
        so it moves at any seed (a float32 field cannot step 0.01 at 4e9) and agrees with the seed box."""
        layout.label('Seed (drag)')
        shown = f'{state.seed:.3f}'.replace('%', '%%')
        with layout.item_width(layout.value_width()):
            changed, delta = imgui.drag_float('##Seed (drag)', 0.0, SEED_DRAG_SPEED, 0.0, 0.0, shown,
                                              imgui.SliderFlags_.no_input)
        self.viz.record('seed_drag')
        if changed and delta:
            state.w = None
            state.seed = min(max(state.seed + delta, 0.0), float(MAX_SEED))

    def _plane(self, state) -> None:
        """The second axis of the latent plane (drag in the image moves along both) and Snap."""
        layout.label('Seed y')
        width = layout.value_width() - layout.em(layout.BUTTON_WIDTH_EM) - imgui.get_style().item_spacing.x
        with layout.item_width(width):
            changed, value = imgui.input_double('##Seed y', state.seed_y, 1.0, 10.0, '%.3f')
        self.viz.record('seed_y_input')
        if changed:
            state.w = None
            state.seed_y = min(max(value, 0.0), float(MAX_SEED))
        imgui.same_line()
        with layout.disabled(state.seed.is_integer() and state.seed_y.is_integer()):
            if layout.small_button('Snap'):
                state.seed, state.seed_y = float(round(state.seed)), float(round(state.seed_y))
        self.viz.record('snap')
        x, y = math.floor(state.seed), math.floor(state.seed_y)
        layout.dim_text(f'grid seed {(x + y * SEED_ROW_STEP) % (MAX_SEED + 1)} at ({x}, {y}); '
                        f'rows are {SEED_ROW_STEP} seeds apart')

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
