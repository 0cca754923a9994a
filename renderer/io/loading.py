"""Safe network loading: `load_network(source, key='G_ema')`.

`source` is a local path or an http(s) URL (downloaded once into the cache,
see `renderer.io.download`). The file's format is told from its content:
- a published StyleGAN2 / StyleGAN3 network pickle (or a training snapshot in
  the same format) is read with the restricted unpickler of
  `renderer.io.safe_unpickle`, which never runs code from the file, and the
  generator under `key` is rebuilt as our module (`renderer.io.checkpoint`);
- our own format (`renderer.io.native_format`, written by `save_network`).
The result is our Generator in eval mode with every tensor of the file and
`requires_grad=False`; `G.info` / `network_info(G)` describe it. Every failure
raises `NetworkLoadError` (a ValueError) whose message names the file or URL; a
download enters the cache only once it has loaded (renderer.io.download).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

import torch

from renderer.errors import NetworkLoadError, UnsafePickleError
from renderer.io import download
from renderer.io.checkpoint import NetworkInfo, NetworkMismatchWarning, generator_from_record, network_info, to_plain
from renderer.io.native_format import is_native, load_native, save_network
from renderer.io.safe_unpickle import PersistentRecord, load_pickle

__all__ = ['load_network', 'save_network', 'network_info', 'NetworkInfo', 'NetworkLoadError', 'UnsafePickleError',
           'NetworkMismatchWarning']

PathOrUrl = Union[str, os.PathLike]


def load_network(source: PathOrUrl, key: str = 'G_ema', *, device: Union[str, torch.device] = 'cpu',
                 cache_dir: Optional[PathOrUrl] = None, progress: bool = True,
                 deadline_s: Optional[float] = download.DEFAULT_DEADLINE_S,
                 cancel: Optional[Callable[[], bool]] = None) -> torch.nn.Module:
    """Load a generator from a published pickle or our format, from a path or an http(s) URL.

    key: which network of a published pickle ('G_ema', or 'G'); ignored for our format.
    device: where to put the result. cache_dir / progress: URL downloads (see renderer.io.download).
    deadline_s: longest a download may take (None: no limit). cancel: polled during a download; True stops it.
    """
    if download.is_url(source):
        dest = download.cache_path(source, cache_dir)
        label = f'{dest} (downloaded from {source})'

        def verify(path: Any) -> torch.nn.Module:
            return load_file(path, key, label=label, source=source, cache_path=str(dest))

        _, G = download.fetch_and_verify(source, verify, cache_dir, progress, deadline_s=deadline_s, cancel=cancel)
    else:
        G = load_file(source, key)
    return G.to(device)


def load_file(path: PathOrUrl, key: str = 'G_ema', label: Optional[str] = None,
              **info_overrides: Any) -> torch.nn.Module:
    """Load a generator from a local file; `label` names it in errors (default: the path)."""
    path = os.fspath(path)
    label = label or path
    info_overrides.setdefault('source', path)
    try:
        f = open(path, 'rb')
    except FileNotFoundError:
        raise NetworkLoadError(f'{label}: no such file') from None
    except IsADirectoryError:
        raise NetworkLoadError(f'{label}: is a directory, not a network file') from None
    except OSError as e:
        raise NetworkLoadError(f'{label}: cannot open ({e.strerror or e})') from None
    with f:
        try:
            head = f.read(8)
            f.seek(0)
        except OSError as e:
            raise NetworkLoadError(f'{label}: cannot read ({e.strerror or e})') from None
        if not head:
            raise NetworkLoadError(f'{label}: empty file')
        try:
            if is_native(head):
                return load_native(f, label, **info_overrides)
            return _load_published(f, key, label, info_overrides)
        except (NetworkLoadError, Warning):  # Warnings: raised only when a filter turns them into errors.
            raise
        except (RecursionError, MemoryError) as e:
            raise NetworkLoadError(f'{label}: {"nested too deeply" if isinstance(e, RecursionError) else "too large"}'
                                   f' to load ({type(e).__name__})') from None
        except Exception as e:  # A case the checks above missed: still an error about this file (and a bug).
            raise NetworkLoadError(f'{label}: cannot be loaded (unexpected {type(e).__name__}: {str(e)[:200]}; '
                                   f'please report this file as a loader bug)') from e


def _load_published(f: Any, key: str, label: str, info_overrides: dict) -> torch.nn.Module:
    data = load_pickle(f, label)
    if isinstance(data, PersistentRecord) and key == 'G_ema':
        record, file_keys, data = data, (), {}  # A bare network object rather than a snapshot dict.
    elif isinstance(data, dict):
        file_keys = tuple(str(k)[:100] for k in list(data)[:1000])
        if key not in data:
            shown = ', '.join(file_keys[:50]) + (', ...' if len(file_keys) > 50 else '')
            raise NetworkLoadError(f'{label}: no {key!r} network in the file (keys: {shown or "none"})')
        record = data[key]
        if not isinstance(record, PersistentRecord):
            raise NetworkLoadError(f'{label}: {key!r} holds a {type(record).__name__}, not a network object')
    else:
        raise NetworkLoadError(f'{label}: the pickle holds a {type(data).__name__}, expected a dict of networks '
                               f'such as {key!r}')
    G = generator_from_record(record, label, key)
    training_set_kwargs = data.get('training_set_kwargs')
    try:
        training_set_kwargs = to_plain(training_set_kwargs, 'training_set_kwargs', strict=False) \
            if isinstance(training_set_kwargs, dict) else None
    except ValueError as e:
        raise NetworkLoadError(f'{label}: {e}') from None
    G.info = NetworkInfo.from_module(G, **{
        'format': 'published-pickle', 'key': key, 'file_keys': file_keys,
        'has_discriminator': data.get('D') is not None,
        'has_augment_pipe': data.get('augment_pipe') is not None,
        'training_set_kwargs': training_set_kwargs,
        **info_overrides})
    return G
