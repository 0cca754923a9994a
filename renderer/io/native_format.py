"""Our own network file format: tensors plus a JSON architecture description, nothing executable.

A file is a `torch.save` (zip container) of the dict

    {'format': 'alias-free-viz-network', 'version': 1,
     'architecture': 'stylegan3' | 'stylegan2',
     'init_kwargs_json': JSON of the Generator's constructor arguments,
     'state_dict': {dotted tensor name: tensor},
     'metadata_json': JSON of the NetworkInfo (where it came from, training kwargs, ...)}

and is read back without torch.load, by our own reader of torch.save containers
(renderer.io.torch_format), which accepts only tensors over exactly sized
storage records and plain containers, and never allocates more than the file
holds. The JSON fields are limited in length (MAX_JSON_CHARS) and nesting.
Files are written to a temporary name and renamed into place
(renderer.media.atomic), so a crash never leaves a half-written network.
"""

from __future__ import annotations

import json
import os
from typing import Any, BinaryIO, Union

import torch

from renderer.errors import NetworkLoadError
from renderer.io.checkpoint import (
    NetworkInfo,
    assign_tensors,
    build_generator,
    check_values,
    module_tensors,
    network_info,
    to_plain,
)
from renderer.io.pickle_vm import describe
from renderer.io.torch_format import read_zip_container
from renderer.media.atomic import atomic_path

FORMAT_NAME = 'alias-free-viz-network'
FORMAT_VERSION = 1
ZIP_MAGIC = b'PK\x03\x04'
MAX_JSON_CHARS = {'init_kwargs_json': 1 << 16, 'metadata_json': 1 << 20}
_INFO_FIELDS = ('key', 'file_keys', 'has_discriminator', 'has_augment_pipe', 'training_set_kwargs', 'origin')


def is_native(head: bytes) -> bool:
    """Does a file starting with `head` look like a torch.save zip container (our format's carrier)?"""
    return head.startswith(ZIP_MAGIC)


def save_network(G: torch.nn.Module, path: Union[str, os.PathLike]) -> None:
    """Write generator G (ours, either architecture) to `path` in our format, atomically."""
    info = network_info(G)
    kwargs = to_plain(G.init_kwargs, 'init_kwargs')
    tensors = {}
    for name, (_kind, t) in module_tensors(G)[0].items():
        if t is not None:
            t = t.detach().to('cpu').contiguous()
            if t.untyped_storage().nbytes() != t.numel() * t.element_size():
                t = t.clone()  # Save only the tensor, not a larger storage it views.
            tensors[name] = t
    metadata = info.to_dict()
    metadata['origin'] = info.origin or info.source
    payload = {
        'format': FORMAT_NAME,
        'version': FORMAT_VERSION,
        'architecture': G.architecture,
        'init_kwargs_json': json.dumps(kwargs, allow_nan=False),
        'state_dict': tensors,
        'metadata_json': json.dumps(to_plain(metadata, 'metadata', strict=False)),
    }
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            torch.save(payload, f)


def _json_field(payload: dict, key: str, source: str) -> dict:
    text = payload.get(key)
    if not isinstance(text, str):
        raise NetworkLoadError(f'{source}: field {key!r} is missing or not a string')
    if len(text) > MAX_JSON_CHARS[key]:
        raise NetworkLoadError(f'{source}: field {key!r} holds {len(text)} characters, more than the '
                               f'{MAX_JSON_CHARS[key]} allowed')
    try:
        value = to_plain(json.loads(text), key)
    except RecursionError:
        raise NetworkLoadError(f'{source}: field {key!r} is nested too deeply') from None
    except ValueError as e:
        raise NetworkLoadError(f'{source}: field {key!r} is not valid JSON of plain values ({str(e)[:200]})') from None
    if not isinstance(value, dict):
        raise NetworkLoadError(f'{source}: field {key!r} must hold a JSON object')
    return value


def load_native(file: BinaryIO, label: str, **info_overrides: Any) -> torch.nn.Module:
    """Read a network in our format from an open file; `label` names it in errors.

    `info_overrides` set fields of the resulting `G.info` (its `source` defaults to `label`).
    """
    payload = read_zip_container(file, label)
    if not isinstance(payload, dict) or payload.get('format') != FORMAT_NAME:
        raise NetworkLoadError(f'{label}: a torch.save file, but not an alias-free-viz network '
                               f'(expected format {FORMAT_NAME!r})')
    if payload.get('version') != FORMAT_VERSION:
        raise NetworkLoadError(f'{label}: alias-free-viz network format version {describe(payload.get("version"))} '
                               f'is not supported (this code reads version {FORMAT_VERSION})')
    architecture = payload.get('architecture')
    kwargs = _json_field(payload, 'init_kwargs_json', label)
    metadata = _json_field(payload, 'metadata_json', label)
    state = payload.get('state_dict')
    if not isinstance(state, dict) or not all(isinstance(k, str) and type(v) in (torch.Tensor, torch.nn.Parameter)
                                              for k, v in state.items()):
        raise NetworkLoadError(f'{label}: field state_dict must map tensor names to tensors')
    file_tensors = {name: (None, t) for name, t in state.items()}
    G = build_generator(architecture, kwargs, label, file_tensors)
    assign_tensors(G, file_tensors, label, 'the network')
    check_values(G, label)
    G = G.eval().requires_grad_(False)
    try:
        G.info = NetworkInfo.from_module(G, **{
            **{k: v for k, v in metadata.items() if k in _INFO_FIELDS},
            'source': label, 'format': 'native', **info_overrides})
    except TypeError as e:
        raise NetworkLoadError(f'{label}: malformed metadata ({e})') from None
    return G
