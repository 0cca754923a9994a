"""Spectrum plots of the shown tensor (output image or the selected layer, all channels):
a heat map of the power spectrum in dB (DC centred, relative to the peak) with its colour bar, and
its radial profile; both in cycles per sample, with the layer's cutoff and the Nyquist frequency
drawn as lines."""

from __future__ import annotations

from typing import Optional

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import layout

CUTOFF_RGBA = (1.0, 0.6, 0.1, 1.0)
NYQUIST_RGBA = (1.0, 0.25, 0.25, 1.0)


class SpectrumWidget:
    def __init__(self, viz):
        self.viz = viz
        self.lines: dict[str, float] = {}     # Where the frequency lines were drawn (cycles/sample).

    def __call__(self) -> None:
        state = self.viz.state
        _, state.spectrum_plot = imgui.checkbox('Plot spectrum', state.spectrum_plot)
        self.viz.record('spectrum_plot')
        imgui.same_line()
        layout.dim_text(state.layer or 'output image')
        result = self.viz.result
        self.lines = {}
        if not state.spectrum_plot or result is None or result.spectrum_db is None:
            return
        _, state.spectrum_range_db = layout.labelled_slider('Range dB', state.spectrum_range_db, 10.0, 100.0, '%.0f')
        self.viz.record('spectrum_range')
        self.lines = frequency_lines(result.a.layers, state.layer)
        if self.lines:
            layout.dim_text(f'cutoff {self.lines["cutoff"]:.3f}, Nyquist {self.lines["nyquist"]:.1f} cycles/sample')
        self._heat_map(result.spectrum_db, state.spectrum_range_db)
        self._profile(result.spectrum_freqs, result.spectrum_profile_db)

    def _heat_map(self, spectrum_db: np.ndarray, range_db: float) -> None:
        relative = np.ascontiguousarray(spectrum_db - spectrum_db.max(), dtype=np.float64)
        scale_width = layout.em(4.5)
        side = max(layout.value_width() - scale_width - imgui.get_style().item_spacing.x, layout.em(4))
        flags = implot.Flags_.no_legend | implot.Flags_.equal
        implot.push_colormap(implot.Colormap_.viridis.value)
        try:
            if implot.begin_plot('##spectrum', imgui.ImVec2(side, side), flags):
                try:
                    no_grid = implot.AxisFlags_.no_grid_lines
                    implot.setup_axes('cycles/sample x', 'cycles/sample y', no_grid, no_grid)
                    implot.plot_heatmap('power dB', relative, -range_db, 0.0, '',
                                        implot.Point(-0.5, -0.5), implot.Point(0.5, 0.5))
                    self._lines(horizontal_too=True)
                finally:
                    implot.end_plot()
                self.viz.record('spectrum_heat_map')
            imgui.same_line()
            implot.colormap_scale('dB', -range_db, 0.0, imgui.ImVec2(scale_width, side), '%g')
            self.viz.record('spectrum_colour_bar')
        finally:
            implot.pop_colormap()

    def _profile(self, freqs: np.ndarray, profile_db: np.ndarray) -> None:
        if not implot.begin_plot('Radial profile', imgui.ImVec2(-1, layout.em(10)), implot.Flags_.no_legend):
            return
        try:
            implot.setup_axes('cycles/sample', 'dB')
            implot.plot_line('profile', np.ascontiguousarray(freqs, np.float64),
                             np.ascontiguousarray(profile_db, np.float64))
            self._lines(horizontal_too=False)
        finally:
            implot.end_plot()
        self.viz.record('spectrum_profile')

    def _lines(self, horizontal_too: bool) -> None:
        """The layer's cutoff (orange) and the Nyquist frequency (red) on the current plot."""
        for name, rgba in (('cutoff', CUTOFF_RGBA), ('nyquist', NYQUIST_RGBA)):
            if name not in self.lines:
                continue
            value = self.lines[name]
            spec = implot.Spec()
            spec.line_color, spec.line_weight = imgui.ImVec4(*rgba), 1.5
            positions = np.array([-value, value] if horizontal_too else [value], np.float64)
            implot.plot_inf_lines(name, positions, spec)
            if horizontal_too:
                spec.flags = implot.InfLinesFlags_.horizontal
                implot.plot_inf_lines(f'{name}##h', positions, spec)


def frequency_lines(layers: list, layer: Optional[str]) -> dict[str, float]:
    """{'cutoff', 'nyquist'} in cycles per sample of the shown tensor (StyleGAN3 layers, and the image of a
    StyleGAN3 network: its last layer's cutoff at the output rate); {} when the network has no such data."""
    rated = [info for info in layers if info.sampling_rate and info.cutoff is not None]
    if not rated:
        return {}
    infos = [info for info in rated if info.name == layer] if layer is not None else rated[-1:]
    if not infos:
        return {}
    info = infos[0]
    return dict(cutoff=float(info.cutoff) / float(info.sampling_rate), nyquist=0.5)
