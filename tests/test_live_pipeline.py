"""The staged renderer: display-only changes reuse the synthesis, cancellation leaves the caches sound,
progress rises to 1, progressive averaged images are the mean of what they show."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from net_helpers import make_generator
from pickle_fixtures import write_published

from renderer.diagnostics.sticking import averaged_image, averaged_image_steps, perturbed_ws
from renderer.live.control import RenderControl
from renderer.live.render import Renderer
from renderer.live.render_args import RenderArgs
from renderer.live.views import pair_picture
from renderer.media.pictures import as_rgb, to_uint8


@pytest.fixture(scope='module')
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp('nets')
    return dict(t=str(write_published(root / 't.pkl', make_generator('stylegan3-t', 32, seed=1))),
                sg2=str(write_published(root / 'sg2.pkl', make_generator('stylegan2', 32, seed=3))))


def image(renderer: Renderer, args: RenderArgs) -> np.ndarray:
    result = renderer.render(args)
    assert result.error is None and not result.cancelled, result.error
    return result.image


DISPLAY_CHANGES = [dict(layer='L2_36_128'), dict(layer='L2_36_128', channel_base=5),
                   dict(layer='L2_36_128', normalize=False), dict(layer='L2_36_128', gain_db=6.0),
                   dict(layer='L2_36_128', num_channels=1), dict(fft=True), dict(fft=True, fft_range_db=20.0),
                   dict(fft=True, fft_beta=2.0), dict(fft=True, fft_all_channels=False), dict(spectrum_plot=True)]


@pytest.mark.parametrize('change', DISPLAY_CHANGES, ids=lambda c: ','.join(c))
def test_display_only_changes_do_not_synthesize(networks, change):
    base = RenderArgs(network=networks['t'], device='cpu', seed=3)
    renderer = Renderer()
    image(renderer, base)
    calls = renderer.synthesis_calls
    shown = image(renderer, base.replace(**change))
    assert renderer.synthesis_calls == calls
    np.testing.assert_array_equal(shown, image(Renderer(), base.replace(**change)))   # as a fresh render


COMPARE_CHANGES = [dict(compare_view='split', split_pos=0.3), dict(compare_view='diff', diff_gain=4.0),
                   dict(compare_view='diff', diff_gain=9.0), dict(compare_view='side')]


@pytest.mark.parametrize('change', COMPARE_CHANGES, ids=lambda c: ','.join(map(str, c.values())))
def test_compare_display_changes_do_not_synthesize(networks, change):
    base = RenderArgs(network=networks['t'], compare_network=networks['sg2'], device='cpu', seed=3)
    renderer = Renderer()
    image(renderer, base.replace(compare_view='split', split_pos=0.7))
    calls = renderer.synthesis_calls
    shown = image(renderer, base.replace(**change))
    assert renderer.synthesis_calls == calls
    np.testing.assert_array_equal(shown, image(Renderer(), base.replace(**change)))


def test_error_gain_and_eq_readout_reuse_their_syntheses(networks):
    base = RenderArgs(network=networks['t'], device='cpu', translate=(0.05, 0.0), diagnostic='eq_error')
    renderer = Renderer()
    first = renderer.render(base)
    calls = renderer.synthesis_calls
    assert calls == 2                                   # the transformed image and the reference
    again = renderer.render(base.replace(diff_gain=20.0))
    assert renderer.synthesis_calls == calls and again.a.eq_psnr_db == first.a.eq_psnr_db
    moved = renderer.render(base.replace(translate=(0.1, 0.0)))
    assert renderer.synthesis_calls == calls + 1        # only the transformed image: the reference is cached
    assert moved.a.eq_psnr_db != first.a.eq_psnr_db


def test_seed_change_synthesizes_and_layers_over_budget_are_rendered_again(networks):
    base = RenderArgs(network=networks['t'], device='cpu')
    renderer = Renderer()
    image(renderer, base)
    image(renderer, base.replace(seed=1))
    assert renderer.synthesis_calls == 2
    tight = Renderer(capture_budget_bytes=1)             # Nothing fits: only the shown layer is kept.
    first = image(tight, base.replace(layer='L1_36_128'))
    image(tight, base.replace(layer='L1_36_128', channel_base=4))
    assert tight.synthesis_calls == 1                    # same layer: reused
    second = image(tight, base.replace(layer='L7_52_128'))
    assert tight.synthesis_calls == 2
    np.testing.assert_array_equal(first, image(Renderer(), base.replace(layer='L1_36_128')))
    np.testing.assert_array_equal(second, image(Renderer(), base.replace(layer='L7_52_128')))


class StopAfter(RenderControl):
    """A control that says 'not needed' after `steps` progress checks, recording what it saw."""

    def __init__(self, steps: float):
        self.checks, self.events, self.partials = 0, [], []
        super().__init__(is_needed=self._needed, on_progress=self.events.append,
                         on_partial=lambda make: self.partials.append(make()), partial_interval_s=0.0)
        self.steps = steps

    def _needed(self, key) -> bool:
        self.checks += 1
        return self.checks <= self.steps


def test_cancelled_average_returns_nothing_and_leaves_the_caches_sound(networks):
    args = RenderArgs(network=networks['t'], device='cpu', diagnostic='average', average_samples=6)
    renderer = Renderer()
    control = StopAfter(steps=8)
    result = renderer.render(args, control=control)
    assert result.cancelled and result.image is None and result.error is None
    assert control.partials                                 # it had started showing the average forming
    np.testing.assert_array_equal(image(renderer, args), image(Renderer(), args))   # computed again, whole


def test_progress_rises_to_one_and_partials_are_means_of_what_they_show(networks):
    args = RenderArgs(network=networks['t'], device='cpu', diagnostic='average', average_samples=5)
    renderer = Renderer()
    control = StopAfter(steps=float('inf'))
    final = renderer.render(args, control=control)
    assert final.error is None and not final.partial
    fractions = [e.fraction for e in control.events if e.stage == 'averaged image A' and e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 6
    assert 'averaged image A 6/6' in [e.text for e in control.events]
    # Every partial picture is [central | mean of the first N images].
    G = renderer.get_network(networks['t'], torch.device('cpu'))
    ws = perturbed_ws(G, 0, 5, args.average_sigma)
    steps = list(averaged_image_steps(G, ws, batch=1))
    expected = [to_uint8(as_rgb(pair_picture(central, mean))) for central, mean, _ in steps[:-1]]
    assert len(control.partials) == len(expected)
    for partial, picture in zip(control.partials, expected):
        assert partial.partial and np.array_equal(partial.image, picture)
    np.testing.assert_array_equal(final.image, to_uint8(as_rgb(pair_picture(*averaged_image(G, ws)))))


def test_steps_of_the_average_are_means_of_the_images_so_far(networks):
    G = make_generator('stylegan3-t', 32, seed=1).double()   # float64: batch 2 and batch 1 agree to rounding
    ws = perturbed_ws(G, 2, 4, 0.3)
    with torch.no_grad():
        images = torch.cat([G.synthesis(w[None]) for w in ws]).float()
    for central, mean, count in averaged_image_steps(G, ws, batch=2):
        torch.testing.assert_close(mean, images[:count].double().mean(dim=0).float(), rtol=0, atol=1e-6)
        torch.testing.assert_close(central, images[0], rtol=0, atol=1e-6)
    assert count == 5


def test_a_newer_request_keeps_a_stage_it_shares(networks):
    """A display-only change arriving mid-synthesis does not stop that synthesis."""
    base = RenderArgs(network=networks['t'], device='cpu', seed=7)
    renderer = Renderer()
    newer = base.replace(layer='L2_36_128')
    needed = renderer.needed_keys(newer)
    control = RenderControl(is_needed=lambda key: key in needed)
    result = renderer.render(base, control=control)
    assert not result.cancelled and result.error is None
    calls = renderer.synthesis_calls
    image(renderer, newer)
    assert renderer.synthesis_calls == calls


@pytest.fixture
def float16_overflows(monkeypatch):
    """As on a card where StyleGAN3's float16 layers overflow: a synthesis with float16 allowed gives inf.

    The CPU never runs float16 layers, so the overflow is injected where the float16 path would run."""
    import renderer.live.render as render_module
    from renderer.networks.stylegan3 import SynthesisNetwork
    runs = []
    original = SynthesisNetwork.forward

    def forward(self, ws, noise_mode='const', force_fp32=False, **precision):
        in_float32 = force_fp32 or precision.get('precision') not in (None, 'fp16')
        runs.append(in_float32)
        img = original(self, ws, noise_mode=noise_mode, force_fp32=force_fp32, **precision)
        if not in_float32:
            img = img.clone()
            img[..., 0] = float('inf')      # one column overflowed
        return img
    monkeypatch.setattr(SynthesisNetwork, 'forward', forward)
    monkeypatch.setattr(render_module, 'may_use_float16', lambda G, device: True)
    return runs


def test_float16_overflow_renders_again_in_float32_and_stays_there(networks, float16_overflows):
    from renderer.live.render import FLOAT32_NOTE
    base = RenderArgs(network=networks['t'], device='cpu', seed=3)
    renderer = Renderer(max_cached_networks=1)
    first = renderer.render(base)
    assert first.error is None and float16_overflows == [False, True]
    assert first.a.notes == [FLOAT32_NOTE]
    second = renderer.render(base.replace(seed=4))             # float32 from now on: no float16 attempt
    assert float16_overflows == [False, True, True] and second.a.notes == [FLOAT32_NOTE]
    np.testing.assert_array_equal(first.image, image(Renderer(), base.replace(force_fp32=True)))
    assert stages_in_float32(renderer, base.replace(seed=4))
    renderer.render(base.replace(network=networks['sg2']))    # the only cache slot: network t is closed
    del float16_overflows[:]
    again = renderer.render(base)
    assert float16_overflows == [False, True], 'a reopened network tries float16 again'
    assert again.a.notes == [FLOAT32_NOTE]


def stages_in_float32(renderer: Renderer, args: RenderArgs) -> bool:
    """The keys the renderer reports as needed are those of the float32 render."""
    from renderer.live import stages
    return stages.plan(args.network, args.replace(force_fp32=True), True)['synthesis'] in renderer.needed_keys(args)


def test_a_finite_float16_render_gets_no_note(networks, monkeypatch):
    import renderer.live.render as render_module
    monkeypatch.setattr(render_module, 'may_use_float16', lambda G, device: True)
    renderer = Renderer()
    result = renderer.render(RenderArgs(network=networks['t'], device='cpu', seed=3))
    assert result.error is None and result.a.notes == [] and renderer.synthesis_calls == 1
