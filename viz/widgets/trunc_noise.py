"""Truncation psi and cutoff, noise mode and noise seed."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout
from renderer.options import NOISE_MODES


class TruncNoiseWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state = self.viz.state
        _, state.truncation_psi = layout.labelled_slider('Psi', state.truncation_psi, -1.0, 2.0)
        self._cutoff(state)
        layout.label('Noise')
        with layout.item_width(layout.value_width()):
            index = NOISE_MODES.index(state.noise_mode)
            _, index = imgui.combo('##noise', index, list(NOISE_MODES))
        state.noise_mode = NOISE_MODES[index]
        with layout.disabled(state.noise_mode != 'random'):
            _, seed = layout.labelled_int('Noise seed', state.noise_seed)
            state.noise_seed = max(seed, 0)
        if layout.reset_button(enabled=state.truncation_psi != 1 or state.truncation_cutoff is not None
                               or state.noise_mode != 'const'):
            state.truncation_psi, state.truncation_cutoff, state.noise_mode = 1.0, None, 'const'

    def _cutoff(self, state) -> None:
        on = state.truncation_cutoff is not None
        changed, on = imgui.checkbox('Cutoff', on)
        if changed:
            state.truncation_cutoff = 8 if on else None
        if state.truncation_cutoff is not None:
            result = self.viz.result
            num_ws = result.a.network.num_ws if result is not None and result.a.network is not None else None
            imgui.same_line(layout.em(layout.LABEL_WIDTH_EM))
            with layout.item_width(layout.value_width()):
                _, cutoff = imgui.input_int('##cutoff', state.truncation_cutoff)
            self.viz.record('trunc_cutoff')
            state.truncation_cutoff = min(max(cutoff, 0), num_ws) if num_ws is not None else max(cutoff, 0)
            if num_ws is not None:
                layout.dim_text(f'truncate ws 0-{state.truncation_cutoff - 1} of {num_ws}'
                                if state.truncation_cutoff else 'cutoff 0: no ws truncated')
