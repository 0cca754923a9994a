"""Render arguments and results: the plain-data contract between the GUI and the renderer.

The GUI fills a `RenderArgs` each frame; the renderer (in-process or in its own
process) turns it into a `RenderResult`. Both are picklable plain data with no
torch tensors, so they cross process boundaries cheaply (images travel through
shared memory, see renderer.live.process). What one network contributed (A, or B in
compare mode) is a `NetworkResult`; the result says which part failed in `error_kind`.

Coordinates: the image spans [-0.5, 0.5] on both axes, y points down;
`translate` is in these units (1.0 = one image width), `rotate` in degrees,
counter-clockwise as seen on screen.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from renderer.errors import RequestError

# What failed when RenderResult.error is set.
ERROR_NETWORK = 'network'        # Network A could not be loaded (the GUI offers Retry and the demo).
ERROR_NETWORK_B = 'network_b'    # Network B could not be loaded.
ERROR_REQUEST = 'request'        # The arguments cannot be honoured (a bad value, an impossible view).
ERROR_INTERNAL = 'internal'      # An unexpected exception: a bug, a failing kernel, out of memory.
ERROR_CRASH = 'crash'            # The renderer process died.


@dataclass(frozen=True)
class RenderArgs:
    # Network.
    network: str = ''                           # Path or http(s) URL; '' = the built-in demo network.
    # Latent.
    seed: float = 0.0                           # Seed; a fraction blends w of floor(seed) and floor(seed) + 1.
    seed_y: float = 0.0                         # Second latent axis: row j holds seeds + j * SEED_ROW_STEP.
    w: Optional[tuple[float, ...]] = None       # Explicit w, flattened [w_dim] or [num_ws * w_dim]; overrides seed.
    class_idx: Optional[int] = None             # Class of a conditional network (None: class 0).
    truncation_psi: float = 1.0                 # Truncation towards w_avg: 1 = none, 0 = the mean image.
    truncation_cutoff: Optional[int] = None     # Truncate only the first N ws (None = all).
    noise_mode: str = 'const'                   # StyleGAN2 noise: 'const', 'random' or 'none'.
    noise_seed: int = 0                         # Seed of the 'random' noise, so renders are reproducible.
    # Style mixing.
    mix_seed: Optional[int] = None              # Seed whose w replaces the ws listed in mix_layers.
    mix_layers: tuple[int, ...] = ()            # Indices into ws taken from mix_seed.
    # Input transform of StyleGAN3 (the image is transformed; the network gets the inverse).
    translate: tuple[float, float] = (0.0, 0.0)  # Image units (1.0 = one image width).
    rotate: float = 0.0                         # Degrees, counter-clockwise on screen.
    scale: tuple[float, float] = (1.0, 1.0)     # Scale along x and y.
    shear: float = 0.0                          # Horizontal shear (x += shear * y).
    mirror: tuple[bool, bool] = (False, False)  # Mirror along x, y.
    untransform: bool = False                   # Resample the output back to the untransformed canvas.
    # What to show.
    layer: Optional[str] = None                 # Layer to show (a capture-point name); None = output image.
    channel_base: int = 0                       # First channel shown of the layer.
    num_channels: int = 3                       # 1 (grey) or 3 (RGB) channels.
    normalize: bool = True                      # Scale the shown channels to unit standard deviation.
    gain_db: float = 0.0                        # Extra gain in dB applied to the shown channels.
    fft: bool = False                           # Show the power spectrum instead of the feature map.
    fft_range_db: float = 50.0                  # Dynamic range of the spectrum view in dB.
    fft_beta: float = 8.0                       # Kaiser window beta applied before the FFT.
    fft_all_channels: bool = True               # Average the spectrum over all channels (else the shown ones).
    # Compare mode: network B rendered with the same latent, truncation and motion.
    compare_network: Optional[str] = None       # Path or URL of B ('' = the demo network); None = compare off.
    compare_view: str = 'side'                  # 'side' (A | B), 'split' (A left of the split, B right), 'diff'.
    split_pos: float = 0.5                      # Split position, fraction of the width from the left.
    compare_match: str = 'resize'               # Split and diff views, sizes differing: options.COMPARE_MATCHES.
    diff_gain: float = 1.0                      # The 'diff' view shows |A - B| * gain (0 = black).
    error_gain: float = 1.0                     # The equivariance error image shows |error| * gain.
    # Texture-sticking and equivariance diagnostics (shown instead of the plain view).
    diagnostic: str = 'none'                    # 'none', 'average', 'slice' or 'eq_error' (options.DIAGNOSTICS).
    average_samples: int = 16                   # Perturbed latents averaged by the 'average' diagnostic.
    average_sigma: float = 0.2                  # Perturbation size in z units.
    slice_motion: str = 'translate'             # 'translate' (input translation) or 'latent' (seed -> seed + 1).
    slice_frames: int = 64                      # Frames of the animation stacked into the slice.
    slice_axis: str = 'row'                     # 'row' (time runs down) or 'column' (time runs right).
    slice_pos: float = 0.5                      # Which row / column, as a fraction of the image size.
    slice_step_px: float = 1.0                  # Translation per frame in output pixels ('translate' motion).
    eq_measure: bool = False                    # Report the PSNR of the current input transform (metrics).
    spectrum_plot: bool = False                 # Return the shown tensor's spectrum and radial profile.
    # Execution.
    device: str = 'auto'                        # 'auto' (CUDA -> MPS -> CPU), 'cpu', 'cuda' or 'mps'.
    force_fp32: bool = False                    # Disable float16 layers on CUDA (precision fp32).
    precision: str = 'fp16'                     # options.PRECISIONS: 'fp16' (float16 layers on CUDA as published,
                                                # float32 elsewhere), 'bf16', 'fp32' or 'auto' (fastest >= 40 dB).

    def replace(self, **changes: Any) -> 'RenderArgs':
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> 'RenderArgs':
        """Parse arguments saved by to_json; unknown or malformed fields raise RequestError naming them."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RequestError(f'not valid JSON: {e}') from None
        if not isinstance(data, dict):
            raise RequestError('render arguments must be a JSON object')
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RequestError(f'unknown render argument(s): {", ".join(unknown)}')
        for key in ('translate', 'scale', 'mirror', 'mix_layers', 'w'):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class LayerInfo:
    name: str                                   # Capture-point name, e.g. 'L3_52_512' or 'b64.conv0'.
    shape: tuple[int, ...]                      # [N, C, H, W] of the layer output.
    dtype: str                                  # 'float32', 'float16' or 'bfloat16'.
    sampling_rate: Optional[float] = None       # Samples per image unit (StyleGAN3 layers).
    cutoff: Optional[float] = None              # Cutoff frequency in cycles per image unit (StyleGAN3).


