"""Writers of network pickles in the published format, for the loading tests.

A published pickle is a dict ('G', 'D', 'G_ema', 'augment_pipe',
'training_set_kwargs', ...) whose networks are pickled as a reduce call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, with meta =
{type, version, module_src, class_name, state}; `state` is the module's
__dict__ with nested network objects in `_modules` (generator-spec section 6).
Here the stand-in packages under tests/fixture_modules provide those names;
`Persistent` objects reduce to them, tensors are pickled the standard way.

Writers return `Persistent` trees that tests may edit (see `Persistent.child`)
before `write_pickle` dumps them.
"""

from __future__ import annotations

import collections
import copy
import importlib
import pathlib
import pickle
import sys
from typing import Any, Optional

import numpy as np
import torch

from renderer.networks import stylegan2, stylegan3

FIXTURE_MODULES = pathlib.Path(__file__).resolve().parent / 'fixture_modules'
HARMLESS_SOURCE = '# Stand-in for the source text of the module that defined the class.\n'
POSITIONAL = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels')
ARCHS = ('stylegan3-t', 'stylegan3-r', 'stylegan2')


def fixture_modules() -> tuple[Any, Any]:
    """The stand-in `torch_utils.persistence` and `dnnlib.util` modules (puts fixture_modules on sys.path)."""
    if str(FIXTURE_MODULES) not in sys.path:
        sys.path.insert(0, str(FIXTURE_MODULES))
    return importlib.import_module('torch_utils.persistence'), importlib.import_module('dnnlib.util')


def easydict(d: dict) -> Any:
    """dnnlib.util.EasyDict copy of d, nested dicts included."""
    _, util = fixture_modules()
    return util.EasyDict({k: easydict(v) if isinstance(v, dict) else v for k, v in d.items()})


class Persistent:
    """One network object as published pickles store it."""

    def __init__(self, class_name: str, state: dict, module_src: str = HARMLESS_SOURCE, version: int = 6):
        self.meta = dict(type='class', version=version, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        persistence, _ = fixture_modules()
        return persistence._reconstruct_persistent_obj, (self.meta,)

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
        raise ValueError(kwargs_style)
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


def write_pickle(path: Any, obj: Any, protocol: int = 4, numpy_package: Optional[str] = None) -> pathlib.Path:
    """Pickle obj to path. numpy_package='numpy.core' rewrites numpy globals as older files have them
    (protocol <= 3 only, where globals are written as text lines)."""
    data = pickle.dumps(obj, protocol=protocol)
    if numpy_package is not None:
        if protocol > 3:
            raise ValueError('numpy_package needs protocol <= 3')
        data = data.replace(b'numpy._core.multiarray\n', f'{numpy_package}.multiarray\n'.encode())
    path = pathlib.Path(path)
    path.write_bytes(data)
    return path


def write_published(path: Any, G_ema: torch.nn.Module, **kwargs: Any) -> pathlib.Path:
    """Write a published-format snapshot of G_ema (see `snapshot`) to path."""
    protocol = kwargs.pop('protocol', 4)
    numpy_package = kwargs.pop('numpy_package', None)
    return write_pickle(path, snapshot(G_ema, **kwargs), protocol, numpy_package)


SMALL_CONFIGS = {
    'stylegan3-t': (stylegan3.Generator, dict(channel_base=2048, channel_max=32)),
    'stylegan3-r': (stylegan3.Generator, dict(channel_base=4096, channel_max=64, conv_kernel=1,
                                              use_radial_filters=True)),
    'stylegan2': (stylegan2.Generator, dict(channel_base=1024, channel_max=32, mapping_kwargs=dict(num_layers=2))),
}


def small_generator(arch: str, c_dim: int = 0, seed: int = 0, res: int = 32) -> torch.nn.Module:
    """A small random generator ('stylegan3-t', 'stylegan3-r', 'stylegan2') in eval mode, every tensor non-trivial:
    random biases, w_avg, input-magnitude EMAs and noise strengths, so that a misplaced tensor shows."""
    cls, kwargs = SMALL_CONFIGS[arch]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = cls(32, c_dim, 32, res, 3, **copy.deepcopy(kwargs)).eval()
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            leaf = name.rsplit('.', 1)[-1]
            if leaf in ('bias', 'w_avg'):
                t.add_(torch.randn_like(t) * 0.1)
            elif leaf == 'magnitude_ema':
                t.fill_(float(torch.rand([]) + 0.5))
            elif leaf == 'noise_strength':
                t.fill_(0.5)
    return G


def render(G: torch.nn.Module, seeds=(0, 1, 2), psi: float = 1.0, class_idx: int = 0) -> torch.Tensor:
    """Images [len(seeds), C, H, W] for seeds (numpy RandomState latents), one-hot labels for conditional G."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    c = torch.zeros([len(seeds), G.c_dim])
    if G.c_dim:
        c[:, class_idx % G.c_dim] = 1
    with torch.no_grad():
        return G(z, c, truncation_psi=psi, truncation_cutoff=None, noise_mode='const')


def tensors_equal(A: torch.nn.Module, B: torch.nn.Module) -> list[str]:
    """Names of tensors that differ (or exist in only one) between A and B; empty when identical."""
    a = dict(A.named_parameters()) | dict(A.named_buffers())
    b = dict(B.named_parameters()) | dict(B.named_buffers())
    bad = sorted(set(a) ^ set(b))
    bad += [n for n in sorted(set(a) & set(b)) if a[n].dtype != b[n].dtype or not torch.equal(a[n], b[n])]
    return bad


class Reduce:
    """An object that pickles as a call fn(*args): what hostile pickles are made of."""

    def __init__(self, fn: Any, *args: Any):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return self.fn, self.args
