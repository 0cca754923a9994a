"""Animation paths shared by the texture-sticking diagnostics, the video command and the GUI.

An `Animation` is a sequence of frames, each a ws [1, num_ws, w_dim] plus, for
StyleGAN3, an optional 3x3 content transform (float64, image units: the image
spans [-0.5, 0.5], y points down; see transforms.py). Paths:

- `latent_animation`: keyframes from seeds, interpolated in W (`interpolate_ws`:
  'linear', 'slerp' or 'cubic' Catmull-Rom; optionally looping seamlessly);
- `translation_animation` / `rotation_animation`: a fixed w, the input transform
  moving the content a constant step per frame (the motions of the paper's
  equivariance figures, section 3);
- `truncation_animation`: one seed swept through truncation psi values;
- `slice_animation`: the motion of the slice diagnostic (GUI and command);
- `Motion`: a declarative description of any of these (the video command's).

`render_frames` turns an animation into image batches (media.compose.side_by_side
puts them together: A | B comparisons, frame | slice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from renderer.errors import RequestError
from renderer.generation import (
    Latents,
    check_seed,
    device_of,
    require_input_transform,
    synthesize_images,
    ws_from_seeds,
)
from renderer.media.progress import ProgressBar, report
from renderer.options import INTERPOLATIONS, MAX_SLICE_FRAMES, MIN_SLICE_FRAMES, SLICE_AXES, SLICE_MOTIONS
from renderer.signal.transforms import image_transform

KINDS = INTERPOLATIONS   # Interpolation kinds of interpolate_ws.
MOTIONS = ('latent', 'translate', 'rotate', 'truncation')   # Kinds of Motion.


@dataclass
class Animation:
    """Frames of an animation: ws [F, num_ws, w_dim] and, optionally, F content transforms (3x3 float64)."""
    ws: torch.Tensor
    matrices: Optional[list[np.ndarray]] = None

    def __post_init__(self) -> None:
        if self.ws.ndim != 3 or self.ws.shape[0] < 1:
            raise RequestError(f'animation ws must be [F >= 1, num_ws, w_dim], got shape {list(self.ws.shape)}')
        if self.matrices is not None:
            if len(self.matrices) != self.ws.shape[0]:
                raise RequestError(f'animation has {self.ws.shape[0]} frames of ws but {len(self.matrices)} matrices')
            self.matrices = [np.asarray(m, dtype=np.float64) for m in self.matrices]
            if any(m.shape != (3, 3) for m in self.matrices):
                raise RequestError('animation matrices must be 3x3')

    def __len__(self) -> int:
        return self.ws.shape[0]

    def frame(self, i: int) -> tuple[torch.Tensor, Optional[np.ndarray]]:
        """ws [1, num_ws, w_dim] and transform (or None) of frame i."""
        if not -len(self) <= i < len(self):
            raise IndexError(f'frame {i} out of range for an animation of {len(self)} frames')
        i = i % len(self)
        return self.ws[i:i + 1], (None if self.matrices is None else self.matrices[i])


def num_interpolated_frames(num_keys: int, frames_per_transition: int, loop: bool) -> int:
    """Frame count of interpolate_ws: K * n when looping, else (K - 1) * n + 1."""
    return num_keys * frames_per_transition if loop else (num_keys - 1) * frames_per_transition + 1


def interpolate_ws(key_ws: torch.Tensor, frames_per_transition: int, kind: str = 'cubic',
                   loop: bool = True) -> torch.Tensor:
    """Interpolate keyframes key_ws [K, ..., w_dim] along dim 0 -> [F, ..., w_dim] (same dtype and device).

    Key k is exactly (bit for bit) frame k * frames_per_transition. loop=True: F = K * n and the last
    transition returns to key 0 (frame F would be key 0 again); loop=False: F = (K - 1) * n + 1,
    ending on the last key. Kinds:
    - 'linear': straight lines between keys.
    - 'slerp': spherical interpolation of each raw w vector (last dim), the standard formula
      (sin((1-u) a) p + sin(u a) q) / sin(a) with a the angle between p and q; linear where
      sin(a) < 1e-6 (parallel vectors; antipodal ones have no unique great circle). w_avg
      is not known here, so the vectors are not taken relative to it.
    - 'cubic': uniform Catmull-Rom spline through the keys (tangent (p[k+1] - p[k-1]) / 2).
      Looping, the indices wrap, so the path is C1 across the seam; otherwise the end
      keys are repeated (end tangent (p1 - p0) / 2).
    Computed in float64.
    """
    n = int(frames_per_transition)
    if n != frames_per_transition or n < 1:
        raise RequestError(f'frames_per_transition must be an integer >= 1, got {frames_per_transition!r}')
    if kind not in KINDS:
        raise RequestError(f'unknown interpolation kind {kind!r}: expected one of {", ".join(KINDS)}')
    if key_ws.ndim < 2 or key_ws.shape[0] < 1:
        raise RequestError(f'key_ws must be [K >= 1, ..., w_dim], got shape {list(key_ws.shape)}')
    keys = key_ws.double()
    num_keys = keys.shape[0]
    num_frames = num_interpolated_frames(num_keys, n, loop)
    t = torch.arange(num_frames, dtype=torch.float64) / n
    seg = t.floor().long().clamp(max=max(num_keys - 1 if loop else num_keys - 2, 0))
    u = (t - seg).to(keys.device)

    def key(offset: int) -> torch.Tensor:
        """Key seg + offset of every frame: wrapped when looping, else the end keys repeated."""
        k = (seg + offset) % num_keys if loop else (seg + offset).clamp(0, num_keys - 1)
        return keys[k.to(keys.device)]

    p0, p1 = key(0), key(1)
    u = u.reshape([-1] + [1] * (keys.ndim - 1))
    if kind == 'linear':
        out = p0 + (p1 - p0) * u
    elif kind == 'slerp':
        out = _slerp(p0, p1, u)
    else:
        m0 = (p1 - key(-1)) / 2
        m1 = (key(2) - p0) / 2
        u2, u3 = u * u, u * u * u
        out = ((2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * m0
               + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * m1)
    out = torch.where(u == 0, p0, torch.where(u == 1, p1, out))    # keys bit-exact despite rounding
    return out.to(key_ws.dtype)


def _slerp(p: torch.Tensor, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the last-dim vectors p, q (float64) at fractions u (broadcast)."""
    norms = p.norm(dim=-1, keepdim=True) * q.norm(dim=-1, keepdim=True)
    cos = ((p * q).sum(dim=-1, keepdim=True) / norms.clamp_min(1e-300)).clamp(-1, 1)
    angle = torch.acos(cos)
    sin = torch.sin(angle)
    degenerate = sin < 1e-6
    safe_sin = torch.where(degenerate, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - u) * angle) * p + torch.sin(u * angle) * q) / safe_sin
    return torch.where(degenerate, p + (q - p) * u, spherical)


