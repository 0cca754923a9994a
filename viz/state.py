"""The GUI state as one plain dataclass, and the RenderArgs built from it each frame.

Widgets edit `VizState`; `render_args(state)` is the only thing sent to the
renderer. View-only fields (zoom, pan, drag mode, animation) never reach it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from renderer.live.render_args import RenderArgs
from renderer.options import MAX_SEED


@dataclass
class VizState:
    # Network.
    network: str = ''                            # '' = the built-in demo network.
    # Latent.
    seed: float = 0.0
    seed_y: float = 0.0                          # Second axis of the latent plane (see RenderArgs).
    w: Optional[tuple[float, ...]] = None        # Loaded w (.npy); overrides the seed while set.
    class_idx: Optional[int] = None              # Class of a conditional network (None = class 0).
    animate_seed: bool = False
    seed_speed: float = 0.25                     # Seeds per second while animating.
    # Truncation and noise.
    truncation_psi: float = 1.0
    truncation_cutoff: Optional[int] = None
    noise_mode: str = 'const'
    noise_seed: int = 0
    # Style mixing.
    mix_enabled: bool = False
    mix_seed: int = 1
    mix_range: tuple[int, int] = (0, 0)          # First and last ws taken from mix_seed (inclusive).
    # Input transform.
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0
    mirror: tuple[bool, bool] = (False, False)
    untransform: bool = False
    animate_translate: bool = False
    animate_rotate: bool = False
    translate_speed: float = 0.1                 # Image widths per second while animating the translation.
    rotate_speed: float = 3.6                    # Degrees per second while animating the rotation.
    # Layer view.
    layer: Optional[str] = None
    channel_base: int = 0
    num_channels: int = 3
    normalize: bool = True
    gain_db: float = 0.0
    fft: bool = False
    fft_range_db: float = 50.0
    fft_beta: float = 8.0
    fft_all_channels: bool = True
    # Compare mode (network B).
    compare_enabled: bool = False
    compare_source: Optional[str] = None         # Path or URL of B ('' = the demo); None = not chosen yet.
    compare_view: str = 'side'                   # 'side', 'split' or 'diff'.
    split_pos: float = 0.5
    compare_match: str = 'resize'                # options.COMPARE_MATCHES.
    diff_gain: float = 1.0
    error_gain: float = 1.0                      # Equivariance error image (its own field: other range).
    # Diagnostics (texture sticking, equivariance error) and spectrum plots.
    diagnostic: str = 'none'
    average_samples: int = 16
    average_sigma: float = 0.2
    slice_motion: str = 'translate'
    slice_frames: int = 64
    slice_axis: str = 'row'
    slice_pos: float = 0.5
    slice_step_px: float = 1.0
    eq_measure: bool = False
    spectrum_plot: bool = False
    spectrum_range_db: float = 50.0              # Spectrum panel's heat map (GUI only; the FFT view has its own).
    # Execution.
    device: str = 'auto'
    force_fp32: bool = False
    precision: str = 'fp16'                      # options.PRECISIONS (fp16: the published float16 layers on CUDA).
    # View only.
    zoom: Optional[float] = None                 # None = fit to the window.
    pan: tuple[float, float] = (0.0, 0.0)        # Screen units.
    drag_pans: bool = False                      # Dragging the image pans it (else changes the seed).
    recent: list[str] = field(default_factory=list)


# Fields copied as they are; style mixing (mix_enabled + mix_range -> mix_seed + mix_layers) and compare mode
# (compare_enabled + compare_source -> compare_network) are translated.
_SHARED = (({f.name for f in dataclasses.fields(RenderArgs)} & {f.name for f in dataclasses.fields(VizState)})
           - {'mix_seed', 'compare_network'})


def render_args(state: VizState) -> RenderArgs:
    """The RenderArgs for the current state."""
    values = {name: getattr(state, name) for name in _SHARED}
    if state.mix_enabled:
        first, last = state.mix_range
        values.update(mix_seed=state.mix_seed, mix_layers=tuple(range(first, last + 1)))
    if state.compare_enabled and state.compare_source is not None:   # Nothing to compare before B is chosen.
        values.update(compare_network=state.compare_source)
    return RenderArgs(**values)


def apply_render_args(state: VizState, args: RenderArgs) -> None:
    """Load saved RenderArgs back into the state (the inverse of render_args for shared fields)."""
    for name in _SHARED:
        setattr(state, name, getattr(args, name))
    state.mix_enabled = args.mix_seed is not None and bool(args.mix_layers)
    if state.mix_enabled:
        state.mix_seed = args.mix_seed
        state.mix_range = (min(args.mix_layers), max(args.mix_layers))
    state.compare_enabled = args.compare_network is not None
    if state.compare_enabled:
        state.compare_source = args.compare_network


def next_seed(seed: float, step: int) -> float:
    """The whole seed `step` (+1 or -1) away: from 3.5, Left gives 3 and Right 4; within [0, MAX_SEED]."""
    target = math.floor(seed) + 1 if step > 0 else math.ceil(seed) - 1
    return float(min(max(target, 0), MAX_SEED))
