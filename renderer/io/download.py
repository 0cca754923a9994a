"""Download network files once into a local cache (standard library only).

The cache folder is `$AFV_CACHE_DIR` if set, else `$XDG_CACHE_HOME/alias-free-viz/networks`,
else `~/.cache/alias-free-viz/networks`. A URL's cached file is named
`<first 16 hex digits of sha256(url)>-<basename of the URL path>`. A download goes
to a temporary file in the cache folder (renderer.media.atomic) renamed into place only once complete
(its size checked against Content-Length); on any failure, KeyboardInterrupt
included, the temporary file is removed. Once cached, a URL is never fetched again.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional, Union

from renderer.errors import NetworkLoadError
from renderer.media.atomic import atomic_path
from renderer.media.progress import ProgressBar

CACHE_DIR_ENV = 'AFV_CACHE_DIR'
_CHUNK_BYTES = 1 << 20


def is_url(source: Union[str, os.PathLike]) -> bool:
    """True for http:// and https:// URLs."""
    return isinstance(source, str) and urllib.parse.urlparse(source).scheme.lower() in ('http', 'https')


def default_cache_dir() -> Path:
    """$AFV_CACHE_DIR, else $XDG_CACHE_HOME/alias-free-viz/networks, else ~/.cache/alias-free-viz/networks."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get('XDG_CACHE_HOME')
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / '.cache'
    return base / 'alias-free-viz' / 'networks'


def cache_path(url: str, cache_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Where `url` is (or will be) cached: a short hash of the URL plus its sanitised basename."""
    basename = urllib.parse.unquote(os.path.basename(urllib.parse.urlparse(url).path))
    basename = re.sub(r'[^A-Za-z0-9._-]', '_', basename).lstrip('.')[-100:] or 'network'
    digest = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f'{digest}-{basename}'


def fetch(url: str, cache_dir: Optional[Union[str, os.PathLike]] = None, progress: bool = True,
          timeout: float = 60) -> Path:
    """The local path of `url`, downloading it into the cache first if it is not there yet."""
    dest = cache_path(url, cache_dir)
    if dest.is_file():
        return dest
    try:
        with atomic_path(dest) as tmp_name:
            with open(tmp_name, 'wb') as f:
                _download(url, f, dest.name, progress, timeout)
    except NetworkLoadError:
        raise
    except OSError as e:
        raise NetworkLoadError(f'{url}: download failed or cannot write to the cache folder {dest.parent} '
                               f'({type(e).__name__}: {e})') from e
    return dest


def _download(url: str, out: BinaryIO, name: str, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={'User-Agent': 'alias-free-viz'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get('Content-Length')
            total = int(length) if length is not None and length.isdigit() else None
            bar = ProgressBar(f'downloading {name}', total, 'MB', describe=_megabytes, enabled=progress)
            received = 0
            try:
                while True:
                    chunk = response.read(_CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(received)
            finally:
                bar.close()
    except urllib.error.HTTPError as e:
        raise NetworkLoadError(f'{url}: download failed: HTTP {e.code} {e.reason}') from e
    except urllib.error.URLError as e:
        raise NetworkLoadError(f'{url}: cannot connect ({e.reason})') from e
    except (http.client.HTTPException, OSError) as e:  # includes timeouts and connection resets
        raise NetworkLoadError(f'{url}: download failed ({type(e).__name__}: {e})') from e
    if total is not None and received != total:
        raise NetworkLoadError(f'{url}: download truncated: received {received} of {total} bytes')


def _megabytes(n: float) -> str:
    return f'{n / 2 ** 20:.1f}'
