"""Frame rate, render timings, device, op implementations; fp32 and device choice."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import layout
from renderer.options import DEVICES


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
        layout.label('Device')
        with layout.item_width(layout.value_width()):
            _, index = imgui.combo('##device', DEVICES.index(state.device), list(DEVICES))
        state.device = DEVICES[index]
        _, state.force_fp32 = imgui.checkbox('Force fp32', state.force_fp32)
        self._frame_plot()

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
