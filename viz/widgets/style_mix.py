"""Style mixing: a second seed whose w replaces a range of ws."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout


class StyleMixWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state = self.viz.state
        num_ws = self._num_ws()
        _, state.mix_enabled = imgui.checkbox('Mix styles', state.mix_enabled)
        with layout.disabled(not state.mix_enabled):
            _, seed = layout.labelled_int('Mix seed', state.mix_seed)
            state.mix_seed = max(seed, 0)
            layout.label('ws range')
            with layout.item_width(layout.value_width()):
                _, first, last = imgui.drag_int_range2('##range', *state.mix_range, 0.1, 0, num_ws - 1)
            state.mix_range = (min(first, last), max(first, last))

    def _num_ws(self) -> int:
        result = self.viz.result
        network = result.a.network if result is not None else None
        return network.num_ws if network is not None else 16
