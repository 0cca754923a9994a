"""The renderer: a pure function of `RenderArgs` returning a `RenderResult` (no GL, no GUI).

`Renderer.render(args)` loads (and caches) the network, maps the latent,
applies style mixing and the input transform, runs synthesis once while
capturing the chosen layer, and turns the result into a displayable image,
optionally its power spectrum; in compare mode network B goes the same way and
the two pictures are composed. Every failure becomes `RenderResult.error` text
with `error_kind` saying what failed; `render` itself never raises for bad
arguments or bad files.
"""

from __future__ import annotations

import contextlib
import time
import traceback

import numpy as np
import torch

from renderer.devices import resolve_device
from renderer.errors import NetworkLoadError, RequestError
from renderer.generation import (
    blended_ws,
    check_noise_mode,
    check_truncation,
    explicit_ws,
    has_input_transform,
    input_transform,
    load_generator,
    mix_styles,
)
from renderer.io.demo import DEMO_LABEL
from renderer.live import views
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
from renderer.networks.capture import capture_layers, capture_points
from renderer.options import COMPARE_VIEWS
from renderer.signal.band_limited import affine_transform
from renderer.signal.transforms import is_identity


class _LoadFailed(Exception):
    """Network A or B could not be loaded (carries the error kind and the message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Renderer:
    """Renders `RenderArgs`; caches loaded networks by (source, device)."""

    def __init__(self, max_cached_networks: int = 4):
        self._networks: dict[tuple[str, str], torch.nn.Module] = {}
        self._max_cached = max_cached_networks

    def render(self, args: RenderArgs, request_id: int = 0) -> RenderResult:
        result = RenderResult(request_id=request_id, args=args)
        start = time.perf_counter()
        try:
            self._render(args, result)
        except _LoadFailed as e:
            result.error, result.error_kind = str(e), e.kind
        except RequestError as e:
            result.error, result.error_kind = str(e), ERROR_REQUEST
        except Exception as e:  # Bad kernels, out of memory, bugs: report, never crash the renderer.
            result.error, result.error_kind = f'{type(e).__name__}: {e}', ERROR_INTERNAL
            result.traceback = traceback.format_exc(limit=6)
        result.timings['total'] = 1e3 * (time.perf_counter() - start)
        return result

    # ------------------------------------------------------------------------------------------
    def get_network(self, source: str, device: torch.device) -> torch.nn.Module:
        key = (source, str(device))
        G = self._networks.get(key)
        if G is None:
            G = load_generator(source, device)
            while len(self._networks) >= self._max_cached:
                self._networks.pop(next(iter(self._networks)))
            self._networks[key] = G
        return G

    def _load(self, source: str, device: torch.device, kind: str) -> torch.nn.Module:
        try:
            return self.get_network(source, device)
        except Exception as e:  # A file that breaks the builder in an unforeseen way is still a bad file.
            message = str(e) if isinstance(e, NetworkLoadError) else f'{type(e).__name__}: {e}'
            if kind == ERROR_NETWORK_B:
                message = f'network B ({source or DEMO_LABEL}): {message}'
            raise _LoadFailed(kind, message) from None

    def _render(self, args: RenderArgs, result: RenderResult) -> None:
        device, result.device_note = resolve_device(args.device)
        result.device = str(device)
        t = time.perf_counter()
        G = self._load(args.network, device, ERROR_NETWORK)
        result.a.timings['load'] = 1e3 * (time.perf_counter() - t)
        result.a.network = describe_network(G, args.network)
        result.a.layers = describe_layers(G, device, args.force_fp32)
        result.impls = implementations(device)
        view = self._view(G, args, device, result.a, result)
        if args.compare_network is not None:
            view = compose_views(view, self._view_b(args, device, result), args)
        result.image = pictures.to_uint8(pictures.as_rgb(view))

    def _view(self, G: torch.nn.Module, args: RenderArgs, device: torch.device, part: NetworkResult,
              result: RenderResult) -> torch.Tensor:
        """The picture of one network (A or B); fills part (timings, metrics, stats) and, for A, the result's ws."""
        is_a = part is result.a
        t = time.perf_counter()
        ws = compute_ws(G, args)
        if is_a:
            result.ws = ws[0].cpu().numpy().astype(np.float32)
        part.timings['mapping'] = 1e3 * (time.perf_counter() - t)
        t = time.perf_counter()
        if args.diagnostic != 'none':
            view = views.diagnostic_view(G, ws, args, part)
            part.timings['diagnostic'] = 1e3 * (time.perf_counter() - t)
            return view
        tensor, img = synthesize(G, ws, args)
        _sync(device)
        part.timings['synthesis'] = 1e3 * (time.perf_counter() - t)
        if args.eq_measure and has_input_transform(G):
            t = time.perf_counter()
            try:
                shown = None if args.untransform else img.float()  # The render as shown, before untransforming.
                views.measure_transform(G, ws, args, part, rendered=shown)
            except RequestError as e:  # E.g. moved out of view: no valid pixels. Keep the image, explain.
                part.notes.append(f'cannot measure the PSNR: {e}')
            part.timings['eq_measure'] = 1e3 * (time.perf_counter() - t)
        t = time.perf_counter()
        view = views.make_view(tensor, img, args)
        shown = tensor if args.layer else img[0]
        part.stats = views.tensor_stats(shown)
        if is_a and args.spectrum_plot:
            result.spectrum_db, result.spectrum_freqs, result.spectrum_profile_db = views.spectrum_plot_data(
                shown, args.fft_beta)
        part.timings['view'] = 1e3 * (time.perf_counter() - t)
        return view

    def _view_b(self, args: RenderArgs, device: torch.device, result: RenderResult) -> torch.Tensor:
        """Network B's picture with A's latent, truncation and motion; errors are prefixed with 'network B'."""
        result.b = part = NetworkResult()
        G = self._load(args.compare_network, device, ERROR_NETWORK_B)
        part.network = describe_network(G, args.compare_network)
        part.layers = describe_layers(G, device, args.force_fp32)
        if args.layer is not None and args.layer not in capture_points(G):
            part.notes.append(f'B has no layer {args.layer}; showing its output image')
            args = args.replace(layer=None)
        try:
            return self._view(G, args, device, part, result)
        except RequestError as e:
            raise RequestError(f'network B: {e}') from None


