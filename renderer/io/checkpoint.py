"""Build our generator modules from checkpoint contents (docs/checkpoint-format.md).

Shared by both file formats:
- `generator_from_record`: a published network object (a `PersistentRecord`
  from `safe_unpickle`) -> our StyleGAN3 or StyleGAN2 `Generator`: the
  architecture is told from the module structure, the constructor arguments
  come from `_init_args` / `_init_kwargs`, every parameter and buffer is copied
  by dotted name, and anything left over, missing or of the wrong shape is an
  error naming the tensor;
- `build_generator` + `assign_tensors`: the same from (architecture, kwargs,
  tensors), used by our own format;
- `NetworkInfo` / `network_info`: what a loaded network is and where it came from.
All failures raise `NetworkLoadError` with the file (or URL) first in the message.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import math
import warnings
from typing import Any, Mapping, Optional

import numpy as np
import torch

from renderer.errors import NetworkLoadError
from renderer.io.arch_limits import ConstructionGuard, check_argument_bounds, check_structure
from renderer.io.pickle_vm import describe
from renderer.io.safe_unpickle import PersistentRecord
from renderer.networks import stylegan2, stylegan3
from renderer.networks.layers import MappingNetwork

GENERATORS: dict[str, type] = {'stylegan3': stylegan3.Generator, 'stylegan2': stylegan2.Generator}
POSITIONAL_ARGS = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels')  # Generator's positional order.
_MAX_PROBLEMS_SHOWN = 12
_MAX_DEPTH = 32                # Nesting of plain values (to_plain) and of the module tree.
MAX_PLAIN_VALUES = 100_000     # Values to_plain visits (shared sub-structures count each time they are reached).
MAX_MODULE_PATHS = 10_000      # Sub-module paths of one network object (published: about 100).


class NetworkMismatchWarning(UserWarning):
    """A recorded attribute of the file's modules differs from the value our module computes."""


