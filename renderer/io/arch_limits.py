"""Constructor arguments read from a file, checked before anything is built (docs/checkpoint-format.md).

A checkpoint's arguments decide how much our constructors allocate and compute,
so a file of a few hundred bytes could otherwise ask for a mapping network of
ten million layers or a layer of 20,000 x 20,000 weights. Three checks run
before and during construction:

- `check_argument_bounds`: every argument has the expected type and lies within
  sane bounds (the constants below), and the combination can run (StyleGAN2
  kernels are odd, StyleGAN3 filters stay short);
- `check_structure`: the layer counts agree with the tensors in the file
  (mapping layers `fc<i>`, StyleGAN3 layers `L<i>_...`, StyleGAN2 blocks `b<res>`);
- `ConstructionGuard`: while the module is built, tensor allocations are
  counted and refused beyond `construction_limit(file tensor bytes)`, so the
  module cannot be much larger than the tensors the file holds.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from renderer.errors import NetworkLoadError
from renderer.io.pickle_vm import describe
from renderer.networks import stylegan2, stylegan3
from renderer.ops.bias_act import ACTIVATIONS

MAX_MAPPING_LAYERS = 64
MAX_SYNTHESIS_LAYERS = 64          # StyleGAN3 num_layers (published: 14).
MAX_RESOLUTION = 8192
MAX_FILTER_TAPS = 1024             # StyleGAN3 up/down filter taps (published: at most 24); radial ones are squared.
MAX_RESAMPLE_TAPS = 16             # StyleGAN2 resample filter taps (published: 4).
CONSTRUCTION_FACTOR = 4            # A module may allocate this many times the file's tensor bytes while built ...
CONSTRUCTION_SLACK_BYTES = 64 << 20  # ... plus this.

_INT_BOUNDS = {            # name: (lowest, highest)
    'z_dim': (0, 1 << 16), 'c_dim': (0, 1 << 17), 'w_dim': (1, 1 << 14), 'img_resolution': (1, MAX_RESOLUTION),
    'img_channels': (1, 64), 'channel_base': (1, 1 << 24), 'channel_max': (1, 1 << 14),
    'num_layers': (1, MAX_SYNTHESIS_LAYERS), 'num_critical': (0, MAX_SYNTHESIS_LAYERS - 1),
    'margin_size': (0, 1024), 'num_fp16_res': (0, 64), 'conv_kernel': (1, 15), 'kernel_size': (1, 15),
    'filter_size': (1, 64), 'lrelu_upsampling': (1, 16),
}
_MAPPING_INT_BOUNDS = {'num_layers': (1, MAX_MAPPING_LAYERS), 'embed_features': (1, 1 << 14),
                       'layer_features': (1, 1 << 14)}
_POSITIVE_FLOATS = ('first_cutoff', 'first_stopband', 'last_stopband_rel', 'lr_multiplier')
_FINITE_FLOATS = ('output_scale',)
_UNIT_FLOATS = ('magnitude_ema_beta', 'w_avg_beta')
_BOOLS = ('use_radial_filters', 'use_noise', 'channels_last', 'fp16_channels_last')
_OPTIONAL = ('conv_clamp', 'embed_features', 'layer_features', 'w_avg_beta')


def _fail(source: str, name: str, value: Any, expected: str) -> None:
    raise NetworkLoadError(f"{source}: cannot build a generator from the file's constructor arguments: "
                           f"{name}={describe(value)} is out of bounds (expected {expected})")


def _check_int(source: str, name: str, value: Any, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if type(value) is not int or not low <= value <= high:
        _fail(source, name, value, f'an integer from {low} to {high}')


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_value(source: str, name: str, value: Any, mapping: bool) -> None:
    if value is None and name in _OPTIONAL:
        return
    bounds = _MAPPING_INT_BOUNDS.get(name) if mapping else _INT_BOUNDS.get(name)
    label = f'mapping_kwargs.{name}' if mapping else name
    if bounds is not None:
        _check_int(source, label, value, bounds)
        return
    _check_other(source, label, name, value)


def _check_other(source: str, label: str, name: str, value: Any) -> None:
    if name in _POSITIVE_FLOATS and not (_is_number(value) and 0 < value <= 1e6):
        _fail(source, label, value, 'a positive finite number')
    elif name in _FINITE_FLOATS and not (_is_number(value) and abs(value) <= 1e6):
        _fail(source, label, value, 'a finite number')
    elif name in _UNIT_FLOATS and not (_is_number(value) and 0 <= value <= 1):
        _fail(source, label, value, 'a number from 0 to 1')
    elif name == 'conv_clamp' and not (_is_number(value) and value > 0):
        _fail(source, label, value, 'None or a positive finite number')
    elif name in _BOOLS and type(value) is not bool:
        _fail(source, label, value, 'True or False')
    elif name == 'activation' and (not isinstance(value, str) or value not in ACTIVATIONS):
        _fail(source, label, value, f'one of {", ".join(sorted(ACTIVATIONS))}')
    elif name == 'architecture' and not isinstance(value, str):
        _fail(source, label, value, "'skip'")
    elif name == 'fused_modconv_default' and value not in (True, False, 'inference_only'):
        _fail(source, label, value, "True, False or 'inference_only'")
    elif name == 'resample_filter' and not (type(value) in (list, tuple) and 1 <= len(value) <= MAX_RESAMPLE_TAPS
                                            and all(_is_number(v) for v in value) and sum(value) != 0):
        _fail(source, label, value, f'1 to {MAX_RESAMPLE_TAPS} finite taps with a non-zero sum')


def check_argument_bounds(architecture: str, kwargs: Mapping[str, Any], source: str) -> None:
    """Refuse (NetworkLoadError) arguments of the wrong type, outside the bounds above, or that cannot run."""
    mapping_kwargs = kwargs.get('mapping_kwargs') or {}
    for name, value in kwargs.items():
        if name != 'mapping_kwargs':
            _check_value(source, name, value, mapping=False)
    for name, value in mapping_kwargs.items():
        _check_value(source, name, value, mapping=True)
    if kwargs['z_dim'] == 0 and kwargs['c_dim'] == 0:
        raise NetworkLoadError(f'{source}: constructor arguments z_dim and c_dim are both 0')
    if architecture == 'stylegan2':
        kernel = kwargs.get('kernel_size', 3)
        if kernel % 2 == 0:
            _fail(source, 'kernel_size', kernel, 'an odd number (the StyleGAN2 layers cannot run even kernels)')
        resolution = kwargs['img_resolution']
        if resolution < 4 or resolution & (resolution - 1):
            _fail(source, 'img_resolution', resolution, 'a power of two >= 4')
    else:
        _check_stylegan3_filters(kwargs, source)


def _check_stylegan3_filters(kwargs: Mapping[str, Any], source: str) -> None:
    """The longest up/down filter the layer schedule implies stays within MAX_FILTER_TAPS."""
    defaults = {**_defaults(stylegan3.SynthesisNetwork.__init__), **_defaults(stylegan3.SynthesisLayer.__init__)}
    args = {name: kwargs.get(name, defaults.get(name)) for name in (
        'channel_base', 'channel_max', 'num_layers', 'num_critical', 'first_cutoff', 'first_stopband',
        'last_stopband_rel', 'margin_size')}
    if args['num_layers'] - args['num_critical'] < 1:
        _fail(source, 'num_critical', args['num_critical'], f'less than num_layers ({args["num_layers"]})')
    try:
        with np.errstate(all='ignore'):
            schedule = stylegan3.layer_schedule(kwargs['img_resolution'], kwargs['img_channels'], **args)
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        raise NetworkLoadError(f'{source}: the StyleGAN3 layer schedule of these arguments fails ({e})') from None
    rates = schedule['sampling_rates']
    if not (np.all(np.isfinite(rates)) and np.all(rates >= 1) and np.all(np.isfinite(schedule['channels']))):
        raise NetworkLoadError(f'{source}: the StyleGAN3 layer schedule of these arguments is degenerate')
    lrelu = kwargs.get('lrelu_upsampling', defaults['lrelu_upsampling'])
    ratios = np.maximum(rates[1:], rates[:-1]) * lrelu / np.minimum(rates[1:], rates[:-1])
    taps = kwargs.get('filter_size', defaults['filter_size']) * float(np.max(ratios, initial=1))
    if taps > MAX_FILTER_TAPS:
        raise NetworkLoadError(f'{source}: these StyleGAN3 arguments need filters of {taps:.0f} taps, more than the '
                               f'{MAX_FILTER_TAPS} allowed')


def _defaults(fn: Any) -> dict[str, Any]:
    """Default values of `fn`'s parameters that have one."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def _count(pattern: str, names: Iterable[str]) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for m in map(regex.match, names) if m})


