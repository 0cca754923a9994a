"""Style mixing: a second seed whose w replaces a range of ws, shown with the layers each w drives."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout
from renderer.options import MAX_SEED


class StyleMixWidget:
    def __init__(self, viz):
        self.viz = viz
        self.mixed_layers: list[str] = []      # What the chosen ws range drives (shown; tests read it).

    def __call__(self) -> None:
        state = self.viz.state
        network = self._network()
        num_ws = network.num_ws if network is not None else 16
        _, state.mix_enabled = imgui.checkbox('Mix styles', state.mix_enabled)
        with layout.disabled(not state.mix_enabled):
            _, seed = layout.labelled_int('Mix seed', min(state.mix_seed, 2 ** 31 - 1))
            state.mix_seed = min(max(seed, 0), MAX_SEED)
            layout.label('ws range')
            with layout.item_width(layout.value_width()):
                _, first, last = imgui.drag_int_range2('##range', *state.mix_range, 0.1, 0, num_ws - 1)
            self.viz.record('mix_range')
            first, last = sorted((min(max(first, 0), num_ws - 1), min(max(last, 0), num_ws - 1)))
            state.mix_range = (first, last)
            layout.dim_text(f'{num_ws} ws (0-{num_ws - 1})')
            names = network.ws_layers if network is not None else ()
            if names:
                self.mixed_layers = [names[i] for i in range(first, last + 1) if names[i]]
                layout.dim_text(f'ws {first}-{last} drive: {"; ".join(self.mixed_layers) or "no layer"}')

    def _network(self):
        result = self.viz.result
        return result.a.network if result is not None else None
