"""The stages of a render, their cache keys, and the cache of one network's stage outputs.

    network (source, device) -> ws (latent, class, truncation, style mixing)
      -> synthesis (ws, input transform, noise; the captured layers) [-> reference and comparison,
         for the equivariance readout and error image]
      or a diagnostic (averaged image, slice)
      -> view (layer, channels, normalise, gain, FFT range and beta, compare composition, split,
         difference and error gain): computed for every request, from cached tensors

Each key is a plain tuple computed from `RenderArgs` alone (and, for the capture, from what
is known about the network), so the renderer process can tell while it works on one
request whether a newer one still needs the running stage (renderer.live.control).
A stage recomputes only when its key changed; everything downstream of an unchanged stage
comes from the cache.

Memory: a synthesis keeps every layer's output when they fit in CAPTURE_BUDGET_BYTES
(512 MiB per network: all of the demo network's 107 MB, a 256-pixel StyleGAN3-T's 361 MB);
otherwise (1024-pixel networks: 1.2-2.4 GB of layer outputs) only the shown layer is kept,
and switching layers runs synthesis again. One output is kept per stage and network (A, B).
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Hashable, Optional

from renderer.live.render_args import RenderArgs

CAPTURE_BUDGET_BYTES = 512 * 2 ** 20   # Layer outputs kept per network, see the module docstring.
MEMO_ENTRIES = 8                       # Derived pictures (spectra) kept per network.
ALL_LAYERS = 'all'


def network_key(source: str, args: RenderArgs) -> tuple:
    return ('network', source, args.device)


def ws_key(source: str, args: RenderArgs) -> tuple:
    latent = ('w', args.w) if args.w is not None else ('seed', args.seed, args.seed_y)
    mixing = (args.mix_seed, args.mix_layers) if args.mix_seed is not None and args.mix_layers else None
    return ('ws', network_key(source, args), latent, args.class_idx, args.truncation_psi, args.truncation_cutoff,
            mixing)


def transform_of(args: RenderArgs) -> tuple:
    return (args.translate, args.rotate, args.scale, args.shear, args.mirror)


def synthesis_key(source: str, args: RenderArgs, captured: Optional[str]) -> tuple:
    """captured: ALL_LAYERS, the one layer kept, or None (the image only)."""
    return ('synthesis', ws_key(source, args), transform_of(args), args.untransform, args.noise_mode,
            args.noise_seed, args.force_fp32, args.precision, captured)


def reference_key(source: str, args: RenderArgs) -> tuple:
    """The image with the identity input transform, which the equivariance readout compares against."""
    return ('reference', ws_key(source, args), args.noise_mode)


def comparison_key(source: str, args: RenderArgs, captured: Optional[str]) -> tuple:
    return ('comparison', synthesis_key(source, args, captured), reference_key(source, args))


def average_key(source: str, args: RenderArgs) -> tuple:
    return ('average', network_key(source, args), _whole_seed(args), args.w is None, args.class_idx,
            args.truncation_psi, args.truncation_cutoff, args.average_samples, args.average_sigma, args.noise_mode)


def slice_key(source: str, args: RenderArgs) -> tuple:
    # A translation slice moves the current ws around the current translation; a latent one starts at the seed.
    start = (ws_key(source, args), args.translate) if args.slice_motion == 'translate' else \
        (network_key(source, args), _whole_seed(args), args.w is None, args.class_idx, args.truncation_psi,
         args.truncation_cutoff)
    return ('slice', start, args.slice_motion, args.slice_frames, args.slice_axis, args.slice_step_px,
            args.slice_pos, args.noise_mode)


def _whole_seed(args: RenderArgs) -> Any:
    """The seed the diagnostics start from (they use floor(seed))."""
    return math.floor(args.seed) if isinstance(args.seed, (int, float)) and math.isfinite(args.seed) else args.seed


def captured_layers(args: RenderArgs, capture_all: bool) -> Optional[str]:
    return ALL_LAYERS if capture_all else args.layer


def measures_transform(args: RenderArgs) -> bool:
    return args.diagnostic == 'eq_error' or (args.eq_measure and args.diagnostic == 'none')


def plan(source: str, args: RenderArgs, capture_all: bool = True) -> dict[str, tuple]:
    """{stage: key} of the stages that `args` runs for the network `source`."""
    keys = {'network': network_key(source, args), 'ws': ws_key(source, args)}
    captured = captured_layers(args, capture_all)
    if args.diagnostic in ('none', 'eq_error'):
        keys['synthesis'] = synthesis_key(source, args, captured)
    if measures_transform(args):
        keys['reference'] = reference_key(source, args)
        keys['comparison'] = comparison_key(source, args, captured)
    if args.diagnostic == 'average':
        keys['average'] = average_key(source, args)
    if args.diagnostic == 'slice':
        keys['slice'] = slice_key(source, args)
    return keys


def fits_budget(shapes: list[tuple[int, ...]], bytes_per_value: int = 4,
                budget: int = CAPTURE_BUDGET_BYTES) -> bool:
    """Whether layer outputs of these shapes fit in the capture budget."""
    return sum(math.prod(shape) for shape in shapes) * bytes_per_value <= budget


class StageCache:
    """The newest output of each stage for one network (A or B), plus a few derived pictures.

    Outputs are stored only once their stage has finished (`put`), so a cancelled stage leaves the
    cache as it was."""

    def __init__(self, memo_entries: int = MEMO_ENTRIES):
        self._outputs: dict[str, tuple[tuple, Any]] = {}
        self._memo: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._memo_entries = memo_entries

    def get(self, key: tuple) -> Optional[Any]:
        entry = self._outputs.get(key[0])
        return entry[1] if entry is not None and entry[0] == key else None

    def put(self, key: tuple, value: Any) -> Any:
        self._outputs[key[0]] = (key, value)
        return value

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """A derived value (e.g. a layer's spectrum) kept in a small LRU."""
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        value = self._memo[key] = compute()
        while len(self._memo) > self._memo_entries:
            self._memo.popitem(last=False)
        return value

    def clear(self) -> None:
        self._outputs.clear()
        self._memo.clear()