def check_structure(architecture: str, kwargs: Mapping[str, Any], tensor_names: Iterable[str], source: str) -> None:
    """Layer counts of the arguments may not exceed the layers whose tensors the file holds."""
    names = list(tensor_names)
    generator = stylegan3.Generator if architecture == 'stylegan3' else stylegan2.Generator
    mapping_layers = (kwargs.get('mapping_kwargs') or {}).get('num_layers', generator.default_mapping_layers)
    counts = [('mapping_kwargs.num_layers', mapping_layers, _count(r'mapping\.fc(\d+)\.', names), 'mapping layers')]
    if architecture == 'stylegan3':
        layers = kwargs.get('num_layers', _defaults(stylegan3.SynthesisNetwork.__init__)['num_layers'])
        counts.append(('num_layers', layers + 1, _count(r'synthesis\.(L\d+_\d+_\d+)\.', names),
                       'synthesis layers (num_layers + 1)'))
    else:
        blocks = int(math.log2(kwargs['img_resolution'])) - 1
        counts.append(('img_resolution', blocks, _count(r'synthesis\.b(\d+)\.', names), 'synthesis blocks'))
    for name, expected, found, what in counts:
        if expected > found:  # Fewer: the tensors left over are reported by name after building.
            raise NetworkLoadError(f'{source}: constructor argument {name} implies {expected} {what}, but the file '
                                   f'holds tensors of {found}')


