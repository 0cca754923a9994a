"""Texture-sticking diagnostics of the paper, for A (and B in compare mode).

Averaged image: the central image beside the average of images from small random
perturbations of its latent; detail that stays sharp in the average is stuck to
the pixel grid. Slice: one row (or column) of every frame of an animation stacked
over time; with input translation an equivariant network draws diagonal streaks,
sticking texture draws streaks parallel to the time axis."""

from __future__ import annotations

from gui_utils import layout
from renderer.options import DIAGNOSTICS, MAX_AVERAGE_SAMPLES, MAX_SLICE_FRAMES, MIN_SLICE_FRAMES

_MODES = (('none', 'Off'), ('average', 'Averaged image'), ('slice', 'Slice'))
_MOTIONS = (('translate', 'Translate'), ('latent', 'Latent'))
_AXES = (('row', 'Row'), ('column', 'Column'))


class StickingWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        state = self.viz.state
        chosen = layout.radio_row(_MODES, state.diagnostic, lambda v: self.viz.record(f'diagnostic:{v}'))
        if chosen != state.diagnostic:
            state.diagnostic = chosen
        if state.diagnostic == 'eq_error':
            layout.dim_text('Showing the equivariance error (see Equivariance).')
        if state.diagnostic == 'average':
            self._average()
        elif state.diagnostic == 'slice':
            self._slice()
        if state.diagnostic in ('average', 'slice'):
            layout.dim_text(DIAGNOSTICS[state.diagnostic])

    def _average(self) -> None:
        state = self.viz.state
        _, samples = layout.labelled_int('Samples', state.average_samples, 4)
        state.average_samples = min(max(samples, 1), MAX_AVERAGE_SAMPLES)
        _, state.average_sigma = layout.labelled_slider('Sigma (z)', state.average_sigma, 0.0, 1.0, '%.3f')

    def _slice(self) -> None:
        state = self.viz.state
        layout.label('Motion')
        state.slice_motion = layout.radio_row(_MOTIONS, state.slice_motion,
                                             lambda v: self.viz.record(f'slice_motion:{v}'))
        layout.label('Axis')
        state.slice_axis = layout.radio_row(_AXES, state.slice_axis)
        _, frames = layout.labelled_int('Frames', state.slice_frames, 8)
        state.slice_frames = min(max(frames, MIN_SLICE_FRAMES), MAX_SLICE_FRAMES)
        _, state.slice_pos = layout.labelled_slider('Position', state.slice_pos, 0.0, 1.0)
        with layout.disabled(state.slice_motion != 'translate'):
            _, state.slice_step_px = layout.labelled_slider('Step px', state.slice_step_px, 0.05, 4.0, '%.2f')
