"""The renderer: a pure function of `RenderArgs` returning a `RenderResult` (no GL, no GUI).

`Renderer.render(args)` loads (and caches) the network, maps the latent,
applies style mixing and the input transform, runs synthesis once while
capturing the chosen layer, and turns the result into a displayable image,
optionally its power spectrum. Every failure becomes `RenderResult.error`
text; `render` itself never raises for bad arguments or bad files.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from typing import Optional

import numpy as np
import torch

from . import imaging
from .band_limited import affine_transform
from .demo import DEMO_LABEL
from .generation import has_input_transform, input_transform, load_generator
from .latents import check_seed, latent_from_seed, one_hot_label
from .networks.capture import capture_layers, capture_points
from .compose import difference_view, side_by_side, split_view
from .diagnostic_views import diagnostic_view, measure_transform, spectrum_plot_data
from .render_args import COMPARE_VIEWS, DEVICES, NOISE_MODES, LayerInfo, RenderArgs, RenderResult
from .transforms import image_transform, is_identity


class RenderError(ValueError):
    """A render argument that cannot be honoured; its message is shown to the user."""


def resolve_device(name: str) -> tuple[torch.device, Optional[str]]:
    """Device for 'auto', 'cpu', 'cuda' or 'mps', falling back CUDA -> MPS -> CPU; returns (device, note)."""
    if name not in DEVICES:
        raise RenderError(f'unknown device {name!r}; choose one of {", ".join(DEVICES)}')
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()
    if name == 'cuda' and not cuda or name == 'mps' and not mps:
        fallback = 'mps' if mps else 'cpu'
        return torch.device(fallback), f'{name} is not available here; rendering on {fallback}'
    if name == 'auto':
        return torch.device('cuda' if cuda else 'mps' if mps else 'cpu'), None
    return torch.device(name), None


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
        except RenderError as e:
            result.error = str(e)
        except Exception as e:  # Bad files, kernels, out of memory: report, never crash the renderer.
            result.error = f'{type(e).__name__}: {e}'
            result.network.setdefault('traceback', traceback.format_exc(limit=6))
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

    def _render(self, args: RenderArgs, result: RenderResult) -> None:
        device, note = resolve_device(args.device)
        if note:
            result.network['device_note'] = note
        result.device = str(device)
        t = time.perf_counter()
        G = self.get_network(args.network, device)
        result.timings['load'] = 1e3 * (time.perf_counter() - t)
        result.network.update(describe_network(G, args.network))
        result.layers = describe_layers(G, device, args.force_fp32)
        result.impls = implementations(device)
        view = self._view(G, args, device, result)
        if args.compare_network is not None:
            view = compose_views(view, self._view_b(args, device, result), args)
        result.image = imaging.to_uint8(imaging.to_rgb(view))

    def _view(self, G: torch.nn.Module, args: RenderArgs, device: torch.device, result: RenderResult,
              suffix: str = '') -> torch.Tensor:
        """The picture of one network (A, or B with suffix '_b'); fills timings, metrics and, for A, stats."""
        t = time.perf_counter()
        ws = compute_ws(G, args, device)
        if not suffix:
            result.ws = ws[0].cpu().numpy().astype(np.float32)
        result.timings['mapping' + suffix] = 1e3 * (time.perf_counter() - t)
        t = time.perf_counter()
        if args.diagnostic != 'none':
            try:
                view = diagnostic_view(G, ws, args, result.metrics, suffix)
            except ValueError as e:  # DiagnosticError and bad values found by the diagnostics library.
                raise RenderError(str(e)) from None
            result.timings['diagnostic' + suffix] = 1e3 * (time.perf_counter() - t)
            return view
        tensor, img = synthesize(G, ws, args)
        _sync(device)
        result.timings['synthesis' + suffix] = 1e3 * (time.perf_counter() - t)
        if args.eq_measure and has_input_transform(G):
            t = time.perf_counter()
            try:
                shown = None if args.untransform else img.float()  # The render as shown, before untransforming.
                measure_transform(G, ws, args, result.metrics, suffix, rendered=shown)
            except ValueError as e:  # E.g. moved out of view: no valid pixels. Keep the image, explain.
                result.notes.append(f'{"B" if suffix else "A"}: cannot measure the PSNR: {e}')
            result.timings['eq_measure' + suffix] = 1e3 * (time.perf_counter() - t)
        t = time.perf_counter()
        view = make_view(tensor, img, args)
        if not suffix:
            shown = tensor if args.layer else img[0]
            result.stats = tensor_stats(shown)
            if args.spectrum_plot:
                result.spectrum_db, result.spectrum_freqs, result.spectrum_profile_db = spectrum_plot_data(
                    shown, args.fft_beta)
        result.timings['view' + suffix] = 1e3 * (time.perf_counter() - t)
        return view

    def _view_b(self, args: RenderArgs, device: torch.device, result: RenderResult) -> torch.Tensor:
        """Network B's picture with A's latent, truncation and motion; errors are prefixed with 'network B'."""
        label = args.compare_network or DEMO_LABEL
        try:
            G = self.get_network(args.compare_network, device)
        except Exception as e:
            raise RenderError(f'network B ({label}): {e}') from None
        result.compare = describe_network(G, args.compare_network)
        if args.layer is not None and args.layer not in capture_points(G):
            result.compare['note'] = f'B has no layer {args.layer}; showing its output image'
            args = args.replace(layer=None)
        try:
            return self._view(G, args, device, result, '_b')
        except RenderError as e:
            raise RenderError(f'network B: {e}') from None


def compose_views(a: torch.Tensor, b: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    """A and B in one picture as args.compare_view says."""
    if args.compare_view == 'side':
        return side_by_side([a, b])
    try:
        if args.compare_view == 'split':
            return split_view(a, b, args.split_pos)
        if args.compare_view == 'diff':
            return difference_view(a, b, args.diff_gain)
    except ValueError as e:
        raise RenderError(str(e)) from None
    raise RenderError(f'compare view must be one of {", ".join(COMPARE_VIEWS)}, got {args.compare_view!r}')


def describe_network(G: torch.nn.Module, source: str) -> dict:
    has_transform = has_input_transform(G)
    return dict(source=source, label=source or DEMO_LABEL, architecture=G.architecture,
                img_resolution=G.img_resolution, img_channels=G.img_channels, z_dim=G.z_dim, c_dim=G.c_dim,
                w_dim=G.w_dim, num_ws=G.num_ws, has_input_transform=has_transform)


def implementations(device: torch.device) -> dict[str, str]:
    """Which implementation each op uses on this device ('ref' or 'cuda')."""
    from . import ops
    status = getattr(ops, 'implementation_status', None)
    if device.type != 'cuda' or status is None:
        return {name: 'ref' for name in ('bias_act', 'upfirdn2d', 'filtered_lrelu')}
    return {name: info['impl'] for name, info in status().items()}


def compute_ws(G: torch.nn.Module, args: RenderArgs, device: torch.device) -> torch.Tensor:
    """ws [1, num_ws, w_dim] from seed (fractional blend) or an explicit w, with truncation and mixing."""
    c = label_tensor(G, args.class_idx, device)
    if args.truncation_cutoff is not None and not 0 <= args.truncation_cutoff <= G.num_ws:
        raise RenderError(f'truncation cutoff must lie in [0, {G.num_ws}], got {args.truncation_cutoff}')
    if not math.isfinite(args.truncation_psi):
        raise RenderError(f'truncation psi must be finite, got {args.truncation_psi}')

    def mapped(seed: int) -> torch.Tensor:
        z = latent_from_seed(seed, G.z_dim).to(device)
        return G.mapping(z, c, truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff)

    if args.w is not None:
        ws = explicit_ws(G, args.w, device)
    else:
        if not math.isfinite(args.seed):
            raise RenderError(f'seed must be a finite number, got {args.seed}')
        base = math.floor(args.seed)
        frac = args.seed - base
        _checked_seed(base)
        if frac > 0:
            _checked_seed(base + 1)
        ws = mapped(base)
        if frac > 0:
            ws = ws.lerp(mapped(base + 1), frac)
    if args.mix_seed is not None and args.mix_layers:
        bad = [i for i in args.mix_layers if not 0 <= i < G.num_ws]
        if bad:
            raise RenderError(f'style-mixing layers {bad} out of range [0, {G.num_ws})')
        _checked_seed(args.mix_seed, 'mix ')
        idx = list(args.mix_layers)
        ws = ws.clone()
        ws[:, idx] = mapped(args.mix_seed)[:, idx]
    return ws


def _checked_seed(seed: int, what: str = '') -> int:
    try:
        return check_seed(seed)
    except ValueError as e:
        raise RenderError(f'{what}{e}') from None


def label_tensor(G: torch.nn.Module, class_idx: Optional[int], device: torch.device) -> torch.Tensor:
    try:
        return one_hot_label(G.c_dim, 0 if class_idx is None else class_idx, device)
    except ValueError as e:
        raise RenderError(str(e)) from None


def explicit_ws(G: torch.nn.Module, w: tuple, device: torch.device) -> torch.Tensor:
    values = torch.as_tensor(np.asarray(w, dtype=np.float32), device=device)
    if values.numel() == G.w_dim:
        return values.reshape(1, 1, G.w_dim).repeat(1, G.num_ws, 1)
    if values.numel() == G.num_ws * G.w_dim:
        return values.reshape(1, G.num_ws, G.w_dim)
    raise RenderError(f'w has {values.numel()} values; this network needs {G.w_dim} or '
                      f'{G.num_ws} x {G.w_dim} = {G.num_ws * G.w_dim}')


def synthesize(G: torch.nn.Module, ws: torch.Tensor, args: RenderArgs) -> tuple[torch.Tensor, torch.Tensor]:
    """Run synthesis once; returns (selected layer output [C, H, W] or the image, image [1, C, H, W])."""
    if args.noise_mode not in NOISE_MODES:
        raise RenderError(f'noise mode must be one of {", ".join(NOISE_MODES)}, got {args.noise_mode!r}')
    points = capture_points(G)
    if args.layer is not None and args.layer not in points:
        raise RenderError(f'this network has no layer {args.layer!r}')
    try:
        matrix = image_transform(args.translate, args.rotate, args.scale, args.shear, args.mirror)
    except ValueError as e:
        raise RenderError(str(e)) from None
    transformed = G.architecture == 'stylegan3' and not is_identity(matrix)
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


def make_view(tensor: torch.Tensor, img: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    """The [1 or 3, H, W] picture in [-1, 1] to display: the image, feature channels or a spectrum."""
    if args.layer is None and not args.fft:
        return img[0].float()
    try:
        selected = imaging.select_channels(tensor, args.channel_base, args.num_channels)
        if args.fft:
            source = tensor if args.fft_all_channels else selected
            return imaging.spectrum_view(imaging.power_spectrum_db(source.float(), args.fft_beta), args.fft_range_db)
    except ValueError as e:
        raise RenderError(str(e)) from None
    if args.layer is None:
        return selected.float()
    return imaging.feature_view(selected, args.normalize, args.gain_db)


def tensor_stats(x: torch.Tensor) -> dict[str, float]:
    x = x.float()
    return dict(mean=x.mean().item(), std=x.std().item() if x.numel() > 1 else 0.0,
                min=x.min().item(), max=x.max().item())


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
