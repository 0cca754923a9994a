"""Layer table (shape, dtype, sampling rate, cutoff), channel view controls and the FFT view."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout

_COLUMNS = ('Layer', 'Shape (C x H x W)', 'Dtype', 'Rate', 'Cutoff')


def _number(value) -> str:
    return '-' if value is None else f'{value:g}'


class LayersWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        self._table()
        self._channels()
        self._fft()
        self._stats()

    def _table(self) -> None:
        result, state = self.viz.result, self.viz.state
        layers = result.a.layers if result is not None else []
        flags = (imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.scroll_y | imgui.TableFlags_.row_bg
                 | imgui.TableFlags_.resizable | imgui.TableFlags_.scroll_x)
        height = min(layout.em(layout.TABLE_HEIGHT_EM), layout.em(1.4) * (len(layers) + 2))
        if not imgui.begin_table('##layers', len(_COLUMNS), flags, imgui.ImVec2(0, height)):
            return
        try:
            for name in _COLUMNS:   # Columns as wide as their contents (full names); drag a border to resize.
                imgui.table_setup_column(name, imgui.TableColumnFlags_.width_fixed)
            imgui.table_headers_row()
            imgui.table_next_row()
            imgui.table_next_column()
            if imgui.selectable('(output image)', state.layer is None)[0]:
                state.layer = None
            for info in layers:
                self._row(info)
        finally:
            imgui.end_table()

    def _row(self, info) -> None:
        state = self.viz.state
        imgui.table_next_row()
        imgui.table_next_column()
        flags = imgui.SelectableFlags_.span_all_columns
        if imgui.selectable(info.name, state.layer == info.name, flags)[0]:
            state.layer = info.name
        self.viz.record(f'layer:{info.name}')
        for text in (' x '.join(map(str, info.shape[1:])), info.dtype, _number(info.sampling_rate),
                     _number(info.cutoff)):
            imgui.table_next_column()
            imgui.text(text)

    def shown_layer_channels(self) -> int:
        """Channels of the shown layer (0 when the image is shown or the layer is unknown)."""
        result, state = self.viz.result, self.viz.state
        infos = [info for info in (result.a.layers if result is not None else []) if info.name == state.layer]
        return infos[0].shape[1] if infos else 0

    def _channels(self) -> None:
        state = self.viz.state
        channels = self.shown_layer_channels()
        with layout.disabled(state.layer is None):
            _, base = layout.labelled_int('Channel', state.channel_base)
            self.viz.record('channel_input')
            last = max(channels - min(state.num_channels, channels), 0) if channels else base
            state.channel_base = min(max(base, 0), last)
            if channels:
                layout.dim_text(f'{channels} channels (0-{channels - 1}); showing '
                                f'{state.channel_base}-{state.channel_base + min(state.num_channels, channels) - 1}')
            if imgui.radio_button('1 channel', state.num_channels == 1):
                state.num_channels = 1
            imgui.same_line()
            if imgui.radio_button('3 channels', state.num_channels == 3):
                state.num_channels = 3
            imgui.same_line()
            _, state.normalize = imgui.checkbox('Normalize', state.normalize)
            _, state.gain_db = layout.labelled_slider('Gain dB', state.gain_db, -40.0, 40.0, '%.1f')

    def _stats(self) -> None:
        """Statistics of the shown tensor: all of it, then each shown channel (as rendered, before display scaling)."""
        result = self.viz.result
        if result is None or not result.a.stats:
            return
        rows = [('all', result.a.stats)] + [(str(row['channel']), row) for row in result.a.channel_stats]
        flags = imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.row_bg
        if not imgui.begin_table('##stats', 5, flags):
            return
        try:
            for name in ('Channel', 'Mean', 'Std', 'Min', 'Max'):
                imgui.table_setup_column(name)
            imgui.table_headers_row()
            for name, values in rows:
                imgui.table_next_row()
                for text in (name, *(f'{values[key]:.4g}' for key in ('mean', 'std', 'min', 'max'))):
                    imgui.table_next_column()
                    imgui.text(text)
        finally:
            imgui.end_table()
        self.viz.record('channel_stats')

    def _fft(self) -> None:
        state = self.viz.state
        _, state.fft = imgui.checkbox('FFT', state.fft)
        self.viz.record('fft')
        imgui.same_line()
        _, state.fft_all_channels = imgui.checkbox('All channels', state.fft_all_channels)
        with layout.disabled(not state.fft):
            _, state.fft_range_db = layout.labelled_slider('Range dB', state.fft_range_db, 10.0, 100.0, '%.0f')
            _, state.fft_beta = layout.labelled_slider('Beta', state.fft_beta, 0.0, 20.0, '%.1f')
