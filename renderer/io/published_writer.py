"""Writing networks in the published pickle format, for the loader's tests and benchmarks.

A published pickle is a dict ('G', 'D', 'G_ema', 'augment_pipe',
'training_set_kwargs', ...) whose networks are pickled as a reduce call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, with meta =
{type, version, module_src, class_name, state}; `state` is the module's
__dict__ with nested network objects in `_modules` (docs/checkpoint-format.md).
The files written here have exactly that structure, with a placeholder comment
as `module_src` (so the published code could not run them); while they are
written, stand-in modules `torch_utils.persistence` and `dnnlib.util` exist in
`sys.modules` so that pickle can name their globals, and are removed afterwards.

Writers return `Persistent` trees that callers may edit (see `Persistent.child`)
before `write_pickle` dumps them.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import pathlib
import pickle
import sys
import types
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch

from renderer.io.safe_unpickle import EasyDict as LoadedEasyDict

HARMLESS_SOURCE = '# Stand-in for the source text of the module that defined the class.\n'
POSITIONAL = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels')
STAND_IN_MODULES = ('torch_utils', 'torch_utils.persistence', 'dnnlib', 'dnnlib.util')


def _reconstruct_persistent_obj(meta: dict) -> dict:
    """Stand-in for the published function; it only has to exist under that name (never runs module_src)."""
    return meta


class EasyDict(LoadedEasyDict):
    """`dnnlib.util.EasyDict` as the writer pickles it (the loader reads it back as its own EasyDict)."""
    __module__ = 'dnnlib.util'


_reconstruct_persistent_obj.__module__ = 'torch_utils.persistence'


@contextlib.contextmanager
def stand_in_modules() -> Iterator[None]:
    """Register the stand-in modules in sys.modules for the duration of the block (pickle looks globals up)."""
    added = [name for name in STAND_IN_MODULES if name not in sys.modules]
    modules = {name: types.ModuleType(name) for name in STAND_IN_MODULES}
    modules['torch_utils'].persistence = modules['torch_utils.persistence']
    modules['dnnlib'].util = modules['dnnlib.util']
    modules['torch_utils.persistence']._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules['dnnlib.util'].EasyDict = EasyDict
    for name in added:
        sys.modules[name] = modules[name]
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def easydict(d: dict) -> EasyDict:
    """EasyDict copy of d, nested dicts included."""
    return EasyDict({k: easydict(v) if isinstance(v, dict) else v for k, v in d.items()})


class Persistent:
    """One network object as published pickles store it."""

    def __init__(self, class_name: str, state: dict, module_src: str = HARMLESS_SOURCE, version: int = 6):
        self.meta = dict(type='class', version=version, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)

    @property
    def state(self) -> dict:
        return self.meta['state']

    def child(self, path: str) -> 'Persistent':
        """The nested object at a dotted module path, e.g. 'synthesis.input'."""
        node = self
        for name in path.split('.'):
            node = node.state['_modules'][name]
        return node


def module_record(module: torch.nn.Module, init_kwargs: Optional[dict] = None,
                  module_src: str = HARMLESS_SOURCE) -> Persistent:
    """A torch module as a published network object: its __dict__, tensors cloned, sub-modules nested."""
    state = {}
    for key, value in vars(module).items():
        if key in ('init_kwargs', 'info'):
            continue  # Attributes of our implementation only.
        if key == '_parameters':
            value = collections.OrderedDict(
                (n, None if p is None else torch.nn.Parameter(p.detach().clone(), requires_grad=False))
                for n, p in value.items())
        elif key == '_buffers':
            value = collections.OrderedDict((n, None if b is None else b.detach().clone()) for n, b in value.items())
        elif key == '_modules':
            value = collections.OrderedDict((n, None if m is None else module_record(m, module_src=module_src))
                                            for n, m in value.items())
        else:
            value = copy.deepcopy(value)
        state[key] = value
    state['training'] = False
    state['_init_args'] = ()
    state['_init_kwargs'] = easydict(init_kwargs or {})
    return Persistent(type(module).__name__, state, module_src)


def generator_record(G: torch.nn.Module, kwargs_style: str = 'flat', module_src: str = HARMLESS_SOURCE) -> Persistent:
    """G as a published 'Generator' object. kwargs_style: how its constructor arguments are recorded:
    'flat' (StyleGAN3 code base), 'nested' (StyleGAN2-ADA: synthesis arguments in `synthesis_kwargs`),
    'positional' (the five dimensions in `_init_args`).
    """
    kwargs = copy.deepcopy(G.init_kwargs)
    args = ()
    if kwargs_style == 'nested':
        synthesis = {k: kwargs.pop(k) for k in list(kwargs) if k not in POSITIONAL + ('mapping_kwargs',)}
        kwargs['synthesis_kwargs'] = synthesis
    elif kwargs_style == 'positional':
        args = tuple(kwargs.pop(k) for k in POSITIONAL)
    elif kwargs_style != 'flat':
        raise ValueError(f'unknown kwargs_style {kwargs_style!r}: expected flat, nested or positional')
    record = module_record(G, kwargs, module_src)
    record.state['_init_args'] = args
    return record


def discriminator_record() -> Persistent:
    """A small stand-in 'Discriminator' object (the loader only reports its presence)."""
    layer = torch.nn.Linear(4, 2)
    block = module_record(layer)
    block.meta['class_name'] = 'Conv2dLayer'
    state = module_record(torch.nn.Module()).state
    state['_modules'] = collections.OrderedDict(b4=block)
    state['_parameters'] = collections.OrderedDict(w=torch.nn.Parameter(torch.ones(3), requires_grad=False))
    state['_init_kwargs'] = easydict(dict(c_dim=0, img_resolution=32, img_channels=3, block_kwargs={}))
    return Persistent('Discriminator', state)


def augment_pipe_record() -> Persistent:
    state = module_record(torch.nn.Module()).state
    state['_buffers'] = collections.OrderedDict(p=torch.tensor(0.25), Hz_geom=torch.randn(12))
    state.update(xflip=1.0, rotate90=1.0, xint=1.0, scale=1.0)
    return Persistent('AugmentPipe', state)


TRAINING_SET_KWARGS = dict(class_name='training.dataset.ImageFolderDataset', path='~/datasets/ffhq-32x32.zip',
                           use_labels=False, max_size=70000, xflip=True, resolution=32, random_seed=0)


def snapshot(G_ema: torch.nn.Module, G: Optional[torch.nn.Module] = None, kwargs_style: str = 'flat',
             with_training_objects: bool = True, module_src: str = HARMLESS_SOURCE) -> dict:
    """A training snapshot dict as published: G, D, G_ema, augment_pipe, training_set_kwargs, progress."""
    data = dict(G=generator_record(G if G is not None else G_ema, kwargs_style, module_src),
                G_ema=generator_record(G_ema, kwargs_style, module_src))
    if with_training_objects:
        data = dict(G=data['G'], D=discriminator_record(), G_ema=data['G_ema'], augment_pipe=augment_pipe_record(),
                    training_set_kwargs=easydict(TRAINING_SET_KWARGS),
                    progress=dict(cur_nimg=torch.tensor(25000), cur_tick=np.int64(5), batch_size=np.float64(32.0),
                                  dtype=torch.float32, shape=torch.Size([2, 3])))
    return data


def write_pickle(path: Union[str, pathlib.Path], obj: Any, protocol: int = 4,
                 numpy_package: Optional[str] = None) -> pathlib.Path:
    """Pickle obj to path. numpy_package='numpy.core' rewrites numpy globals as older files have them
    (protocol <= 3 only, where globals are written as text lines)."""
    with stand_in_modules():
        data = pickle.dumps(obj, protocol=protocol)
    if numpy_package is not None:
        if protocol > 3:
            raise ValueError('numpy_package needs protocol <= 3')
        data = data.replace(b'numpy._core.multiarray\n', f'{numpy_package}.multiarray\n'.encode())
    path = pathlib.Path(path)
    path.write_bytes(data)
    return path


def write_published(path: Union[str, pathlib.Path], G_ema: torch.nn.Module, **kwargs: Any) -> pathlib.Path:
    """Write a published-format snapshot of G_ema (see `snapshot`) to path."""
    protocol = kwargs.pop('protocol', 4)
    numpy_package = kwargs.pop('numpy_package', None)
    return write_pickle(path, snapshot(G_ema, **kwargs), protocol, numpy_package)