def construction_limit(file_tensor_bytes: int) -> int:
    """Bytes of tensors our constructors may allocate for a file holding `file_tensor_bytes` of tensors."""
    return CONSTRUCTION_FACTOR * file_tensor_bytes + CONSTRUCTION_SLACK_BYTES


_RANDOM = (torch.randn, torch.rand)
_FACTORIES = (torch.empty, torch.zeros, torch.ones, torch.full)


def _requested_elements(func: Any, args: tuple, kwargs: dict) -> Optional[int]:
    """Elements a factory call asks for (None when its size cannot be read from the arguments)."""
    if func is torch.eye:
        dims = [a for a in args[:2] if type(a) is int]
        return dims[0] * (dims[1] if len(dims) > 1 else dims[0]) if dims else None
    size = kwargs.get('size', args[0] if len(args) == 1 or func is torch.full else args) if args or kwargs else ()
    if isinstance(size, int):
        size = (size,)
    if not isinstance(size, (tuple, list, torch.Size)) or not all(type(n) is int for n in size):
        return None
    return math.prod(size)


class ConstructionGuard(TorchFunctionMode):
    """While building a module: torch.randn / rand return uninitialised tensors (every value is overwritten from
    the file), and allocations beyond `limit_bytes` raise NetworkLoadError before they happen."""

    def __init__(self, file_tensor_bytes: int, source: str):
        super().__init__()
        self.file_tensor_bytes = file_tensor_bytes
        self.limit_bytes = construction_limit(file_tensor_bytes)
        self.source = source
        self.used = 0

    def _charge(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.limit_bytes:
            raise NetworkLoadError(f'{self.source}: the constructor arguments describe a network larger than the '
                                   f'file: building it would allocate more than {self.limit_bytes / 2 ** 20:.0f} MB, '
                                   f'but the file holds {self.file_tensor_bytes / 2 ** 20:.1f} MB of tensors')

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in _RANDOM or func in _FACTORIES or func is torch.eye:
            elements = _requested_elements(func, args, kwargs)
            dtype = kwargs.get('dtype') or torch.get_default_dtype()
            if elements is not None:
                self._charge(elements * torch.empty(0, dtype=dtype).element_size())
            if func in _RANDOM:
                kwargs.pop('generator', None)
                return torch.empty(*args, **kwargs)
            return func(*args, **kwargs)
        result = func(*args, **kwargs)
        if isinstance(result, torch.Tensor) and result.numel() and not _shares_input(result, args, kwargs):
            self._charge(result.numel() * result.element_size())
        return result


def _shares_input(result: torch.Tensor, args: tuple, kwargs: dict) -> bool:
    """Is `result` a view of (or the same memory as) one of the tensor arguments (nothing new allocated)?"""
    pointer = result.untyped_storage().data_ptr()
    return any(isinstance(a, torch.Tensor) and a.untyped_storage().data_ptr() == pointer
               for a in (*args, *kwargs.values()))
