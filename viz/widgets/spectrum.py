"""Spectrum plots of the shown tensor (output image or the selected layer, all channels):
a heat map of the power spectrum in dB (DC centred, relative to the peak) and its radial profile."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import layout


class SpectrumWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state = self.viz.state
        _, state.spectrum_plot = imgui.checkbox('Plot spectrum', state.spectrum_plot)
        self.viz.record('spectrum_plot')
        imgui.same_line()
        layout.dim_text(state.layer or 'output image')
        result = self.viz.result
        if not state.spectrum_plot or result is None or result.spectrum_db is None:
            return
        _, state.spectrum_range_db = layout.labelled_slider('Range dB', state.spectrum_range_db, 10.0, 100.0, '%.0f')
        self.viz.record('spectrum_range')
        self._heat_map(result.spectrum_db, state.spectrum_range_db)
        self._profile(result.spectrum_freqs, result.spectrum_profile_db)

    def _heat_map(self, spectrum_db: np.ndarray, range_db: float) -> None:
        relative = np.ascontiguousarray(spectrum_db - spectrum_db.max(), dtype=np.float64)
        size = imgui.ImVec2(-1, layout.value_width())
        flags = implot.Flags_.no_legend | implot.Flags_.equal
        if not implot.begin_plot('##spectrum', size, flags):
            return
        try:
            no_grid = implot.AxisFlags_.no_grid_lines
            implot.setup_axes('cycles/sample x', 'cycles/sample y', no_grid, no_grid)
            implot.push_colormap(implot.Colormap_.viridis.value)
            try:
                implot.plot_heatmap('power dB', relative, -range_db, 0.0, '',
                                    implot.Point(-0.5, -0.5), implot.Point(0.5, 0.5))
            finally:
                implot.pop_colormap()
        finally:
            implot.end_plot()
        self.viz.record('spectrum_heat_map')

    def _profile(self, freqs: np.ndarray, profile_db: np.ndarray) -> None:
        if not implot.begin_plot('Radial profile', imgui.ImVec2(-1, layout.em(10)), implot.Flags_.no_legend):
            return
        try:
            implot.setup_axes('cycles/sample', 'dB')
            implot.plot_line('profile', np.ascontiguousarray(freqs, np.float64),
                             np.ascontiguousarray(profile_db, np.float64))
        finally:
            implot.end_plot()
        self.viz.record('spectrum_profile')
