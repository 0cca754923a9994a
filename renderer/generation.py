"""The one path from a latent to an image, shared by the renderer, the diagnostics and the commands.

    seed -> z (numpy RandomState(seed).randn, as in the published tools)
    class -> c (one-hot; zeros [N, 0] for unconditional networks)
    (z, c) -> ws = G.mapping(z, c, truncation)      ws_from_z, ws_from_seeds, blended_ws
    ws -> image = G.synthesis(ws)                    synthesize_images (optionally moved by a transform)
    precision ('fp32', 'bf16', 'fp16', 'auto')       check_precision, choose_precision (what 'auto' picks)

Conventions: z [N, z_dim] float32; ws [N, num_ws, w_dim]; images float [N, C, H, W]
in [-1, 1]. A transform `matrix` is a 3x3 float64 array moving the *image content*
in image units ([-0.5, 0.5], y down; see renderer.signal.transforms). Only StyleGAN3
has an input transform; `require_input_transform` is the one check for it. Every
bad value raises `RequestError` with a message meant for the user.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from renderer.errors import RequestError
from renderer.networks.precision import unsupported_reason, used_precision
from renderer.options import MAX_SEED, NOISE_MODES, PRECISION_FLOOR_DB, PRECISIONS, SEED_ROW_STEP
from renderer.signal.transforms import is_identity

DEMO_SOURCE = 'demo'                        # Network name of the built-in demo network ('' means it too).


# ----------------------------------------------------------------------------------------------------
# Seeds, latents and labels.

def check_seed(seed: int, what: str = 'seed') -> int:
    """seed as an int in [0, MAX_SEED]; RequestError naming `what` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, float, np.integer, np.floating)) \
            or not math.isfinite(seed) or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise RequestError(f'{what} must be an integer in [0, {MAX_SEED}], got {seed!r}')
    return int(seed)


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; RequestError for malformed text, empty or descending ranges."""
    seeds = []
    for part in text.split(','):
        part = part.strip()
        lo, sep, hi = part.partition('-')
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise RequestError(f'invalid seed list {text!r}: expected e.g. "0-3,7"') from None
        if last < first:
            raise RequestError(f'invalid seed range {part!r} in {text!r}: the range is empty (write {last}-{first})')
        seeds.extend(range(first, last + 1))
    for seed in seeds:
        check_seed(seed)
    return seeds


def latent_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The z [1, z_dim] (float32) of a seed."""
    return torch.from_numpy(np.random.RandomState(check_seed(seed)).randn(1, z_dim)).float()


def one_hot_label(c_dim: int, class_idx: int, device: torch.device = torch.device('cpu')) -> torch.Tensor:
    """The label c [1, c_dim] of a class (zeros [1, 0] for unconditional networks)."""
    c = torch.zeros([1, c_dim], device=device)
    if c_dim == 0:
        return c
    if isinstance(class_idx, bool) or int(class_idx) != class_idx or not 0 <= class_idx < c_dim:
        raise RequestError(f'class {class_idx} out of range: this network has {c_dim} classes (0-{c_dim - 1})')
    c[0, int(class_idx)] = 1
    return c


def labels(G: torch.nn.Module, class_idx: Optional[int], n: int = 1) -> torch.Tensor:
    """c [n, c_dim] on G's device: class_idx (None: class 0) for conditional networks, empty otherwise."""
    return one_hot_label(G.c_dim, 0 if class_idx is None else class_idx, device_of(G)).expand(n, -1)


def check_class(G: torch.nn.Module, class_idx: Optional[int]) -> None:
    """A class given for an unconditional network is a mistake worth saying (commands use it)."""
    if class_idx is not None and not G.c_dim:
        raise RequestError(f'this network is unconditional: it takes no class (got class {class_idx})')
    labels(G, class_idx)


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise RequestError(f'noise mode must be one of {", ".join(NOISE_MODES)}, got {noise_mode!r}')
    return noise_mode


def check_truncation(G: torch.nn.Module, truncation_psi: float, truncation_cutoff: Optional[int]) -> None:
    if not isinstance(truncation_psi, (int, float)) or not math.isfinite(truncation_psi):
        raise RequestError(f'truncation psi must be a finite number, got {truncation_psi!r}')
    if truncation_cutoff is not None and (isinstance(truncation_cutoff, bool) or int(truncation_cutoff) !=
                                          truncation_cutoff or not 0 <= truncation_cutoff <= G.num_ws):
        raise RequestError(f'truncation cutoff must be an integer in [0, {G.num_ws}], got {truncation_cutoff!r}')


# ----------------------------------------------------------------------------------------------------
# Mapping: (z, c) -> ws.

