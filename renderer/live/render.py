"""The renderer: `RenderArgs` -> `RenderResult`, in stages with a cache per stage (no GL, no GUI).

For network A (and B in compare mode) `Renderer.render(args)` runs the stages of
renderer.live.stages: load the network, map the latent, synthesise while capturing
layers (or run a diagnostic), then build the view and compose A with B. A stage
whose key did not change comes from the cache, so a change that only alters how the
result is drawn (split line, gains, FFT range, channel, normalisation, the shown
layer) costs no synthesis. Long stages report progress and partial pictures and stop
at their next safe point when a `RenderControl` says they are not needed any more
(renderer.live.control). Every failure becomes `RenderResult.error` text with
`error_kind` saying what failed; `render` never raises for bad arguments or bad files.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from renderer.devices import resolve_device
from renderer.diagnostics.equivariance import compare_transform
from renderer.diagnostics.sticking import averaged_image_steps, perturbed_ws, slice_diagnostic_steps
from renderer.errors import NetworkLoadError, RequestError
from renderer.generation import (
    blended_ws,
    check_noise_mode,
    check_truncation,
    choose_precision,
    explicit_ws,
    has_input_transform,
    input_transform,
    load_generator,
    mix_styles,
    require_input_transform,
    synthesize_images,
)
from renderer.io.demo import DEMO_LABEL
from renderer.live import stages, views
from renderer.live.control import NO_CONTROL, Cancelled, RenderControl
from renderer.live.render_args import (
    ERROR_INTERNAL,
    ERROR_NETWORK,
    ERROR_NETWORK_B,
    ERROR_REQUEST,
    LayerInfo,
    NetworkDescription,
    NetworkResult,
    RenderArgs,
    RenderResult,
)
from renderer.media import pictures
from renderer.media.compose import difference_view, side_by_side, split_view
from renderer.media.progress import report
from renderer.networks.capture import capture_layers, capture_points
from renderer.networks.precision import dtype_name, layer_dtype, network_precision, unsupported_reason, used_precision
from renderer.options import COMPARE_MATCHES, COMPARE_VIEWS, PRECISIONS
from renderer.signal.band_limited import affine_transform
from renderer.signal.transforms import is_identity

SLICE_FILL = -1.0   # Black: the rows (columns) of a slice not rendered yet.
COMPARE_GAP = 4     # Pixels between A and B side by side.
FLOAT32_NOTE = ('float16 layers gave NaN or inf on this device, so this network renders in float32 '
                '(until it is closed)')
REDUCED_EQ_NOTE = ('the PSNR compares a {} render with the float32 reference, so rounding lowers it; '
                   'choose fp32 to measure')


class _LoadFailed(Exception):
    """Network A or B could not be loaded (carries the error kind and the message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class SynthesisOutput:
    """What one synthesis leaves for the view stage."""
    rendered: torch.Tensor                  # [1, C, H, W] float32 as rendered (with the input transform).
    image: torch.Tensor                     # [1, C, H, W] as shown (resampled back when untransforming).
    layers: dict[str, torch.Tensor]         # Captured layer outputs [C, H, W] by name.

    def tensor(self, layer: Optional[str]) -> torch.Tensor:
        """The shown tensor [C, H, W]: a layer's output, or the image."""
        return self.image[0] if layer is None else self.layers[layer]

    def finite(self) -> bool:
        """No NaN or inf in the image or any captured layer."""
        return all(bool(torch.isfinite(t).all()) for t in [self.rendered, *self.layers.values()])


@dataclass(frozen=True)
class _NetworkFacts:
    capture_all: bool                       # Every layer's output fits in the capture budget.
    layer_names: tuple[str, ...]


class Renderer:
    """Renders `RenderArgs` in stages; caches networks by (source, device) and each stage's newest output."""

    def __init__(self, max_cached_networks: int = 4, capture_budget_bytes: int = stages.CAPTURE_BUDGET_BYTES):
        self._networks: collections.OrderedDict[tuple, torch.nn.Module] = collections.OrderedDict()
        self._facts: dict[tuple, _NetworkFacts] = {}
        self._max_cached = max_cached_networks
        self._budget = capture_budget_bytes
        self._caches = {'A': stages.StageCache(), 'B': stages.StageCache()}
        self._float32_only: set[tuple] = set()   # Network keys whose float16 layers overflowed.
        self._precisions: dict[tuple, tuple[str, Optional[str]]] = {}   # (network key, asked) -> (used, note).
        self.synthesis_calls = 0            # G.synthesis runs (tests count them).

    def render(self, args: RenderArgs, request_id: int = 0, control: RenderControl = NO_CONTROL) -> RenderResult:
        result = RenderResult(request_id=request_id, args=args)
        start = time.perf_counter()
        try:
            _Render(self, args, result, control).run()
        except Cancelled:
            result.cancelled, result.image = True, None
        except _LoadFailed as e:
            result.error, result.error_kind = str(e), e.kind
        except RequestError as e:
            result.error, result.error_kind = str(e), ERROR_REQUEST
        except Exception as e:  # Bad kernels, out of memory, bugs: report, never crash the renderer.
            result.error, result.error_kind = f'{type(e).__name__}: {e}', ERROR_INTERNAL
            result.traceback = traceback.format_exc(limit=6)
        result.timings['total'] = 1e3 * (time.perf_counter() - start)
        return result

    def needed_keys(self, args: RenderArgs) -> set[tuple]:
        """Keys of every stage that rendering `args` would use (for cancelling work it does not need)."""
        keys = set()
        for source, b in [(args.network, False)] + ([(args.compare_network, True)]
                                                    if args.compare_network is not None else []):
            facts = self._facts.get(stages.network_key(source, args))
            shown = self.precision_of(source, args)
            if b and facts is not None and args.layer is not None and args.layer not in facts.layer_names:
                shown = shown.replace(layer=None)
            keys.update(stages.plan(source, shown, facts.capture_all if facts else True).values())
        return keys

    # -- networks ---------------------------------------------------------------------------------
    def get_network(self, source: str, device: torch.device) -> torch.nn.Module:
        key = (source, str(device))
        G = self._networks.get(key)
        if G is None:
            G = load_generator(source, device)
            while len(self._networks) >= self._max_cached:
                (closed, _), _ = self._networks.popitem(last=False)
                self._float32_only = {k for k in self._float32_only if k[1] != closed}
                self._precisions = {k: v for k, v in self._precisions.items() if k[0][1] != closed}
            self._networks[key] = G
        self._networks.move_to_end(key)
        return G

    def precision_of(self, source: str, args: RenderArgs) -> RenderArgs:
        """args with force_fp32 set for a network whose float16 layers gave NaN or inf before."""
        if not args.force_fp32 and stages.network_key(source, args) in self._float32_only:
            return args.replace(force_fp32=True)
        return args

    def synthesis_precision(self, source: str, G: torch.nn.Module, device: torch.device,
                            args: RenderArgs) -> tuple[str, Optional[str]]:
        """(the precision a synthesis of args computes in, a note or None): force_fp32 means fp32, fp16 without
        CUDA is fp32 (the published behaviour), bf16 where this device cannot run it falls back to fp32 with a
        note, and 'auto' is measured once per network (renderer.generation.choose_precision)."""
        asked = 'fp32' if args.force_fp32 else args.precision
        if asked not in PRECISIONS:
            raise RequestError(f'precision must be one of {", ".join(PRECISIONS)}, got {asked!r}')
        key = (stages.network_key(source, args), asked)
        if key not in self._precisions:
            reason = unsupported_reason(asked, device) if asked == 'bf16' else None
            if asked == 'auto':
                choice = choose_precision(G)
                self._precisions[key] = (choice.precision, choice.reason)
            elif reason is not None:
                self._precisions[key] = ('fp32', f'bf16: {reason}; rendering in fp32')
            elif asked == 'fp16':
                self._precisions[key] = ('fp16' if may_use_float16(G, device) else 'fp32', None)
            else:
                self._precisions[key] = (used_precision(G, asked, device), None)
        return self._precisions[key]

    def keep_float32(self, source: str, args: RenderArgs) -> None:
        self._float32_only.add(stages.network_key(source, args))

    def facts(self, key: tuple, G: torch.nn.Module) -> _NetworkFacts:
        facts = self._facts.get(key)
        if facts is None:
            shapes = [info.shape for info in describe_layers(G, torch.device('cpu'), True)]
            facts = self._facts[key] = _NetworkFacts(stages.fits_budget(shapes, budget=self._budget),
                                                     tuple(capture_points(G)))
        return facts


class _Render:
    """One render: the stages of A (and B), each from the cache or computed, then the composed picture."""

    def __init__(self, renderer: Renderer, args: RenderArgs, result: RenderResult, control: RenderControl):
        self.renderer, self.args, self.result, self.control = renderer, args, result, control
        self.view_a: Optional[torch.Tensor] = None   # A's finished picture, while B renders (partial results).

    def run(self) -> None:
        args, result = self.args, self.result
        self.device, result.device_note = resolve_device(args.device)
        result.device = str(self.device)
        result.impls = implementations(self.device)
        view = self.network_view('A', args.network, args, result.a)
        if args.compare_network is not None:
            self.view_a = view
            result.b = NetworkResult()
            try:
                view_b = self.network_view('B', args.compare_network, args, result.b)
            except RequestError as e:
                raise RequestError(f'network B: {e}') from None
            a_hw, b_hw = tuple(view.shape[1:]), tuple(view_b.shape[1:])
            note = matching_note(a_hw, b_hw, args)
            if note is not None:
                result.b.notes.append(note)
            result.panels = compare_panels(a_hw, b_hw, args)
            view = compose_views(view, view_b, args)
        result.image = pictures.to_uint8(pictures.as_rgb(view))

    # -- stages -----------------------------------------------------------------------------------
    def timed(self, part: NetworkResult, name: str, compute: Callable[[], object]) -> object:
        start = time.perf_counter()
        try:
            return compute()
        finally:
            part.timings[name] = part.timings.get(name, 0.0) + 1e3 * (time.perf_counter() - start)

    def stage(self, cache: stages.StageCache, key: tuple, part: NetworkResult, timing: str, what: str,
              compute: Callable[[], object]) -> object:
        """The stage's cached output, or compute it (under the control's cancellation) and cache it."""
        def run() -> object:
            value = cache.get(key)
            if value is not None:
                part.cached.append(timing)
                return value
            with self.control.stage(key, what):
                value = compute()
            return cache.put(key, value)
        return self.timed(part, timing, run)

    def network(self, slot: str, source: str, part: NetworkResult) -> torch.nn.Module:
        key = stages.network_key(source, self.args)
        kind = ERROR_NETWORK if slot == 'A' else ERROR_NETWORK_B

        def load() -> torch.nn.Module:
            with self.control.stage(key, f'loading network {slot}'):
                try:
                    return self.renderer.get_network(source, self.device)
                except Exception as e:  # A file that breaks the builder in an unforeseen way is still a bad file.
                    message = str(e) if isinstance(e, NetworkLoadError) else f'{type(e).__name__}: {e}'
                    if kind == ERROR_NETWORK_B:
                        message = f'network B ({source or DEMO_LABEL}): {message}'
                    raise _LoadFailed(kind, message) from None
        return self.timed(part, 'load', load)

    def network_view(self, slot: str, source: str, args: RenderArgs, part: NetworkResult) -> torch.Tensor:
        """The picture of one network; fills its part of the result."""
        renderer, result = self.renderer, self.result
        cache = renderer._caches[slot]
        G = self.network(slot, source, part)
        facts = renderer.facts(stages.network_key(source, args), G)
        part.network = describe_network(G, source)
        effective = renderer.precision_of(source, args)
        if effective is not args:
            args = effective
            part.notes.append(FLOAT32_NOTE)
        precision, precision_note = renderer.synthesis_precision(source, G, self.device, args)
        part.layers = describe_layers(G, self.device, args.force_fp32, precision)
        if slot == 'B' and args.layer is not None and args.layer not in facts.layer_names:
            part.notes.append(f'B has no layer {args.layer}; showing its output image')
            args = args.replace(layer=None)
        if args.layer is not None and args.layer not in facts.layer_names:
            raise RequestError(f'this network has no layer {args.layer!r}')
        views.check_diagnostic(args)
        keys = stages.plan(source, args, facts.capture_all)
        ws = self.stage(cache, keys['ws'], part, 'mapping', f'mapping {slot}', lambda: compute_ws(G, args))
        if slot == 'A':
            result.ws = ws[0].cpu().numpy().astype(np.float32)
        if args.diagnostic == 'average':
            pair = self.stage(cache, keys['average'], part, 'diagnostic', f'averaged image {slot}',
                              lambda: self.average(G, args, slot, keys['average']))
            return views.pair_picture(*pair)
        if args.diagnostic == 'slice':
            pair = self.stage(cache, keys['slice'], part, 'diagnostic', f'slice {slot}',
                              lambda: self.slice(G, ws, args, slot, keys['slice']))
            return views.pair_picture(*pair)
        captured = stages.captured_layers(args, facts.capture_all)
        part.precision = precision
        if precision_note is not None:
            part.notes.append(precision_note)
        synthesis = self.stage(cache, keys['synthesis'], part, 'synthesis', f'synthesis {slot}',
                               lambda: self.synthesize(G, ws, args, captured, precision))
        if not args.force_fp32 and precision != 'fp32' and not synthesis.finite():
            # A known StyleGAN3 problem on some cards: float16 overflows. Render again in float32 and keep it.
            renderer.keep_float32(source, args)
            args = args.replace(force_fp32=True)
            part.notes.append(FLOAT32_NOTE)
            part.layers, part.precision = describe_layers(G, self.device, True), 'fp32'
            keys = stages.plan(source, args, facts.capture_all)
            synthesis = self.stage(cache, keys['synthesis'], part, 'synthesis', f'synthesis {slot} in float32',
                                   lambda: self.synthesize(G, ws, args, captured))
        comparison = self.comparison(G, ws, args, cache, keys, synthesis, part)
        if comparison is not None and part.precision != 'fp32':
            part.notes.append(REDUCED_EQ_NOTE.format(part.precision))
        if args.diagnostic == 'eq_error':
            if comparison is None:
                raise RequestError('the equivariance error needs an input transform: translate or rotate first')
            part.timings['diagnostic'] = part.timings.get('eq_measure', 0.0)
            return views.eq_error_picture(comparison, args.error_gain)
        return self.timed(part, 'view', lambda: self.view(synthesis, args, cache, keys['synthesis'], part, slot))

    def synthesize(self, G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs,
                   captured: Optional[str], precision: Optional[str] = None) -> SynthesisOutput:
        self.renderer.synthesis_calls += 1
        rendered, layers = synthesize(G, ws, args, captured, precision)
        image = rendered
        matrix = views.content_transform(args)
        if args.untransform and has_input_transform(G) and not is_identity(matrix):
            image = affine_transform(rendered, np.linalg.inv(matrix))[0]  # Band-limited; outside the image is 0.
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return SynthesisOutput(rendered, image, layers)

    def comparison(self, G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, cache: stages.StageCache,
                   keys: dict, synthesis: SynthesisOutput, part: NetworkResult):
        """The equivariance comparison (eq_measure, eq_error); None for the identity transform."""
        if 'comparison' not in keys:
            return None
        if not has_input_transform(G):
            if args.diagnostic == 'eq_error':
                require_input_transform(G, 'the equivariance error')
            return None
        matrix = views.content_transform(args)
        if is_identity(matrix):
            part.eq_psnr_db = float('inf')
            return None

        def measure():
            reference = self.stage(cache, keys['reference'], part, 'reference', 'equivariance reference',
                                   lambda: self.reference(G, ws, args))
            return compare_transform(G, ws, matrix, noise_mode=args.noise_mode, rendered=synthesis.rendered,
                                     reference=reference)
        try:
            comparison = self.stage(cache, keys['comparison'], part, 'eq_measure', 'equivariance', measure)
        except RequestError as e:  # E.g. moved out of view: no valid pixels. Keep the image, explain.
            if args.diagnostic == 'eq_error':
                raise
            part.notes.append(f'cannot measure the PSNR: {e}')
            return None
        part.eq_psnr_db = comparison.psnr_db
        return comparison

    def reference(self, G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs) -> torch.Tensor:
        self.renderer.synthesis_calls += 1
        return synthesize_images(G, ws, noise_mode=args.noise_mode)

    def average(self, G: torch.nn.Module, args: RenderArgs, slot: str, key: tuple) -> tuple:
        seed = views.check_average_args(args)
        ws = perturbed_ws(G, seed, args.average_samples, args.average_sigma, truncation_psi=args.truncation_psi,
                          truncation_cutoff=args.truncation_cutoff, class_idx=args.class_idx)
        batch = 1 if self.device.type == 'cpu' else 8   # On a CPU batch 1 is as fast and shows every sample.
        for central, mean, done in averaged_image_steps(G, ws, batch, args.noise_mode):
            self.control.step(key, f'averaged image {slot}', done, len(ws),
                              lambda pair=(central, mean): self.partial(slot, views.pair_picture(*pair)))
        return central, mean

    def slice(self, G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, slot: str, key: tuple) -> tuple:
        animation, index = views.slice_setup(G, ws, args)
        batch = 1 if self.device.type == 'cpu' else 8
        for frame, slice_image, done in slice_diagnostic_steps(G, animation, args.slice_axis, index, batch,
                                                               noise_mode=args.noise_mode, fill=SLICE_FILL):
            self.control.step(key, f'slice {slot}', done, len(animation),
                              lambda pair=(frame, slice_image): self.partial(slot, views.pair_picture(*pair)))
        return frame, slice_image

    def view(self, synthesis: SynthesisOutput, args: RenderArgs, cache: stages.StageCache, synthesis_key: tuple,
             part: NetworkResult, slot: str) -> torch.Tensor:
        """The picture from the synthesis output: cheap, so computed for every request (spectra cached)."""
        tensor = synthesis.tensor(args.layer)
        selection = None if args.fft_all_channels else (args.channel_base, args.num_channels)
        view = views.make_view(tensor, synthesis.image, args, lambda source: cache.memo(
            ('fft', synthesis_key, args.layer, selection, args.fft_beta),
            lambda: pictures.power_spectrum_db(source.float(), args.fft_beta)))
        part.stats = views.tensor_stats(tensor)
        shown = views.readout(tensor, args)
        if shown is not None:
            part.readout, part.readout_channels = shown
            part.channel_stats = views.channel_stats(*shown)
        if slot == 'A' and args.spectrum_plot:
            self.result.spectrum_db, self.result.spectrum_freqs, self.result.spectrum_profile_db = cache.memo(
                ('plot', synthesis_key, args.layer, args.fft_beta),
                lambda: views.spectrum_plot_data(tensor, args.fft_beta))
        return view

    def partial(self, slot: str, view: torch.Tensor) -> RenderResult:
        """A result showing a stage's picture so far (B's beside A's finished one)."""
        if slot == 'B' and self.view_a is not None:
            view = compose_views(self.view_a, view, self.args)
        return dataclasses.replace(self.result, image=pictures.to_uint8(pictures.as_rgb(view)), partial=True,
                                   timings=dict(self.result.timings))


def compose_views(a: torch.Tensor, b: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    """A and B in one picture as args.compare_view says."""
    if args.compare_match not in COMPARE_MATCHES:
        raise RequestError(f'compare match must be one of {", ".join(COMPARE_MATCHES)}, got {args.compare_match!r}')
    if args.compare_view == 'side':
        return side_by_side([a, b], COMPARE_GAP)
    if args.compare_view == 'split':
        return split_view(a, b, args.split_pos, args.compare_match)
    if args.compare_view == 'diff':
        return difference_view(a, b, args.diff_gain, args.compare_match)
    raise RequestError(f'compare view must be one of {", ".join(COMPARE_VIEWS)}, got {args.compare_view!r}')


def compare_panels(a_hw: tuple[int, int], b_hw: tuple[int, int],
                   args: RenderArgs) -> list[tuple[str, int, int, int, int]]:
    """Where A and B (or |A - B|) lie in the composed picture: (label, x0, y0, x1, y1) in pixels."""
    (ha, wa), (hb, wb) = a_hw, b_hw
    if args.compare_view == 'side':
        height = max(ha, hb)
        return [('A', 0, (height - ha) // 2, wa, (height - ha) // 2 + ha),
                ('B', wa + COMPARE_GAP, (height - hb) // 2, wa + COMPARE_GAP + wb, (height - hb) // 2 + hb)]
    if args.compare_view == 'split':
        column = round(args.split_pos * wa)
        return [('A', 0, 0, column, ha), ('B', column, 0, wa, ha)]
    return [('|A - B|', 0, 0, wa, ha)]


def matching_note(a_hw: tuple[int, int], b_hw: tuple[int, int], args: RenderArgs) -> Optional[str]:
    """What the split or difference view did to B when the sizes differ (never silently)."""
    if args.compare_view == 'side' or a_hw == b_hw:
        return None
    view = 'split' if args.compare_view == 'split' else '|A - B|'
    return (f'B is {b_hw[1]}x{b_hw[0]} and A {a_hw[1]}x{a_hw[0]}: for the {view} view, '
            f'{COMPARE_MATCHES[args.compare_match]}')


def may_use_float16(G: torch.nn.Module, device: torch.device) -> bool:
    """Whether a synthesis on `device` runs some layers in float16 (CUDA only, when not forced to fp32)."""
    return device.type == 'cuda' and any(getattr(m, 'use_fp16', False) for m in G.synthesis.modules())


def describe_network(G: torch.nn.Module, source: str) -> NetworkDescription:
    return NetworkDescription(source=source, label=source or DEMO_LABEL, architecture=G.architecture,
                              img_resolution=G.img_resolution, img_channels=G.img_channels, z_dim=G.z_dim,
                              c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws,
                              has_input_transform=has_input_transform(G), ws_layers=ws_layers(G))


def ws_layers(G: torch.nn.Module) -> tuple[str, ...]:
    """For each of the num_ws entries of ws, the names of the layers that use it (comma-joined; '' = none).

    StyleGAN3: ws[0] drives the input and ws[i + 1] layer i. StyleGAN2: each block takes its convolutions'
    ws in turn and its ToRGB the next one (which is also the next block's first)."""
    users: list[list[str]] = [[] for _ in range(G.num_ws)]
    synthesis = G.synthesis
    if G.architecture == 'stylegan3':
        for index, name in enumerate(['input', *synthesis.layer_names]):
            if index < len(users):
                users[index].append(name)
    else:
        start = 0
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f'b{res}')
            convs = [name for name in ('conv0', 'conv1') if hasattr(block, name)]
            for offset, name in enumerate(convs):
                users[start + offset].append(f'b{res}.{name}')
            if start + block.num_conv < len(users):
                users[start + block.num_conv].append(f'b{res}.torgb')
            start += block.num_conv
    return tuple(', '.join(names) for names in users)


def describe_layers(G: torch.nn.Module, device: torch.device, force_fp32: bool,
                    precision: Optional[str] = None) -> list[LayerInfo]:
    """Every capture point with its output shape (batch 1), dtype, sampling rate and cutoff (precision: see
    renderer.networks.precision; None with force_fp32 False is the published fp16)."""
    infos = []
    precision = network_precision(precision, force_fp32)
    for name, module in capture_points(G).items():
        if G.architecture == 'stylegan3':
            if name == 'input':
                shape = (1, module.channels, int(module.size[1]), int(module.size[0]))
                infos.append(LayerInfo(name, shape, 'float32', float(module.sampling_rate), float(module.bandwidth)))
                continue
            shape = (1, module.out_channels, int(module.out_size[1]), int(module.out_size[0]))
            dtype = dtype_name(layer_dtype(precision, module.use_fp16, device, torch.float32, module.is_torgb))
            infos.append(LayerInfo(name, shape, dtype, float(module.out_sampling_rate), float(module.out_cutoff)))
        else:
            block = getattr(G.synthesis, name.split('.')[0])
            res = block.resolution
            channels = module.out_channels
            flagged = block.use_fp16 and not name.endswith('torgb')
            dtype = dtype_name(layer_dtype(precision, flagged, device, torch.float32))
            infos.append(LayerInfo(name, (1, channels, res, res), dtype))
    return infos


def implementations(device: torch.device) -> dict[str, str]:
    """Which implementation each op uses on this device ('ref' or 'cuda')."""
    from renderer import ops
    if device.type != 'cuda':
        return {name: 'ref' for name in ('bias_act', 'upfirdn2d', 'filtered_lrelu')}
    return {name: info['impl'] for name, info in ops.implementation_status().items()}


def compute_ws(G: torch.nn.Module, args: RenderArgs) -> torch.Tensor:
    """ws [1, num_ws, w_dim] from seed (fractional blend) or an explicit w, with truncation and mixing."""
    latents = views.latents_of(args)
    check_truncation(G, latents.truncation_psi, latents.truncation_cutoff)
    if args.w is not None:
        ws = explicit_ws(G, args.w)
    else:
        ws = blended_ws(G, args.seed, latents, args.seed_y)
    if args.mix_seed is not None and args.mix_layers:
        ws = mix_styles(G, ws, args.mix_seed, args.mix_layers, latents)
    return ws


def synthesize(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs, captured: Optional[str],
               precision: Optional[str] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run synthesis once with the input transform; returns (image [1, C, H, W], {layer: output [C, H, W]}).

    captured: stages.ALL_LAYERS, one layer name, or None. Each layer reports progress before it runs
    (a safe point to stop at). precision: as Renderer.synthesis_precision resolved it (None: args.force_fp32
    decides between fp32 and the published fp16)."""
    check_noise_mode(args.noise_mode)
    points = capture_points(G)
    matrix = views.content_transform(args)
    wanted = list(points) if captured == stages.ALL_LAYERS else [captured] if captured else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        if has_input_transform(G) and not is_identity(matrix):
            stack.enter_context(input_transform(G, matrix))
        stack.enter_context(torch.random.fork_rng(devices=[ws.device] if ws.device.type == 'cuda' else []))
        torch.manual_seed(args.noise_seed)
        for index, module in enumerate(points.values()):
            hook = module.register_forward_pre_hook(lambda *_, i=index: report('layers', i, len(points)))
            stack.callback(hook.remove)
        records = stack.enter_context(capture_layers(G, wanted))
        img = G.synthesis(ws, noise_mode=args.noise_mode, force_fp32=args.force_fp32, precision=precision)
    return img, {r.name: r.tensor[0] for r in records}
