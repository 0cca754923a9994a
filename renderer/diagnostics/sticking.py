"""The two texture-sticking diagnostics of "Alias-Free Generative Adversarial Networks"
(Karras et al. 2021, section 1 and Figure 1).

- Averaged image: images generated from small random perturbations of one latent
  are averaged. Details should move with the content, so the average should be
  uniformly blurry; detail that stays sharp in it is stuck to the pixel grid.
- Slice: one row (or column) of pixels is taken from every frame of an animation
  and the slices are stacked, time running down (or right). When the content
  moves, details should trace curves; stuck details trace straight streaks along
  the time axis. Under a translation of one pixel per frame a perfectly
  equivariant network draws 45-degree streaks.

The animations of the slice come from renderer.motion.slice_animation; the command
is renderer.commands.sticking, the GUI view renderer.live.views.
"""

from __future__ import annotations

import collections
import math
from typing import Iterator, Optional

import torch

from renderer.errors import RequestError
from renderer.generation import Latents, labels, latent_from_seed, ws_from_z
from renderer.media.progress import ProgressBar
from renderer.motion import Animation, render_frames
from renderer.options import SLICE_AXES as AXES

DEFAULT_SIGMA = 0.2   # z units; see perturbed_ws.


def _last(steps: Iterator[tuple]) -> tuple:
    """The final step of a step-by-step computation."""
    return collections.deque(steps, maxlen=1)[0]


# ----------------------------------------------------------------------------
# Averaged image.