@torch.no_grad()
def ws_from_z(G: torch.nn.Module, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
              truncation_cutoff: Optional[int] = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] on G's device for z [N, z_dim] and labels c [N, c_dim] (None: class 0)."""
    check_truncation(G, truncation_psi, truncation_cutoff)
    device = device_of(G)
    c = labels(G, None, len(z)) if c is None else c
    return G.mapping(z.to(device), c.to(device), truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def ws_from_seeds(G: torch.nn.Module, seeds: Sequence[int], truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] on G's device; z of each seed as in the published tools."""
    z = torch.cat([latent_from_seed(seed, G.z_dim) for seed in seeds])
    return ws_from_z(G, z, labels(G, class_idx, len(seeds)), truncation_psi, truncation_cutoff)


@dataclass(frozen=True)
class Latents:
    """How seeds become ws: truncation and class (shared by animations, videos and commands)."""
    truncation_psi: float = 1.0
    truncation_cutoff: Optional[int] = None   # Truncate only the first N ws (None: all).
    class_idx: Optional[int] = None           # Class of conditional networks (None: class 0).

    def ws(self, G: torch.nn.Module, seeds: Sequence[int]) -> torch.Tensor:
        return ws_from_seeds(G, seeds, self.truncation_psi, self.truncation_cutoff, self.class_idx)


def blended_ws(G: torch.nn.Module, seed: float, latents: Latents = Latents(), seed_y: float = 0.0) -> torch.Tensor:
    """ws [1, num_ws, w_dim] at a point (seed, seed_y) of the latent plane.

    Grid point (i, j) is the seed (i + j * SEED_ROW_STEP) mod 2**32; between grid points the ws of the
    four corners are blended bilinearly. With seed_y = 0 this is the 1-D blend of floor(seed) towards
    floor(seed) + 1 (exactly the seed's ws at whole seeds)."""
    for name, value in (('seed', seed), ('seed y', seed_y)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RequestError(f'{name} must be a finite number, got {value!r}')
    x0, y0 = math.floor(seed), math.floor(seed_y)
    fx, fy = seed - x0, seed_y - y0
    check_seed(x0)
    if not 0 <= y0 <= MAX_SEED:
        raise RequestError(f'seed y must lie in [0, {MAX_SEED}], got {seed_y!r}')
    total = None
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        if weight == 0:
            continue
        if dx:
            check_seed(x0 + 1)
        term = latents.ws(G, [(x0 + dx + (y0 + dy) * SEED_ROW_STEP) % (MAX_SEED + 1)]) * weight
        total = term if total is None else total + term
    return total


def explicit_ws(G: torch.nn.Module, w: Sequence[float]) -> torch.Tensor:
    """ws [1, num_ws, w_dim] from a flat w of w_dim values (broadcast) or num_ws * w_dim values."""
    values = torch.as_tensor(np.asarray(w, dtype=np.float32), device=device_of(G))
    if values.numel() == G.w_dim:
        return values.reshape(1, 1, G.w_dim).repeat(1, G.num_ws, 1)
    if values.numel() == G.num_ws * G.w_dim:
        return values.reshape(1, G.num_ws, G.w_dim)
    raise RequestError(f'w has {values.numel()} values; this network needs {G.w_dim} or '
                       f'{G.num_ws} x {G.w_dim} = {G.num_ws * G.w_dim}')


def mix_styles(G: torch.nn.Module, ws: torch.Tensor, mix_seed: int, layers: Sequence[int],
               latents: Latents = Latents()) -> torch.Tensor:
    """ws with the entries `layers` (indices into num_ws) replaced by those of mix_seed's w."""
    bad = [i for i in layers if not 0 <= i < G.num_ws]
    if bad:
        raise RequestError(f'style-mixing layers {bad} out of range [0, {G.num_ws})')
    check_seed(mix_seed, 'mix seed')
    idx = list(layers)
    mixed = ws.clone()
    mixed[:, idx] = latents.ws(G, [mix_seed])[:, idx]
    return mixed


# ----------------------------------------------------------------------------------------------------
# Synthesis: ws -> images.

def has_input_transform(G: torch.nn.Module) -> bool:
    return getattr(G, 'architecture', None) == 'stylegan3'


def require_input_transform(G: torch.nn.Module, what: str, hint: str = '') -> None:
    """The one check that G can be moved at the input: RequestError naming `what` (and a `hint`) otherwise."""
    if not has_input_transform(G):
        arch = getattr(G, 'architecture', 'unknown architecture')
        raise RequestError(f'{what}: this network ({arch}) has no input transform; only StyleGAN3 networks can be '
                           f'translated or rotated at the input{f" ({hint})" if hint else ""}')


def device_of(G: torch.nn.Module) -> torch.device:
    return next(G.buffers()).device


@contextlib.contextmanager
def input_transform(G: torch.nn.Module, matrix: np.ndarray) -> Iterator[None]:
    """Temporarily set StyleGAN3's input transform to inv(matrix) (the image is moved by matrix)."""
    require_input_transform(G, 'moving the image')
    buffer = G.synthesis.input.transform
    saved = buffer.clone()
    try:
        buffer.copy_(torch.as_tensor(np.linalg.inv(matrix), dtype=buffer.dtype))
        yield
    finally:
        buffer.copy_(saved)


@torch.no_grad()
def synthesize_images(G: torch.nn.Module, ws: torch.Tensor, matrix: Optional[np.ndarray] = None,
                      noise_mode: str = 'const', force_fp32: bool = True,
                      precision: Optional[str] = None) -> torch.Tensor:
    """Images [N, C, H, W] (float32) for ws [N, num_ws, w_dim], content moved by `matrix` if given.

    `precision` ('fp32', 'bf16', 'fp16'; see renderer.networks.precision) overrides force_fp32; without it
    force_fp32 says fp32 (the default: metrics are float32) or the published mixed precision. fp32 and
    fp16 are asked for through the published interface (force_fp32), only bf16 through `precision`."""
    check_noise_mode(noise_mode)
    if precision in (None, 'fp32', 'fp16'):
        how = dict(force_fp32=force_fp32 if precision is None else precision == 'fp32')
    else:
        how = dict(precision=precision)
    with contextlib.ExitStack() as stack:
        if matrix is not None and not is_identity(matrix):
            stack.enter_context(input_transform(G, matrix))
        return G.synthesis(ws, noise_mode=noise_mode, **how).float()


# ----------------------------------------------------------------------------------------------------
# Precision: which one to compute in, and what 'auto' picks.

def check_precision(precision: str, device: torch.device, what: str = 'precision') -> str:
    """precision if it is one of PRECISIONS and can run on `device`; RequestError naming `what` otherwise."""
    if precision not in PRECISIONS:
        raise RequestError(f'{what} must be one of {", ".join(PRECISIONS)}, got {precision!r}')
    reason = unsupported_reason(precision, device)
    if reason is not None:
        raise RequestError(f'{what} {precision}: {reason}')
    return precision


def image_psnr_db(image: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of images [N, C, H, W] in [-1, 1] (peak-to-peak 2) against a reference; inf if equal."""
    mse = float((image.double() - reference.double()).square().mean())
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


@dataclass(frozen=True)
class PrecisionChoice:
    """What choose_precision measured and picked."""
    precision: str                                           # 'fp32', 'bf16' or 'fp16'.
    reason: str                                              # One line for the user.
    ms: dict[str, float] = field(default_factory=dict)       # Milliseconds per image at batch 1, by precision.
    psnr_db: dict[str, float] = field(default_factory=dict)  # PSNR of each reduced precision against fp32.


def _best_ms(run: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> tuple[torch.Tensor, float]:
    """(the output of the last run, the fastest of `repeats` runs in ms), synchronising CUDA around each."""
    best, out = math.inf, None
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        best = min(best, 1e3 * (time.perf_counter() - start))
    return out, best


@torch.no_grad()
def choose_precision(G: torch.nn.Module, floor_db: float = PRECISION_FLOOR_DB, seed: int = 0,
                     repeats: int = 2) -> PrecisionChoice:
    """'auto': the fastest precision on G's device whose image keeps `floor_db` PSNR against float32.

    Candidates: fp16 on CUDA, bf16 where this device runs it (renderer.networks.precision), always fp32.
    Each is timed on seed `seed` at batch 1 (the best of `repeats` runs, after a float32 warm-up that
    also renders the reference); a reduced precision must be faster than float32 and keep the floor.
    Costs 1 + repeats * (1 + candidates) renders, once per network.
    """
    device = device_of(G)
    candidates = [p for p in ('fp16', 'bf16')
                  if unsupported_reason(p, device) is None and used_precision(G, p, device) == p]
    if not candidates:
        return PrecisionChoice('fp32', f'auto chose fp32: no reduced precision runs this network on {device.type}')
    ws = ws_from_seeds(G, [seed])
    reference = synthesize_images(G, ws, precision='fp32')
    _, fp32_ms = _best_ms(lambda: synthesize_images(G, ws, precision='fp32'), device, repeats)
    ms, psnr = {'fp32': fp32_ms}, {}
    for p in candidates:
        image, ms[p] = _best_ms(lambda p=p: synthesize_images(G, ws, precision=p), device, repeats)
        psnr[p] = image_psnr_db(image, reference)
    passing = [p for p in candidates if psnr[p] >= floor_db and ms[p] < fp32_ms]
    best = min(passing, key=ms.__getitem__, default='fp32')
    measured = ', '.join([f'fp32 {fp32_ms:.0f} ms'] + [f'{p} {ms[p]:.0f} ms at {psnr[p]:.1f} dB' for p in candidates])
    return PrecisionChoice(best, f'auto chose {best}: {measured} per image (the floor is {floor_db:g} dB)', ms, psnr)


def load_generator(source: str, device: torch.device = torch.device('cpu')) -> torch.nn.Module:
    """Network from a path or URL ('' or 'demo': the built-in demo), in eval mode without gradients."""
    if source in ('', DEMO_SOURCE):
        from renderer.io.demo import demo_network
        G = demo_network().to(device)
    else:
        from renderer.io.loading import load_network
        G = load_network(source, device=device)
    return G.eval().requires_grad_(False)