@dataclasses.dataclass(frozen=True)
class NetworkInfo:
    """What a loaded generator is and where it came from (attached to loaded modules as `G.info`)."""

    source: Optional[str]                 # Path or URL it was loaded from; None = built in memory.
    format: str                           # 'published-pickle', 'native' or 'module' (built in memory).
    architecture: str                     # 'stylegan3' or 'stylegan2'.
    config: str                           # 'stylegan3-t', 'stylegan3-r' or 'stylegan2'.
    img_resolution: int
    img_channels: int
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    init_kwargs: dict                     # Constructor arguments (plain JSON-able values).
    key: Optional[str] = None             # Entry of the published pickle, e.g. 'G_ema'.
    file_keys: tuple[str, ...] = ()       # Top-level keys of the published pickle (of the origin, for 'native').
    has_discriminator: bool = False       # The published pickle also held a discriminator ('D').
    has_augment_pipe: bool = False        # The published pickle also held an augmentation pipeline.
    training_set_kwargs: Optional[dict] = None  # The pickle's `training_set_kwargs` as plain values, if any.
    origin: Optional[str] = None          # For 'native' files: the source they were converted or saved from.
    cache_path: Optional[str] = None      # For URLs: the local cached copy.

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d['file_keys'] = list(self.file_keys)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **overrides: Any) -> 'NetworkInfo':
        """Inverse of `to_dict`; unknown keys are ignored, `overrides` replace fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values.update(overrides)
        values['file_keys'] = tuple(values.get('file_keys') or ())
        return cls(**values)

    @classmethod
    def from_module(cls, G: torch.nn.Module, **overrides: Any) -> 'NetworkInfo':
        """Describe one of our generators from its attributes."""
        arch = getattr(G, 'architecture', None)
        if arch not in GENERATORS or not hasattr(G, 'init_kwargs'):
            raise TypeError(f'expected a stylegan3 or stylegan2 Generator of this package, got {type(G).__name__}')
        kwargs = to_plain(G.init_kwargs, 'init_kwargs')
        values = dict(source=None, format='module', architecture=arch, config=config_name(arch, kwargs),
                      img_resolution=G.img_resolution, img_channels=G.img_channels, z_dim=G.z_dim, c_dim=G.c_dim,
                      w_dim=G.w_dim, num_ws=G.num_ws, init_kwargs=kwargs)
        values.update(overrides)
        values['file_keys'] = tuple(values.get('file_keys') or ())
        return cls(**values)


def network_info(G: torch.nn.Module) -> NetworkInfo:
    """The metadata of a generator: `G.info` when loaded from a file, otherwise derived from the module."""
    info = getattr(G, 'info', None)
    return info if isinstance(info, NetworkInfo) else NetworkInfo.from_module(G)


def config_name(architecture: str, init_kwargs: Mapping[str, Any]) -> str:
    """'stylegan3-r' (radial filters), 'stylegan3-t' or 'stylegan2'."""
    if architecture == 'stylegan3':
        return 'stylegan3-r' if init_kwargs.get('use_radial_filters') else 'stylegan3-t'
    return architecture


def to_plain(obj: Any, what: str, strict: bool = True, max_values: int = MAX_PLAIN_VALUES) -> Any:
    """Recursively convert to JSON-able values: dict subclasses -> dict, tuples -> lists, numpy -> Python.

    strict: other values raise ValueError; otherwise they become a short description. Nesting deeper
    than 32 levels, or more than `max_values` values visited (shared sub-structures count each time),
    raise ValueError.
    """
    return _Plain(what, strict, max_values).convert(obj, 0)


class _Plain:
    """One to_plain conversion: the work budget, and the path to the current value (for messages)."""

    def __init__(self, what: str, strict: bool, max_values: int):
        self.what, self.strict, self.left, self.max_values = what, strict, max_values, max_values
        self.trail: list[Any] = []

    def where(self) -> str:
        parts = [f'.{p[:40]}' if isinstance(p, str) else f'[{p}]' for p in self.trail[:6]]
        return self.what + ''.join(parts) + ('...' if len(self.trail) > 6 else '')

    def convert(self, obj: Any, depth: int) -> Any:
        self.left -= 1
        if self.left < 0:
            raise ValueError(f'{self.what} holds too many values (more than {self.max_values}, counting repeats of '
                             f'shared parts)')
        if depth > _MAX_DEPTH:
            raise ValueError(f'{self.where()} is nested too deeply')
        if obj is None or type(obj) in (bool, int, float, str):
            return obj
        if isinstance(obj, (bool, int, float, str)):   # Subclasses (e.g. an int subclass) become the plain type.
            return (bool if isinstance(obj, bool) else int if isinstance(obj, int) else
                    float if isinstance(obj, float) else str)(obj)
        if isinstance(obj, np.generic) and obj.dtype.kind in 'biuf':
            return obj.item()
        if isinstance(obj, np.ndarray) and obj.dtype.kind in 'biuf' and obj.size <= 4096:
            self.left -= obj.size
            return obj.tolist()
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if not isinstance(k, str):
                    if self.strict:
                        raise ValueError(f'{self.where()} has a non-string key {describe(k)}')
                    k = describe(k)
                self.trail.append(k)
                out[k] = self.convert(v, depth + 1)
                self.trail.pop()
            return out
        if isinstance(obj, (list, tuple, torch.Size)):
            out = []
            for i, v in enumerate(obj):
                self.trail.append(i)
                out.append(self.convert(v, depth + 1))
                self.trail.pop()
            return out
        if self.strict:
            raise ValueError(f'{self.where()} holds {describe(obj)}, expected plain numbers, strings, lists or dicts')
        if isinstance(obj, torch.Tensor) and obj.numel() <= 16:
            return repr(obj)[:200]
        return describe(obj)


# ----------------------------------------------------------------------------------------------
# Constructor arguments.

def _params_with_defaults(fn: Any, exclude: tuple[str, ...] = ()) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in exclude}


def accepted_kwargs(architecture: str) -> tuple[set[str], set[str]]:
    """(synthesis kwargs, mapping kwargs) that our Generator of `architecture` accepts from a checkpoint."""
    if architecture == 'stylegan3':
        synthesis = (_params_with_defaults(stylegan3.SynthesisNetwork.__init__)
                     | _params_with_defaults(stylegan3.SynthesisLayer.__init__))
    else:  # Arguments the network sets per block / layer itself are not accepted from outside.
        synthesis = (_params_with_defaults(stylegan2.SynthesisNetwork.__init__)
                     | _params_with_defaults(stylegan2.SynthesisBlock.__init__, exclude=('use_fp16',))
                     | _params_with_defaults(stylegan2.SynthesisLayer.__init__, exclude=('up',)))
    return synthesis, _params_with_defaults(MappingNetwork.__init__)


def check_kwargs(architecture: str, kwargs: Mapping[str, Any], source: str) -> None:
    """Raise NetworkLoadError for missing / ill-typed dimensions and for arguments we do not know."""
    missing = [n for n in POSITIONAL_ARGS if n not in kwargs]
    if missing:
        raise NetworkLoadError(f'{source}: constructor arguments lack {", ".join(missing)}')
    for name in POSITIONAL_ARGS:
        value = kwargs[name]
        lowest = 0 if name in ('z_dim', 'c_dim') else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise NetworkLoadError(f'{source}: constructor argument {name}={describe(value)} must be an integer '
                                   f'>= {lowest}')
    synthesis, mapping = accepted_kwargs(architecture)
    unknown = sorted(set(kwargs) - set(POSITIONAL_ARGS) - {'mapping_kwargs'} - synthesis)
    mapping_kwargs = kwargs.get('mapping_kwargs') or {}
    if not isinstance(mapping_kwargs, dict):
        raise NetworkLoadError(f'{source}: mapping_kwargs is a {type(mapping_kwargs).__name__}, expected a dict')
    unknown += [f'mapping_kwargs.{n}' for n in sorted(set(mapping_kwargs) - mapping)]
    if unknown:
        raise NetworkLoadError(f'{source}: unknown {architecture} constructor argument(s) '
                               f'{", ".join(n[:60] for n in unknown[:20])}')
    check_argument_bounds(architecture, kwargs, source)


def record_kwargs(record: PersistentRecord, architecture: str, source: str) -> dict:
    """The Generator's constructor arguments from `_init_args` / `_init_kwargs`, flattened and plain."""
    state = record.state
    args = state.get('_init_args', ())
    kwargs = state.get('_init_kwargs', {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise NetworkLoadError(f'{source}: malformed constructor arguments (_init_args / _init_kwargs)')
    try:
        args = to_plain(list(args), '_init_args')
        kwargs = to_plain(kwargs, '_init_kwargs')
    except ValueError as e:
        raise NetworkLoadError(f'{source}: {e}') from None
    if len(args) > len(POSITIONAL_ARGS):
        raise NetworkLoadError(f'{source}: {len(args)} positional constructor arguments, at most '
                               f'{len(POSITIONAL_ARGS)} expected')
    for name, value in zip(POSITIONAL_ARGS, args):
        if name in kwargs:
            raise NetworkLoadError(f'{source}: constructor argument {name} given both by position and by name')
        kwargs[name] = value
    nested = kwargs.pop('synthesis_kwargs', None)  # StyleGAN2-ADA (PyTorch) nests the synthesis arguments.
    if nested is not None:
        if not isinstance(nested, dict):
            raise NetworkLoadError(f'{source}: synthesis_kwargs is a {type(nested).__name__}, expected a dict')
        clash = sorted(set(nested) & set(kwargs))
        if clash:
            raise NetworkLoadError(f'{source}: constructor argument(s) {", ".join(clash)} given twice')
        kwargs.update(nested)
    kwargs['mapping_kwargs'] = kwargs.get('mapping_kwargs') or {}
    _fill_from_file(kwargs, record, architecture)
    return kwargs


def _state_attr(record: Optional[PersistentRecord], path: str, attr: str) -> Any:
    """A plain attribute recorded in the state of the sub-object at `path`, or KeyError."""
    for name in path.split('.') if path else []:
        modules = record.state.get('_modules') if isinstance(record, PersistentRecord) else None
        record = modules.get(name) if isinstance(modules, dict) else None
    if not isinstance(record, PersistentRecord) or attr not in record.state:
        raise KeyError(attr)
    return to_plain(record.state[attr], attr)


def _fill_from_file(kwargs: dict, record: PersistentRecord, architecture: str) -> None:
    """Set conv_clamp when `_init_kwargs` lacks it and our default would differ from the file's layers.

    The layers record their clamp as an attribute, which is exact whatever default
    the code that wrote the file had (published StyleGAN2 blocks default to None).
    """
    if 'conv_clamp' in kwargs:
        return
    if architecture == 'stylegan2':
        first_layer, ours = 'synthesis.b4.conv1', inspect.signature(stylegan2.SynthesisBlock).parameters
    else:
        synthesis = record.state.get('_modules', {}).get('synthesis')
        names = list(synthesis.state.get('_modules', {})) if isinstance(synthesis, PersistentRecord) else []
        first_layer = next((f'synthesis.{n}' for n in names if isinstance(n, str) and n.startswith('L0_')),
                           'synthesis.L0')
        ours = inspect.signature(stylegan3.SynthesisLayer).parameters
    try:
        value = _state_attr(record, first_layer, 'conv_clamp')
    except (KeyError, ValueError):
        value = None if architecture == 'stylegan2' else ours['conv_clamp'].default
    if (value is None or isinstance(value, (int, float))) and value != ours['conv_clamp'].default:
        kwargs['conv_clamp'] = value


def detect_architecture(record: PersistentRecord, source: str, key: str) -> str:
    """'stylegan3' or 'stylegan2', from the class names of the synthesis network's children."""
    if record.class_name != 'Generator':
        raise NetworkLoadError(f"{source}: '{key}' is a {record.class_name[:80]!r} object, not a generator "
                               f"(expected class 'Generator')")
    modules = record.state.get('_modules')
    if not isinstance(modules, dict):
        raise NetworkLoadError(f"{source}: malformed state of '{key}': _modules is "
                               f"{'missing' if modules is None else 'a ' + type(modules).__name__}")
    synthesis = modules.get('synthesis')
    if not isinstance(synthesis, PersistentRecord) or synthesis.class_name != 'SynthesisNetwork':
        raise NetworkLoadError(f"{source}: '{key}' has no synthesis network of class 'SynthesisNetwork'")
    children = synthesis.state.get('_modules')
    children = children if isinstance(children, dict) else {}

    def child_class(name: str) -> Optional[str]:
        child = children.get(name)
        return child.class_name if isinstance(child, PersistentRecord) else None

    if child_class('input') == 'SynthesisInput':
        return 'stylegan3'
    if child_class('b4') == 'SynthesisBlock':
        return 'stylegan2'
    names = ', '.join(str(n)[:40] for n in list(children)[:20]) + (', ...' if len(children) > 20 else '')
    raise NetworkLoadError(f"{source}: unknown generator structure in '{key}': the synthesis network has neither "
                           f"a SynthesisInput 'input' (StyleGAN3) nor a SynthesisBlock 'b4' (StyleGAN2); children: "
                           f"{names or 'none'}")


# ----------------------------------------------------------------------------------------------
# Building and filling our modules.

def build_generator(architecture: Any, kwargs: dict, source: str,
                    file_tensors: Mapping[str, 'TensorEntry']) -> torch.nn.Module:
    """Our Generator for (architecture, kwargs) with uninitialised weights; the global RNG is left untouched.

    Before anything is built, the arguments are checked (types, bounds, layer counts against
    `file_tensors`); while it is built, allocations beyond `construction_limit` of the file's
    tensor bytes are refused (renderer.io.arch_limits).
    """
    if not isinstance(architecture, str) or architecture not in GENERATORS:
        raise NetworkLoadError(f'{source}: unknown architecture {describe(architecture)} '
                               f'(known: {", ".join(GENERATORS)})')
    check_kwargs(architecture, kwargs, source)
    check_structure(architecture, kwargs, file_tensors, source)
    seen: dict[int, int] = {}
    for _kind, t in file_tensors.values():
        if t is not None:
            seen[id(t)] = t.numel() * t.element_size()
    guard = ConstructionGuard(sum(seen.values()), source)
    try:
        with torch.random.fork_rng(devices=[]), guard, torch.no_grad():
            return GENERATORS[architecture](**kwargs)
    except NetworkLoadError:
        raise
    except Exception as e:  # Whatever the constructors make of arguments read from an untrusted file.
        raise NetworkLoadError(f'{source}: cannot build a {architecture} generator from the file\'s constructor '
                               f'arguments ({type(e).__name__}: {str(e)[:300]})') from e


TensorEntry = tuple[Optional[str], Optional[torch.Tensor]]  # (kind 'parameter' / 'buffer' or None, tensor or None)


def module_tensors(G: torch.nn.Module) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """Every parameter and buffer slot of G by dotted name (None entries included), and each module's class."""
    tensors: dict[str, TensorEntry] = {}
    classes: dict[str, str] = {}
    for path, module in G.named_modules(remove_duplicate=False):
        classes[path] = type(module).__name__
        for kind, entries in (('parameter', module._parameters), ('buffer', module._buffers)):
            for name, t in entries.items():
                tensors[f'{path}.{name}' if path else name] = (kind, t)
    return tensors, classes


def walk_records(record: PersistentRecord, source: str) -> list[tuple[str, PersistentRecord]]:
    """(dotted path, record) of a network object and every sub-module below it, breadth first.

    Sub-module names must be strings and children network objects (or None); at most
    MAX_MODULE_PATHS paths (a sub-module reached twice counts twice) and _MAX_DEPTH levels.
    """
    found: list[tuple[str, PersistentRecord]] = []
    queue = collections.deque([('', record, 0)])
    while queue:
        path, rec, depth = queue.popleft()
        found.append((path, rec))
        if len(found) > MAX_MODULE_PATHS:
            raise NetworkLoadError(f'{source}: more than {MAX_MODULE_PATHS} sub-modules (shared or repeated '
                                   f'sub-modules?)')
        children = rec.state.get('_modules')
        if not isinstance(children, dict):
            continue
        for name, child in children.items():
            if not isinstance(name, str):
                raise NetworkLoadError(f'{source}: sub-module name {describe(name)} of {path or "<root>"} is not a '
                                       f'string')
            full = f'{path}.{name}' if path else name
            if child is None:
                continue
            if not isinstance(child, PersistentRecord):
                raise NetworkLoadError(f'{source}: sub-module {full[:200]} is {describe(child)}, not a network '
                                       f'object')
            if depth + 1 > _MAX_DEPTH:
                raise NetworkLoadError(f'{source}: module tree nested too deeply at {full[:200]}')
            queue.append((full, child, depth + 1))
    return found


def record_tensors(record: PersistentRecord, source: str) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """The same as `module_tensors`, read from a published network object (walking `_modules`)."""
    tensors: dict[str, TensorEntry] = {}
    classes: dict[str, str] = {}
    for path, rec in walk_records(record, source):
        label = path or '<root>'
        classes[path] = rec.class_name
        for key in ('_parameters', '_buffers', '_modules'):
            value = rec.state.get(key)
            if not isinstance(value, dict):
                raise NetworkLoadError(f'{source}: malformed state of {label[:200]} ({rec.class_name[:80]}): {key} '
                                       f'is {"missing" if value is None else describe(value)}')
        for kind, key in (('parameter', '_parameters'), ('buffer', '_buffers')):
            for name, t in rec.state[key].items():
                if not isinstance(name, str):
                    raise NetworkLoadError(f'{source}: {kind} name {describe(name)} of {label[:200]} is not a string')
                full = f'{path}.{name}' if path else name
                if t is not None and type(t) not in (torch.Tensor, torch.nn.Parameter):
                    raise NetworkLoadError(f'{source}: {kind} {full[:200]} is a {type(t).__name__}, expected a '
                                           f'tensor')
                tensors[full] = (kind, t)
    return tensors, classes


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def assign_tensors(G: torch.nn.Module, file_tensors: Mapping[str, TensorEntry], source: str, what: str,
                   file_classes: Optional[Mapping[str, str]] = None) -> None:
    """Place every file tensor into G by dotted name, converting floating dtypes to G's (float32).

    Missing, unexpected, wrongly shaped or wrongly typed tensors, parameter/buffer
    confusion and (when `file_classes` is given) differing sub-module classes are
    collected and raised together as one NetworkLoadError. Parameters end up with
    requires_grad=False. A tensor sharing storage with another is copied.
    """
    ours, our_classes = module_tensors(G)
    problems = []
    if file_classes is not None:
        for path in sorted(set(file_classes) | set(our_classes)):
            label = path or '<root>'
            if path not in our_classes:
                problems.append(f'unexpected sub-module {label} ({file_classes[path]})')
            elif path not in file_classes:
                problems.append(f'missing sub-module {label} ({our_classes[path]})')
            elif file_classes[path] != our_classes[path]:
                problems.append(f'{label} is a {file_classes[path]} in the file, a {our_classes[path]} here')
    for name in sorted(set(file_tensors) | set(ours)):
        file_kind, t = file_tensors.get(name, (None, None))
        our_kind, o = ours.get(name, (None, None))
        if t is None and o is None:
            continue
        if o is None:
            problems.append(f'unexpected tensor {name} {_shape(t)}')
        elif t is None:
            problems.append(f'missing tensor {name} {_shape(o)}')
        elif file_kind is not None and file_kind != our_kind:
            problems.append(f'{name} is a {file_kind} in the file, a {our_kind} here')
        elif t.shape != o.shape:
            problems.append(f'shape mismatch for {name}: {_shape(t)} in the file, {_shape(o)} expected')
        elif t.dtype != o.dtype and not (t.is_floating_point() and o.is_floating_point()):
            problems.append(f'dtype mismatch for {name}: {t.dtype} in the file, {o.dtype} expected')
    if problems:
        more = f'; and {len(problems) - _MAX_PROBLEMS_SHOWN} more' if len(problems) > _MAX_PROBLEMS_SHOWN else ''
        raise NetworkLoadError(f'{source}: {what} does not match the {G.architecture} generator built from its '
                               f'constructor arguments: {"; ".join(problems[:_MAX_PROBLEMS_SHOWN])}{more}')

    modules = dict(G.named_modules(remove_duplicate=False))
    seen_storages: set[int] = set()
    for name, (_kind, t) in file_tensors.items():
        if t is None:
            continue
        our_kind, o = ours[name]
        t = t.detach().to(device='cpu', dtype=o.dtype)
        storage = t.untyped_storage()
        if storage.data_ptr() in seen_storages or not t.is_contiguous() \
                or storage.nbytes() != t.numel() * t.element_size():
            t = t.clone(memory_format=torch.contiguous_format)
        seen_storages.add(t.untyped_storage().data_ptr())
        path, _, leaf = name.rpartition('.')
        if our_kind == 'parameter':
            modules[path]._parameters[leaf] = torch.nn.Parameter(t, requires_grad=False)
        else:
            modules[path]._buffers[leaf] = t


def check_values(G: torch.nn.Module, source: str) -> None:
    """Refuse weights that make every image NaN: non-finite values, or input magnitudes that are not positive."""
    problems = []
    for name, t in [*G.named_parameters(), *G.named_buffers()]:
        if t.is_floating_point() and not _all_finite(t.detach()):
            bad = int((~torch.isfinite(t)).sum())
            problems.append(f'{name} holds {bad} NaN or infinite value{"s" if bad > 1 else ""}')
        elif name.endswith('magnitude_ema') and not bool((t > 0).all()):
            problems.append(f'{name} is not positive ({float(t.min()):g})')
    if problems:
        more = f'; and {len(problems) - _MAX_PROBLEMS_SHOWN} more' if len(problems) > _MAX_PROBLEMS_SHOWN else ''
        raise NetworkLoadError(f'{source}: the network cannot produce images: '
                               f'{"; ".join(problems[:_MAX_PROBLEMS_SHOWN])}{more}')


def _all_finite(t: torch.Tensor) -> bool:
    """A sum is finite when every value is (an overflowing sum is then settled by the exact test)."""
    if t.device.type == 'cpu' and t.dtype in (torch.float32, torch.float64, torch.float16):
        total = float(np.sum(t.numpy()))   # numpy: one thread, no thread-pool wake-up per small tensor.
    else:
        total = float(t.sum())
    return math.isfinite(total) or bool(torch.isfinite(t).all())


# Plain attributes that both implementations record and that decide the forward pass. Compared
# after loading; a difference means our module would not compute what the file's code computed.
_CHECKED_ATTRIBUTES = {
    'Generator': ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'num_ws'),
    'MappingNetwork': ('z_dim', 'c_dim', 'w_dim', 'num_ws', 'num_layers'),
    'FullyConnectedLayer': ('in_features', 'out_features', 'activation', 'weight_gain', 'bias_gain'),
    'SynthesisNetwork': ('num_ws', 'img_resolution', 'img_channels', 'output_scale', 'layer_names',
                         'block_resolutions'),
    'SynthesisInput': ('channels', 'size', 'sampling_rate', 'bandwidth'),
    'SynthesisLayer': ('in_channels', 'out_channels', 'is_torgb', 'in_size', 'out_size', 'conv_kernel',
                       'conv_clamp', 'up_factor', 'down_factor', 'padding', 'use_fp16', 'resolution', 'up',
                       'use_noise', 'activation'),
    'ToRGBLayer': ('conv_clamp', 'weight_gain'),
    'SynthesisBlock': ('in_channels', 'resolution', 'is_last', 'architecture', 'num_conv', 'num_torgb', 'use_fp16'),
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def attribute_mismatches(G: torch.nn.Module, record: PersistentRecord) -> list[str]:
    """Differences between the file's recorded forward-pass attributes and ours (see _CHECKED_ATTRIBUTES)."""
    modules = dict(G.named_modules(remove_duplicate=False))
    mismatches = []
    for path, rec in walk_records(record, '<file>'):
        module = modules.get(path)
        for attr in _CHECKED_ATTRIBUTES.get(rec.class_name, ()):
            if module is None or attr not in rec.state or attr not in vars(module):
                continue
            try:
                theirs, ours = to_plain(rec.state[attr], attr), to_plain(vars(module)[attr], attr)
            except ValueError:
                continue
            if not _same(theirs, ours):
                mismatches.append(f'{path or "<root>"}.{attr}: {theirs!r:.60} in the file, {ours!r:.60} here')
    return mismatches


def generator_from_record(record: PersistentRecord, source: str, key: str) -> torch.nn.Module:
    """Our Generator (eval mode, no grad) holding every tensor of a published network object."""
    architecture = detect_architecture(record, source, key)
    file_tensors, file_classes = record_tensors(record, source)
    kwargs = record_kwargs(record, architecture, source)
    G = build_generator(architecture, kwargs, source, file_tensors)
    assign_tensors(G, file_tensors, source, f"'{key}'", file_classes)
    check_values(G, source)
    mismatches = attribute_mismatches(G, record)
    if mismatches:
        warnings.warn(f'{source}: {len(mismatches)} recorded attribute(s) of {key!r} differ from our module, images '
                      f'may differ from the original implementation: {"; ".join(mismatches[:_MAX_PROBLEMS_SHOWN])}',
                      NetworkMismatchWarning, stacklevel=5)
    return G.eval().requires_grad_(False)
