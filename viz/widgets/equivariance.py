"""StyleGAN3 input transform: translate, rotate, scale, shear, mirror, untransform, animation, reset;
and the live equivariance readout: PSNR of the transformed render against the ideal transform of the
untransformed one (docs/metrics.md), with the error image viewable.

Greyed out when the network has no input transform (StyleGAN2)."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import layout

from ..state import VizState

MAX_ERROR_GAIN = 10000.0   # Errors at 80 dB PSNR (1e-4 of the range) become visible.
_IDENTITY = dict(translate=(0.0, 0.0), rotate=0.0, scale=(1.0, 1.0), shear=0.0, mirror=(False, False))


class EquivarianceWidget:
    def __init__(self, viz):
        self.viz = viz

    def __call__(self) -> None:
        result = self.viz.result
        network = result.a.network if result is not None else None
        usable = network is None or network.has_input_transform
        if not usable:
            layout.dim_text('This network has no input transform (StyleGAN2).')
        with layout.disabled(not usable):
            self._controls(self.viz.state)
            self._measure(self.viz.state)

    def _controls(self, state: VizState) -> None:
        _, state.translate = layout.labelled_drag2('Translate', state.translate, 0.002)
        self.viz.record('translate')
        _, state.rotate = layout.labelled_drag('Rotate deg', state.rotate, 0.5, '%.1f')
        _, state.scale = layout.labelled_drag2('Scale', state.scale, 0.005)
        _, state.shear = layout.labelled_drag('Shear', state.shear, 0.005)
        _, mirror_x = imgui.checkbox('Mirror x', state.mirror[0])
        imgui.same_line()
        _, mirror_y = imgui.checkbox('Mirror y', state.mirror[1])
        state.mirror = (mirror_x, mirror_y)
        _, state.untransform = imgui.checkbox('Untransform', state.untransform)
        _, state.animate_translate = imgui.checkbox('Animate translate', state.animate_translate)
        imgui.same_line()
        _, state.animate_rotate = imgui.checkbox('Animate rotate', state.animate_rotate)
        _, state.translate_speed = layout.labelled_slider('Move speed', state.translate_speed, -1.0, 1.0,
                                                          '%.3f widths/s')
        self.viz.record('translate_speed')
        _, state.rotate_speed = layout.labelled_slider('Turn speed', state.rotate_speed, -90.0, 90.0, '%.1f deg/s')
        self.viz.record('rotate_speed')
        changed = any(getattr(state, k) != v for k, v in _IDENTITY.items())
        if layout.reset_button(enabled=changed):
            for key, value in _IDENTITY.items():
                setattr(state, key, value)
            state.animate_translate = state.animate_rotate = False

    def _measure(self, state: VizState) -> None:
        _, state.eq_measure = imgui.checkbox('Measure PSNR', state.eq_measure)
        self.viz.record('eq_measure')
        imgui.same_line()
        changed, show = imgui.checkbox('Error image', state.diagnostic == 'eq_error')
        self.viz.record('eq_error')
        if changed:
            state.diagnostic = 'eq_error' if show else 'none'
        if state.diagnostic == 'eq_error':
            _, state.error_gain = layout.labelled_log_slider('Error gain', state.error_gain, 1.0, MAX_ERROR_GAIN,
                                                             '%.0fx')
            self.viz.record('error_gain')
            layout.dim_text('rendered | ideal | |error|')
        if state.eq_measure or state.diagnostic == 'eq_error':
            layout.label('PSNR')
            imgui.text(self.readout())
            self.viz.record('eq_readout')
            result = self.viz.result
            for name, part in result.networks if result is not None else []:
                for note in part.notes:
                    layout.dim_text(f'{name}: {note}')

    def readout(self) -> str:
        """'A 42.1 dB  B 17.3 dB' from the newest result ('...' while none)."""
        result = self.viz.result
        parts = [f'{name} {format_db(part.eq_psnr_db)}' for name, part in (result.networks if result else [])
                 if part.eq_psnr_db is not None]
        return '  '.join(parts) if parts else '...'

    def advance(self, dt_s: float) -> None:
        """Move the transform while animating (called once per frame)."""
        state = self.viz.state
        if state.animate_translate:
            state.translate = (state.translate[0] + state.translate_speed * dt_s, state.translate[1])
        if state.animate_rotate:
            state.rotate = (state.rotate + state.rotate_speed * dt_s) % 360.0


def format_db(value: float) -> str:
    """'42.13 dB', or 'inf dB (identical)' for a perfect match."""
    return 'inf dB (identical)' if value == float('inf') else f'{value:.2f} dB'