def compose_views(a: torch.Tensor, b: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    """A and B in one picture as args.compare_view says."""
    if args.compare_view == 'side':
        return side_by_side([a, b])
    if args.compare_view == 'split':
        return split_view(a, b, args.split_pos)
    if args.compare_view == 'diff':
        return difference_view(a, b, args.diff_gain)
    raise RequestError(f'compare view must be one of {", ".join(COMPARE_VIEWS)}, got {args.compare_view!r}')


def describe_network(G: torch.nn.Module, source: str) -> NetworkDescription:
    return NetworkDescription(source=source, label=source or DEMO_LABEL, architecture=G.architecture,
                              img_resolution=G.img_resolution, img_channels=G.img_channels, z_dim=G.z_dim,
                              c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws,
                              has_input_transform=has_input_transform(G))


def describe_layers(G: torch.nn.Module, device: torch.device, force_fp32: bool) -> list[LayerInfo]:
    """Every capture point with its output shape (batch 1), dtype, sampling rate and cutoff."""
    infos = []
    half = device.type == 'cuda' and not force_fp32
    for name, module in capture_points(G).items():
        if G.architecture == 'stylegan3':
            if name == 'input':
                shape = (1, module.channels, int(module.size[1]), int(module.size[0]))
                infos.append(LayerInfo(name, shape, 'float32', float(module.sampling_rate), float(module.bandwidth)))
                continue
            shape = (1, module.out_channels, int(module.out_size[1]), int(module.out_size[0]))
            dtype = 'float16' if half and module.use_fp16 else 'float32'
            infos.append(LayerInfo(name, shape, dtype, float(module.out_sampling_rate), float(module.out_cutoff)))
        else:
            block = getattr(G.synthesis, name.split('.')[0])
            res = block.resolution
            channels = module.out_channels
            dtype = 'float16' if half and block.use_fp16 and not name.endswith('torgb') else 'float32'
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
        ws = blended_ws(G, args.seed, latents)
    if args.mix_seed is not None and args.mix_layers:
        ws = mix_styles(G, ws, args.mix_seed, args.mix_layers, latents)
    return ws


def synthesize(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs) -> tuple[torch.Tensor, torch.Tensor]:
    """Run synthesis once; returns (selected layer output [C, H, W] or the image, image [1, C, H, W])."""
    check_noise_mode(args.noise_mode)
    points = capture_points(G)
    if args.layer is not None and args.layer not in points:
        raise RequestError(f'this network has no layer {args.layer!r}')
    matrix = views.content_transform(args)
    transformed = has_input_transform(G) and not is_identity(matrix)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        if transformed:
            stack.enter_context(input_transform(G, matrix))
        stack.enter_context(torch.random.fork_rng(devices=[ws.device] if ws.device.type == 'cuda' else []))
        torch.manual_seed(args.noise_seed)
        records = stack.enter_context(capture_layers(G, [args.layer] if args.layer else []))
        img = G.synthesis(ws, noise_mode=args.noise_mode, force_fp32=args.force_fp32)
    if transformed and args.untransform:
        img = affine_transform(img, np.linalg.inv(matrix))[0]  # Band-limited; outside the image is 0.
    tensor = records[0].tensor[0] if records else img[0]
    return tensor, img


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