def latent_animation(G: torch.nn.Module, seeds: Sequence[int], frames_per_transition: int, kind: str = 'cubic',
                     loop: bool = True, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                     class_idx: Optional[int] = None) -> Animation:
    """Interpolation through the w of each seed (see interpolate_ws); no transforms."""
    if len(seeds) < 1:
        raise RequestError('a latent animation needs at least one seed')
    if not loop and len(seeds) < 2:
        raise RequestError('a latent animation without looping needs at least two seeds')
    key_ws = ws_from_seeds(G, seeds, truncation_psi, truncation_cutoff, class_idx)
    return Animation(interpolate_ws(key_ws, frames_per_transition, kind, loop), None)


def _repeat_ws(ws: torch.Tensor, num_frames: int) -> torch.Tensor:
    """ws [num_ws, w_dim] or [1, num_ws, w_dim] repeated to F frames; [F, num_ws, w_dim] kept as is."""
    if num_frames < 1 or int(num_frames) != num_frames:
        raise RequestError(f'num_frames must be an integer >= 1, got {num_frames!r}')
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.ndim != 3 or ws.shape[0] not in (1, num_frames):
        raise RequestError(f'ws must be [num_ws, w_dim], [1, num_ws, w_dim] or [{num_frames}, num_ws, w_dim], '
                         f'got shape {list(ws.shape)}')
    return ws.expand(int(num_frames), -1, -1).clone() if ws.shape[0] == 1 else ws