@torch.no_grad()
def perturbed_ws(G: torch.nn.Module, seed: int, num_samples: int, sigma: float, perturb_seed: int = 0,
                 truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None,
                 class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [num_samples + 1, num_ws, w_dim]: row 0 from z(seed), row i > 0 from z(seed) + sigma * n_i.

    n_i ~ N(0, I) [z_dim] from a torch.Generator seeded with perturb_seed (CPU, float32).
    sigma is in z units: z ~ N(0, I), so sigma = 0.2 moves every coordinate by a fifth of
    its spread, a perturbation of norm ~0.2 * sqrt(z_dim) (about 11 degrees of arc in z): the
    images stay recognisably the same while their details move.
    """
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise RequestError(f'num_samples must be an integer >= 1, got {num_samples!r}')
    if not (math.isfinite(sigma) and sigma >= 0):
        raise RequestError(f'sigma must be finite and >= 0, got {sigma!r}')
    latents = Latents(truncation_psi, truncation_cutoff, class_idx)
    central = latents.ws(G, [seed])
    generator = torch.Generator().manual_seed(int(perturb_seed))
    noise = torch.randn([int(num_samples), G.z_dim], generator=generator)
    z = latent_from_seed(seed, G.z_dim) + sigma * noise
    ws = ws_from_z(G, z, labels(G, class_idx, len(z)), truncation_psi, truncation_cutoff)
    return torch.cat([central, ws])


@torch.no_grad()
def averaged_image(G: torch.nn.Module, ws: torch.Tensor, batch: int = 8, noise_mode: str = 'const',
                   progress: Optional[ProgressBar] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image of ws[0], mean image over all rows of ws), each float32 [C, H, W] in [-1, 1].

    The mean is accumulated in float64. Rendered with G's current input transform.
    """
    central, mean, _ = _last(averaged_image_steps(G, ws, batch, noise_mode, progress))
    return central, mean


@torch.no_grad()
def averaged_image_steps(G: torch.nn.Module, ws: torch.Tensor, batch: int = 8, noise_mode: str = 'const',
                         progress: Optional[ProgressBar] = None
                         ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The averaged image forming: after each batch, (central image, mean of the images so far, their count).

    The last step is averaged_image's result; the mean after N images is exactly the float64 mean of
    those N (cast to float32)."""
    if ws.ndim != 3 or len(ws) < 1:
        raise RequestError(f'ws must be [N >= 1, num_ws, w_dim], got shape {list(ws.shape)}')
    total = central = None
    count = 0
    for images in render_frames(G, Animation(ws), batch, noise_mode, progress):
        if central is None:
            central = images[0].clone()
            total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
        total += images.double().sum(dim=0)
        count += len(images)
        yield central, (total / count).float(), count


# ----------------------------------------------------------------------------
# Slices.

def check_slice_index(axis: str, index: int, height: int, width: int) -> None:
    if axis not in AXES:
        raise RequestError(f'unknown slice axis {axis!r}: expected "row" or "column"')
    size = height if axis == 'row' else width
    if int(index) != index or not 0 <= index < size:
        raise RequestError(f'{axis} index {index!r} out of range: the image has {size} {axis}s (0-{size - 1})')


def take_slice(frames: torch.Tensor, axis: str, index: int) -> torch.Tensor:
    """Stack one row or column of each frame of frames [F, C, H, W].

    axis 'row': [C, F, W], row `index` of frame k is row k (time runs down).
    axis 'column': [C, H, F], column `index` of frame k is column k (time runs right).
    """
    if frames.ndim != 4:
        raise RequestError(f'frames must be [F, C, H, W], got shape {list(frames.shape)}')
    check_slice_index(axis, index, frames.shape[2], frames.shape[3])
    if axis == 'row':
        return frames[:, :, index, :].permute(1, 0, 2)
    return frames[:, :, :, index].permute(1, 2, 0)


class SliceAccumulator:
    """A slice image (see take_slice) grown batch by batch, for slice videos and the GUI.

    With num_frames given, image() has that many rows (columns), the ones not yet
    added set to `fill`; otherwise it has as many as were added.
    """

    def __init__(self, axis: str, index: int, num_frames: Optional[int] = None):
        if axis not in AXES:
            raise RequestError(f'unknown slice axis {axis!r}: expected "row" or "column"')
        if num_frames is not None and (int(num_frames) != num_frames or num_frames < 1):
            raise RequestError(f'num_frames must be an integer >= 1, got {num_frames!r}')
        self.axis, self.index, self.num_frames = axis, index, num_frames
        self.count = 0                   # Frames added so far.
        self._parts: list[torch.Tensor] = []
        self._time_dim = 1 if axis == 'row' else 2

    def __len__(self) -> int:
        return self.count

    def add(self, frames: torch.Tensor) -> None:
        """Append frames [B, C, H, W] (the next B frames in time)."""
        part = take_slice(frames, self.axis, self.index).float().clone()
        if self._parts:
            expected = list(self._parts[0].shape)
            expected[self._time_dim] = part.shape[self._time_dim]
        if self._parts and list(part.shape) != expected:
            raise RequestError(f'frames of shape {list(frames.shape[1:])} do not match the earlier ones')
        if self.num_frames is not None and self.count + len(frames) > self.num_frames:
            raise RequestError(f'more than num_frames={self.num_frames} frames added to the slice')
        self._parts.append(part)
        self.count += len(frames)

    def image(self, fill: float = 0.0) -> torch.Tensor:
        """[C, T, W] (row) or [C, H, T] (column), T = num_frames (or the frames added); float32."""
        if not self._parts:
            raise RequestError('no frames have been added to the slice yet')
        if len(self._parts) > 1:
            self._parts = [torch.cat(self._parts, dim=self._time_dim)]
        done = self._parts[0]
        missing = 0 if self.num_frames is None else self.num_frames - self.count
        if missing == 0:
            return done.clone()
        shape = list(done.shape)
        shape[self._time_dim] = missing
        return torch.cat([done, done.new_full(shape, float(fill))], dim=self._time_dim)


def centre_index(G: torch.nn.Module) -> int:
    """The middle row (= column) of G's square images."""
    return G.img_resolution // 2


@torch.no_grad()
def slice_diagnostic(G: torch.nn.Module, animation: Animation, axis: str = 'row', index: Optional[int] = None,
                     batch: int = 8, progress: Optional[ProgressBar] = None,
                     noise_mode: str = 'const') -> tuple[torch.Tensor, torch.Tensor]:
    """(middle frame [C, H, W], slice [C, F, W] (row) / [C, H, F] (column)) of the animation.

    index None = the centre row / column. The middle frame is frame F // 2.
    """
    middle, slice_image, _ = _last(slice_diagnostic_steps(G, animation, axis, index, batch, progress, noise_mode))
    return middle, slice_image


@torch.no_grad()
def slice_diagnostic_steps(G: torch.nn.Module, animation: Animation, axis: str = 'row', index: Optional[int] = None,
                           batch: int = 8, progress: Optional[ProgressBar] = None, noise_mode: str = 'const',
                           fill: float = 0.0) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The slice growing: after each batch, (frame, slice so far, frames done).

    frame is the middle frame (F // 2) once it is rendered, before that the newest frame; the slice
    has all F rows (columns), those not yet rendered set to `fill`. The last step is slice_diagnostic's.
    """
    index = centre_index(G) if index is None else index
    check_slice_index(axis, index, G.img_resolution, G.img_resolution)
    slices = SliceAccumulator(axis, index, len(animation))
    middle, done = None, 0
    for frames in render_frames(G, animation, batch, noise_mode, progress):
        if done <= len(animation) // 2 < done + len(frames):
            middle = frames[len(animation) // 2 - done].clone()
        slices.add(frames)
        done += len(frames)
        yield (frames[-1] if middle is None else middle), slices.image(fill), done