@dataclass(frozen=True)
class NetworkDescription:
    """What a loaded network is, as the GUI shows it."""
    source: str                                 # Path or URL as given ('' = the built-in demo).
    label: str                                  # What to call it: the source, or 'untrained demo network'.
    architecture: str                           # 'stylegan3' or 'stylegan2'.
    img_resolution: int
    img_channels: int
    z_dim: int
    c_dim: int                                  # Number of classes (0: unconditional).
    w_dim: int
    num_ws: int
    has_input_transform: bool                   # StyleGAN3: it can be translated and rotated at the input.
    ws_layers: tuple[str, ...] = ()             # Per ws index: the layers it drives ('' = none).

    def summary(self) -> str:
        """'stylegan3, 256 px, 16 ws'."""
        return f'{self.architecture}, {self.img_resolution} px, {self.num_ws} ws'


@dataclass
class NetworkResult:
    """One network's part of a render: network A, or B in compare mode."""
    network: Optional[NetworkDescription] = None  # None when it could not be loaded.
    layers: list[LayerInfo] = field(default_factory=list)   # Every layer of the network, input to output.
    stats: dict[str, float] = field(default_factory=dict)   # mean/std/min/max of the shown tensor.
    channel_stats: list[dict[str, float]] = field(default_factory=list)  # Per shown channel: channel, mean, ...
    readout: Optional[np.ndarray] = None        # float32 [c, H, W]: the shown channels' values (plain view only).
    readout_channels: tuple[int, ...] = ()      # The channel number of each readout plane.
    eq_psnr_db: Optional[float] = None          # PSNR of the input transform (eq_measure / eq_error); inf = exact.
    notes: list[str] = field(default_factory=list)          # Things the user should know about this network.
    timings: dict[str, float] = field(default_factory=dict)  # Milliseconds per stage (cached ones too).
    cached: list[str] = field(default_factory=list)         # Stages that came from the cache, by timing name.
    precision: str = 'fp32'                     # What rendered the image: 'fp32', 'bf16' or 'fp16' (diagnostics: fp32).


@dataclass
class RenderResult:
    request_id: int = 0                         # Id of the RenderArgs request this answers.
    args: Optional[RenderArgs] = None           # The arguments that produced it.
    image: Optional[np.ndarray] = None          # uint8 [H, W, 3] (or [H, W, 1]) ready for display.
    error: Optional[str] = None                 # Readable error text; image may be None.
    error_kind: Optional[str] = None            # Which part failed: one of the ERROR_* constants.
    traceback: Optional[str] = None             # For ERROR_INTERNAL: where it happened (shown on demand).
    a: NetworkResult = field(default_factory=NetworkResult)  # Network A.
    b: Optional[NetworkResult] = None           # Network B in compare mode.
    device: str = ''                            # Device that rendered, e.g. 'cpu' or 'cuda:0'.
    device_note: Optional[str] = None           # e.g. 'cuda is not available here; rendering on cpu'.
    panels: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # Compare mode: (label, x0, y0,
                                                # x1, y1) of A, B (or |A - B|) in image pixels, for labels.
    impls: dict[str, str] = field(default_factory=dict)     # Op name -> 'cuda' or 'ref'.
    ws: Optional[np.ndarray] = None             # float32 [num_ws, w_dim] of A actually used (for saving).
    notes: list[str] = field(default_factory=list)           # Things the user should know (not errors).
    spectrum_db: Optional[np.ndarray] = None    # float32 [h, w] dB, DC centred (spectrum_plot; A only).
    spectrum_freqs: Optional[np.ndarray] = None  # float64 [R] radial frequencies, cycles per sample.
    spectrum_profile_db: Optional[np.ndarray] = None  # float64 [R] mean power per radius in dB.
    timings: dict[str, float] = field(default_factory=dict)  # Milliseconds of the whole render ('total').
    partial: bool = False                       # A picture of a long render so far; the final result follows.
    cancelled: bool = False                     # The render was stopped (Cancel); there is no image.

    @property
    def networks(self) -> list[tuple[str, NetworkResult]]:
        """[('A', a)] or [('A', a), ('B', b)]."""
        return [('A', self.a)] + ([('B', self.b)] if self.b is not None else [])