def translation_animation(ws: torch.Tensor, num_frames: int, step: tuple[float, float],
                          start: tuple[float, float] = (0.0, 0.0)) -> Animation:
    """Content translated by start + k * step (image widths; x right, y down) in frame k.

    ws: [num_ws, w_dim] or [1, num_ws, w_dim] (held still) or one per frame [F, num_ws, w_dim].
    One pixel is 1 / img_resolution image widths.
    """
    ws = _repeat_ws(ws, num_frames)
    matrices = [image_transform(translate=(start[0] + k * step[0], start[1] + k * step[1]))
                for k in range(len(ws))]
    return Animation(ws, matrices)


def rotation_animation(ws: torch.Tensor, num_frames: int, step_deg: float, start_deg: float = 0.0) -> Animation:
    """Content rotated counter-clockwise (on screen) by start_deg + k * step_deg about the image centre."""
    ws = _repeat_ws(ws, num_frames)
    return Animation(ws, [image_transform(rotate_deg=start_deg + k * step_deg) for k in range(len(ws))])


def truncation_animation(G: torch.nn.Module, seed: int, psi_values: Sequence[float],
                         truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None) -> Animation:
    """One frame per truncation psi for a fixed seed (psi 0 = w_avg, 1 = untruncated)."""
    if len(psi_values) < 1:
        raise RequestError('a truncation animation needs at least one psi value')
    for psi in psi_values:
        if not math.isfinite(float(psi)):
            raise RequestError(f'truncation psi must be finite, got {psi!r}')
    ws = torch.cat([ws_from_seeds(G, [seed], float(psi), truncation_cutoff, class_idx) for psi in psi_values])
    return Animation(ws, None)


def slice_step(axis: str, step_px: float, resolution: int) -> tuple[float, float]:
    """Per-frame translation (image widths) of a slice motion: along x for row slices, along y for column ones."""
    if axis not in SLICE_AXES:
        raise RequestError(f'unknown slice axis {axis!r}: expected "row" or "column"')
    if not math.isfinite(step_px):
        raise RequestError(f'slice step must be finite, got {step_px}')
    step = step_px / resolution
    return (step, 0.0) if axis == 'row' else (0.0, step)


def slice_animation(G: torch.nn.Module, motion: str, num_frames: int, axis: str = 'row', step_px: float = 1.0,
                    ws: Optional[torch.Tensor] = None, seed: Optional[int] = None, seed_to: Optional[int] = None,
                    kind: str = 'linear', latents: Latents = Latents(),
                    centre: tuple[float, float] = (0.0, 0.0)) -> Animation:
    """The animation of a slice diagnostic (sticking.slice_diagnostic takes one row or column of every frame).

    motion 'translate': ws [1, num_ws, w_dim] held still while the content moves step_px pixels per frame
    along the slice (x for row slices, y for column ones); the middle frame (num_frames // 2) sits at `centre`
    (image units), so it is the current view. motion 'latent': `kind` interpolation in W from `seed` to
    `seed_to` (default seed + 1) over num_frames frames.
    """
    if motion not in SLICE_MOTIONS:
        raise RequestError(f'slice motion must be one of {", ".join(SLICE_MOTIONS)}, got {motion!r}')
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or \
            not MIN_SLICE_FRAMES <= num_frames <= MAX_SLICE_FRAMES:
        raise RequestError(f'slice frames must lie in [{MIN_SLICE_FRAMES}, {MAX_SLICE_FRAMES}], got {num_frames}')
    num_frames = int(num_frames)
    if motion == 'latent':
        if seed is None:
            raise RequestError('the latent-interpolation slice works from a seed; clear the loaded w first')
        seed_to = seed + 1 if seed_to is None else seed_to
        check_seed(seed_to, 'end seed')
        return Animation(interpolate_ws(latents.ws(G, [seed, seed_to]), num_frames - 1, kind, loop=False))
    require_input_transform(G, 'a translation slice', 'use the latent motion instead')
    if ws is None:
        if seed is None:
            raise RequestError('a translation slice needs a seed or ws')
        ws = latents.ws(G, [seed])
    step = slice_step(axis, step_px, G.img_resolution)
    half = num_frames // 2
    start = (centre[0] - half * step[0], centre[1] - half * step[1])
    return translation_animation(ws, num_frames, step=step, start=start)


