"""Compare mode: network B beside A with the same latent, truncation, noise and motion.

Views: A | B side by side, a split at a movable position, or |A - B|. B follows the
input transform only if it has one (StyleGAN3); otherwise the shared motion is the
latent (animate the seed)."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout
from renderer.live.render_args import ERROR_NETWORK_B
from renderer.options import COMPARE_MATCHES

from .network import NetworkChooser

_VIEWS = (('side', 'A | B'), ('split', 'Split'), ('diff', '|A - B|'))
CHOOSE_B = 'Choose network B: type a path or URL and Open (an empty box opens the built-in demo), or pick one below.'


class CompareWidget:
    def __init__(self, viz):
        self.viz = viz
        self.chooser = NetworkChooser(viz, 'compare', viz.open_compare_network, viz.state.compare_source or '')

    def __call__(self) -> None:
        state = self.viz.state
        _, state.compare_enabled = imgui.checkbox('Compare with network B', state.compare_enabled)
        self.viz.record('compare_enable')
        with layout.disabled(not state.compare_enabled):
            self.chooser.box()
            self._status()
            self.chooser.choices()
            self._view_controls()

    def _status(self) -> None:
        result, state = self.viz.result, self.viz.state
        part = result.b if result is not None and state.compare_enabled else None
        network = part.network if part is not None else None
        if network is not None:
            layout.dim_text(f'B: {network.label} ({network.summary()})')
            if not network.has_input_transform:
                layout.dim_text('B has no input transform: it follows the latent only (animate the seed).')
        for note in part.notes if part is not None else []:
            layout.dim_text(note)
        if state.compare_enabled and state.compare_source is None:
            layout.error_text(CHOOSE_B)
        if state.compare_enabled and result is not None and result.error_kind == ERROR_NETWORK_B:
            layout.error_text(result.error)

    def _view_controls(self) -> None:
        state = self.viz.state
        state.compare_view = layout.radio_row(_VIEWS, state.compare_view,
                                              lambda v: self.viz.record(f'compare_view:{v}'))
        if state.compare_view in ('split', 'diff'):
            layout.label('Sizes')
            titles = [f'{key}: {text}' for key, text in COMPARE_MATCHES.items()]
            with layout.item_width(layout.value_width()):
                _, index = imgui.combo('##match', list(COMPARE_MATCHES).index(state.compare_match), titles)
            state.compare_match = list(COMPARE_MATCHES)[index]
            self.viz.record('compare_match')
        if state.compare_view == 'split':
            _, state.split_pos = layout.labelled_slider('Split', state.split_pos, 0.0, 1.0)
            layout.dim_text('or drag the split line in the image')
        if state.compare_view == 'diff':
            _, state.diff_gain = layout.labelled_slider('Gain', state.diff_gain, 0.5, 20.0, '%.1fx')
