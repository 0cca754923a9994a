"""Frame rate, render timings, device, op implementations, the precision that rendered the image; device,
fp32 and precision choice."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import layout
from renderer.options import DEVICES, PRECISION_HELP, PRECISIONS


class PerformanceWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state, result = self.viz.state, self.viz.result
        imgui.text(f'GUI {self.viz.fps:5.1f} fps   renderer {"busy" if self.viz.renderer.is_busy else "idle"}')
        if result is not None:
            imgui.text_wrapped(f'Render ms: total {result.timings.get("total", 0):.0f}')
            for name, part in result.networks:
                timings = '  '.join(f'{k} {v:.0f}' for k, v in part.timings.items())
                imgui.text_wrapped(f'  {name}: {timings}')
            imgui.text(f'Device: {result.device or "?"}')
            impls = ', '.join(f'{k}={v}' for k, v in result.impls.items())
            imgui.text_wrapped(f'Ops: {impls or "?"}')
            if result.device_note:
                layout.dim_text(result.device_note)
            imgui.text(f'Rendered in: {rendered_in(result.networks)}')
        layout.label('Device')
        with layout.item_width(layout.value_width()):
            _, index = imgui.combo('##device', DEVICES.index(state.device), list(DEVICES))
        state.device = DEVICES[index]
        _, state.force_fp32 = imgui.checkbox('Force fp32', state.force_fp32)
        imgui.same_line()
        self._precision_combo(state)
        self._frame_plot()

    def _precision_combo(self, state) -> None:
        """The precision of synthesis (off while Force fp32 is on: that means fp32)."""
        with layout.disabled(state.force_fp32), layout.item_width(layout.value_width()):
            shown = 'fp32' if state.force_fp32 else state.precision
            _, index = imgui.combo('##precision', PRECISIONS.index(shown), list(PRECISIONS))
        if not state.force_fp32:
            state.precision = PRECISIONS[index]
        if imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_disabled):
            imgui.set_tooltip(PRECISION_HELP[shown])

    def _frame_plot(self) -> None:
        """GUI frame times, oldest first."""
        history = self.viz.frame_ms
        start = self.viz.frame_count % len(history)
        values = np.ascontiguousarray(np.roll(history, -start), dtype=np.float32)
        if not implot.begin_plot('GUI frame ms', imgui.ImVec2(-1, layout.em(8))):
            return
        try:
            implot.plot_line('frame ms', values)
        finally:
            implot.end_plot()


def rendered_in(networks: list) -> str:
    """'fp32', or 'A bf16, B fp32' in compare mode: what computed each network's image (NetworkResult.precision)."""
    if len(networks) == 1:
        return networks[0][1].precision
    return ', '.join(f'{name} {part.precision}' for name, part in networks)
