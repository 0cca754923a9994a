"""Download network files once into a local cache (standard library only).

The cache folder is `$AFV_CACHE_DIR` if set, else `$XDG_CACHE_HOME/alias-free-viz/networks`,
else `~/.cache/alias-free-viz/networks`. A URL's cached file is named
`<first 16 hex digits of sha256(url)>-<basename of the URL path>`. A download goes
to a `.tmp` file in the cache folder that is renamed into place only once complete
(its size checked against Content-Length); on any failure, KeyboardInterrupt
included, the temporary file is removed. Once cached, a URL is never fetched again.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional, Union

from .errors import NetworkLoadError

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
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f'{dest.name}.', suffix='.tmp')
    except OSError as e:
        raise NetworkLoadError(f'{url}: cannot write to the cache folder {dest.parent} ({e})') from e
    try:
        with os.fdopen(fd, 'wb') as f:
            _download(url, f, dest.name, progress, timeout)
        os.replace(tmp_name, dest)
    except BaseException as e:
        try:
            os.remove(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and not isinstance(e, NetworkLoadError):
            raise NetworkLoadError(f'{url}: download failed ({type(e).__name__}: {e})') from e
        raise
    return dest


def _download(url: str, out: BinaryIO, name: str, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={'User-Agent': 'alias-free-viz'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get('Content-Length')
            total = int(length) if length is not None and length.isdigit() else None
            bar = _ProgressBar(name, total) if progress else None
            received = 0
            try:
                while True:
                    chunk = response.read(_CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(received)
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as e:
        raise NetworkLoadError(f'{url}: download failed: HTTP {e.code} {e.reason}') from e
    except urllib.error.URLError as e:
        raise NetworkLoadError(f'{url}: cannot connect ({e.reason})') from e
    except (http.client.HTTPException, OSError) as e:  # includes timeouts and connection resets
        raise NetworkLoadError(f'{url}: download failed ({type(e).__name__}: {e})') from e
    if total is not None and received != total:
        raise NetworkLoadError(f'{url}: download truncated: received {received} of {total} bytes')


class _ProgressBar:
    """A one-line progress display on stderr, redrawn at most 10 times per second."""

    def __init__(self, name: str, total: Optional[int], width: int = 30):
        self.name = name
        self.total = total
        self.width = width
        self.last_draw = 0.0
        self.drawn = False

    def update(self, received: int) -> None:
        now = time.monotonic()
        if now - self.last_draw < 0.1 and received != self.total:
            return
        self.last_draw = now
        mb = received / 2 ** 20
        if self.total:
            frac = min(received / self.total, 1)
            filled = int(frac * self.width)
            line = (f'downloading {self.name} [{"#" * filled}{"." * (self.width - filled)}] '
                    f'{mb:.1f}/{self.total / 2 ** 20:.1f} MB {frac * 100:3.0f}%')
        else:
            line = f'downloading {self.name}: {mb:.1f} MB'
        sys.stderr.write('\r' + line)
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write('\n')
            sys.stderr.flush()