@dataclass(frozen=True)
class Motion:
    """An animation path, built for each network by `animation(G)`; fields unused by a kind are ignored."""
    kind: str = 'latent'                                 # One of MOTIONS.
    seeds: tuple[int, ...] = (0, 1, 2, 3)                # latent: keyframes; the others use seeds[0].
    frames_per_transition: int = 60                      # latent: frames from one keyframe to the next.
    interpolation: str = 'cubic'                         # latent: 'cubic', 'linear' or 'slerp'.
    loop: bool = True                                    # latent: return to the first keyframe.
    num_frames: int = 120                                # translate, rotate.
    step_px: tuple[float, float] = (1.0, 0.0)            # translate: (x right, y down) per frame, pixels of A.
    start_px: tuple[float, float] = (0.0, 0.0)           # translate: offset of frame 0, pixels of A.
    step_deg: float = 1.0                                # rotate: counter-clockwise degrees per frame.
    start_deg: float = 0.0                               # rotate: angle of frame 0.
    psi_values: tuple[float, ...] = (0.0, 1.0)           # truncation: psi of each frame.
    latents: Latents = Latents()

    def __post_init__(self) -> None:
        if self.kind not in MOTIONS:
            raise RequestError(f'unknown motion {self.kind!r}: expected one of {", ".join(MOTIONS)}')
        if not self.seeds:
            raise RequestError('a motion needs at least one seed')
        for seed in self.seeds:
            check_seed(seed)
        if self.kind in ('translate', 'rotate') and len(self.seeds) != 1:
            raise RequestError(f'{self.kind} takes one seed, got {len(self.seeds)}: {list(self.seeds)}')
        values = [*self.step_px, *self.start_px, self.step_deg, self.start_deg, *self.psi_values]
        if not all(math.isfinite(v) for v in values):
            raise RequestError(f'motion steps, offsets and psi values must be finite, got {values}')

    @property
    def moves_input(self) -> bool:
        """Whether the motion needs StyleGAN3's input transform."""
        return self.kind in ('translate', 'rotate')

    def animation(self, G: torch.nn.Module, pixels_per_width: Optional[int] = None) -> Animation:
        """The frames for G; pixel steps are 1 / pixels_per_width image widths (default G's resolution)."""
        latents = self.latents
        if self.kind == 'latent':
            return latent_animation(G, self.seeds, self.frames_per_transition, self.interpolation, self.loop,
                                    latents.truncation_psi, latents.truncation_cutoff, latents.class_idx)
        if self.kind == 'truncation':
            return truncation_animation(G, self.seeds[0], self.psi_values, latents.truncation_cutoff,
                                        latents.class_idx)
        ws = latents.ws(G, self.seeds[:1])
        if self.kind == 'rotate':
            return rotation_animation(ws, self.num_frames, self.step_deg, self.start_deg)
        unit = 1 / (pixels_per_width or G.img_resolution)
        return translation_animation(ws, self.num_frames, (self.step_px[0] * unit, self.step_px[1] * unit),
                                     (self.start_px[0] * unit, self.start_px[1] * unit))


def _chunks(animation: Animation, batch: int) -> Iterator[tuple[int, int]]:
    """[start, stop) frame ranges of at most `batch` frames sharing one transform."""
    start = 0
    while start < len(animation):
        stop = start + 1
        while (stop < len(animation) and stop - start < batch and
               (animation.matrices is None or np.array_equal(animation.matrices[stop], animation.matrices[start]))):
            stop += 1
        yield start, stop
        start = stop


def render_frames(G: torch.nn.Module, animation: Animation, batch: int = 8, noise_mode: str = 'const',
                  progress: Optional[ProgressBar] = None) -> Iterator[torch.Tensor]:
    """Yield the frames as float32 [B, C, H, W] batches in [-1, 1], in frame order.

    The input transform is one buffer per network, so frames are batched only while
    their matrices are equal (a translation renders one frame at a time). `progress`
    is updated with the number of frames done. ValueError for transforms on a network
    without an input transform (StyleGAN2).
    """
    if int(batch) != batch or batch < 1:
        raise RequestError(f'batch must be an integer >= 1, got {batch!r}')
    if animation.matrices is not None:
        require_input_transform(G, 'an animation that moves the image')
    device = device_of(G)
    for start, stop in _chunks(animation, int(batch)):
        matrix = None if animation.matrices is None else animation.matrices[start]
        yield synthesize_images(G, animation.ws[start:stop].to(device), matrix, noise_mode)
        if progress is not None:
            progress.update(stop)
        else:
            report('frames', stop, len(animation))

