"""Download network files once into a local cache (standard library only).

The cache folder is `$AFV_CACHE_DIR` if set, else `$XDG_CACHE_HOME/alias-free-viz/networks`,
else `~/.cache/alias-free-viz/networks`. A URL's cached file is named
`<first 16 hex digits of sha256(url)>-<basename of the URL path>`. Once cached, a URL is
never fetched again.

A download goes to a locked temporary file `.<name>.XXXX.partial` in the cache folder and
is renamed into place only once it is complete (its size checked against Content-Length)
and verified by the caller (`fetch_and_verify`: it must load as a network), so a bad
response never enters the cache. On any failure, KeyboardInterrupt and a live renderer's
cancellation included, the temporary file is removed; one left by a killed process (its
lock gone) is removed by the next download once it is older than STALE_PARTIAL_S.

Limits: only http(s) URLs, and redirects only to http(s) (at most MAX_REDIRECTS); no
compressed or HTML responses; at most `max_bytes` (DEFAULT_MAX_BYTES); free space in the
cache folder for the declared size plus MIN_FREE_BYTES; `timeout` seconds without
MIN_PROGRESS_BYTES arriving (a dripping server) or `deadline_s` in all
(DEFAULT_DEADLINE_S) end it, and so does `cancel()` returning True. The transfer runs in a
helper thread while the caller's thread waits in steps of POLL_S, reporting progress
(renderer.media.progress, where a live renderer may cancel) and checking the limits.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, TypeVar, Union

from renderer.errors import NetworkLoadError
from renderer.media.progress import ProgressBar, report

try:
    import fcntl
except ImportError:  # Windows: stale temporary files are told by age alone.
    fcntl = None

CACHE_DIR_ENV = 'AFV_CACHE_DIR'
DEFAULT_MAX_BYTES = 4 << 30          # Largest download accepted (published networks: under 400 MB).
DEFAULT_DEADLINE_S = 3600.0          # Longest a download may take in all.
MIN_PROGRESS_BYTES = 64 << 10        # At least this much must arrive within every `timeout` seconds ...
MIN_FREE_BYTES = 256 << 20           # ... and this much space must stay free in the cache folder.
MAX_REDIRECTS = 5
STALE_PARTIAL_S = 60.0               # An unlocked temporary file older than this was left by a dead download.
POLL_S = 0.1                         # How often the waiting thread checks the limits and reports progress.
JOIN_S = 5.0                         # How long an abandoned transfer thread is waited for.
_CHUNK_BYTES = 1 << 20
_FREE_CHECK_BYTES = 64 << 20         # Without a declared size, free space is checked this often.

T = TypeVar('T')
PathOrStr = Union[str, os.PathLike]


def is_url(source: PathOrStr) -> bool:
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


def cache_path(url: str, cache_dir: Optional[PathOrStr] = None) -> Path:
    """Where `url` is (or will be) cached: a short hash of the URL plus its sanitised basename."""
    basename = urllib.parse.unquote(os.path.basename(urllib.parse.urlparse(url).path))
    basename = re.sub(r'[^A-Za-z0-9._-]', '_', basename).lstrip('.')[-100:] or 'network'
    digest = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f'{digest}-{basename}'


def fetch(url: str, cache_dir: Optional[PathOrStr] = None, progress: bool = True, timeout: float = 60, *,
          deadline_s: Optional[float] = DEFAULT_DEADLINE_S, cancel: Optional[Callable[[], bool]] = None,
          max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """The local path of `url`, downloading it into the cache first if it is not there yet (see the module)."""
    return fetch_and_verify(url, lambda path: None, cache_dir, progress, timeout, deadline_s=deadline_s,
                            cancel=cancel, max_bytes=max_bytes)[0]


def fetch_and_verify(url: str, verify: Callable[[Path], T], cache_dir: Optional[PathOrStr] = None,
                     progress: bool = True, timeout: float = 60, *,
                     deadline_s: Optional[float] = DEFAULT_DEADLINE_S, cancel: Optional[Callable[[], bool]] = None,
                     max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Path, T]:
    """(cache path, verify(path)): `verify` reads the cached copy, or a fresh download before it is cached.

    A download enters the cache only if `verify` returns; whatever it raises propagates, and the
    download is discarded. timeout: seconds in which at least MIN_PROGRESS_BYTES must arrive.
    deadline_s: the whole download (None: no limit). cancel: polled; True stops the download.
    """
    if not is_url(url):
        raise NetworkLoadError(f'{url}: not an http(s) URL')
    dest = cache_path(url, cache_dir)
    if dest.is_file():
        return dest, verify(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(dest.parent)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f'.{dest.name[:80]}.', suffix='.partial')
    except OSError as e:
        raise NetworkLoadError(f'{url}: cannot write to the cache folder {dest.parent} ({e.strerror or e})') from e
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):   # Held until closed: marks the file as in use.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(fd, 'wb', closefd=False) as out:
            _Download(url, out, dest, progress, timeout, deadline_s, cancel, max_bytes).run()
        result = verify(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
        return dest, result
    except OSError as e:
        raise NetworkLoadError(f'{url}: download failed or cannot write to the cache folder {dest.parent} '
                               f'({type(e).__name__}: {e})') from e
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def remove_stale_partials(folder: PathOrStr, older_than_s: float = STALE_PARTIAL_S) -> list[str]:
    """Remove temporary files of downloads (and saves) that died: unlocked and older than `older_than_s`.

    Returns the names removed. Without file locks (Windows) only files older than a day are removed.
    """
    removed = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith('.') and '.partial' in entry.name):
                continue
            with contextlib.suppress(OSError):
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if not entry.is_file(follow_symlinks=False) or age < older_than_s:
                    continue
                if fcntl is None:
                    if age > 86400:
                        os.remove(entry.path)
                        removed.append(entry.name)
                    continue
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # Fails while its download is alive.
                    os.remove(entry.path)
                    removed.append(entry.name)
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _megabytes(n: float) -> str:
    return f'{n / 2 ** 20:.1f}'


class _RecordsSocket:
    """Mixed into an HTTP(S) connection: it tells its transfer its socket (so a waiting thread can close it)."""

    def __init__(self, transfer: '_Transfer', *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._transfer = transfer

    def connect(self) -> None:
        super().connect()
        self._transfer.add_socket(self.sock)


class _RecordingHTTP(_RecordsSocket, http.client.HTTPConnection):
    pass


class _RecordingHTTPS(_RecordsSocket, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, transfer: '_Transfer'):
        super().__init__()
        self._transfer = transfer

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_RecordingHTTP, self._transfer), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, transfer: '_Transfer'):
        super().__init__()
        self._transfer = transfer
        self._ssl_context = ssl.create_default_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_RecordingHTTPS, self._transfer), req, context=self._ssl_context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow at most MAX_REDIRECTS redirects, and only to http(s) URLs."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, url: str):
        super().__init__()
        self._url = url

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any) -> Any:
        target = headers.get('Location') or headers.get('URI')
        if target is not None:
            absolute = urllib.parse.urljoin(req.full_url, target)
            if urllib.parse.urlparse(absolute).scheme.lower() not in ('http', 'https'):
                raise NetworkLoadError(f'{self._url}: the server redirects to {absolute[:200]}, which is not an '
                                       f'http(s) URL; refused')
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Transfer(threading.Thread):
    """The blocking part of a download, in a helper thread: connect, check the headers, stream to `out`."""

    def __init__(self, url: str, out: BinaryIO, folder: Path, timeout: float, max_bytes: int):
        super().__init__(name='afv-download', daemon=True)
        self.url, self.out, self.folder, self.timeout, self.max_bytes = url, out, folder, timeout, max_bytes
        self.received = 0
        self.total: Optional[int] = None
        self.error: Optional[BaseException] = None
        self.finished = threading.Event()
        self.headers_seen = threading.Event()
        self._abandoned = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add_socket(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            abandoned = self._abandoned.is_set()
        if abandoned:
            _shut(sock)

    def abandon(self) -> None:
        """Stop the transfer: close its sockets (a blocked read returns) and wait a little for the thread."""
        with self._lock:
            self._abandoned.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)
        self.join(JOIN_S)

    def run(self) -> None:
        try:
            self._transfer()
        except BaseException as e:  # Handed to the waiting thread, which raises it there.
            self.error = e
        finally:
            self.finished.set()

    def _transfer(self) -> None:
        request = urllib.request.Request(self.url, headers={'User-Agent': 'alias-free-viz',
                                                            'Accept-Encoding': 'identity'})
        opener = urllib.request.build_opener(_HTTPHandler(self), _HTTPSHandler(self), _Redirects(self.url))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                self.total = self._check_headers(response)
                self.headers_seen.set()
                self._stream(response)
        except NetworkLoadError:
            raise
        except urllib.error.HTTPError as e:
            raise NetworkLoadError(f'{self.url}: download failed: HTTP {e.code} {str(e.reason)[:200]}') from e
        except urllib.error.URLError as e:
            raise NetworkLoadError(f'{self.url}: cannot connect ({str(e.reason)[:200]})') from e
        except (http.client.HTTPException, OSError, ValueError) as e:  # Timeouts, resets, malformed responses.
            if self._abandoned.is_set():
                return
            raise NetworkLoadError(f'{self.url}: download failed ({type(e).__name__}: {str(e)[:200]})') from e

    def _check_headers(self, response: http.client.HTTPResponse) -> Optional[int]:
        encoding = (response.headers.get('Content-Encoding') or 'identity').strip().lower()
        if encoding != 'identity':
            raise NetworkLoadError(f'{self.url}: the server sent {encoding[:40]}-encoded content, not the file itself')
        kind = (response.headers.get('Content-Type') or '').split(';')[0].strip().lower()
        if kind in ('text/html', 'application/xhtml+xml'):
            raise NetworkLoadError(f'{self.url}: the server sent a web page ({kind}), not a network file (an error '
                                   f'or login page?)')
        length = response.headers.get('Content-Length')
        if length is None:
            return None
        if not re.fullmatch(r'[0-9]{1,20}', length.strip()):
            raise NetworkLoadError(f'{self.url}: invalid Content-Length header {length[:40]!r}')
        total = int(length.strip())
        if total > self.max_bytes:
            raise NetworkLoadError(f'{self.url}: the file is {_megabytes(total)} MB, more than the '
                                   f'{_megabytes(self.max_bytes)} MB a download may have')
        self._check_free_space(total)
        return total

    def _check_free_space(self, needed: int) -> None:
        free = shutil.disk_usage(self.folder).free
        if free < needed + MIN_FREE_BYTES:
            raise NetworkLoadError(f'{self.url}: not enough free space in the cache folder {self.folder} '
                                   f'({_megabytes(free)} MB free, {_megabytes(needed)} MB needed plus '
                                   f'{_megabytes(MIN_FREE_BYTES)} MB to spare)')

    def _stream(self, response: http.client.HTTPResponse) -> None:
        next_free_check = _FREE_CHECK_BYTES
        while not self._abandoned.is_set():
            chunk = response.read1(_CHUNK_BYTES)
            if not chunk or self._abandoned.is_set():
                return
            if self.received + len(chunk) > self.max_bytes:
                raise NetworkLoadError(f'{self.url}: the server sends more than the {_megabytes(self.max_bytes)} '
                                       f'MB a download may have')
            self.out.write(chunk)
            self.received += len(chunk)
            if self.total is None and self.received >= next_free_check:
                self._check_free_space(0)
                next_free_check += _FREE_CHECK_BYTES


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Download:
    """Run a `_Transfer` and wait for it here: progress, cancellation, the stall rule and the deadline."""

    def __init__(self, url: str, out: BinaryIO, dest: Path, progress: bool, timeout: float,
                 deadline_s: Optional[float], cancel: Optional[Callable[[], bool]], max_bytes: int):
        self.url, self.dest, self.progress, self.timeout = url, dest, progress, timeout
        self.deadline_s, self.cancel = deadline_s, cancel
        self.transfer = _Transfer(url, out, dest.parent, timeout, max_bytes)

    def run(self) -> None:
        transfer = self.transfer
        start = last_progress = time.monotonic()
        progress_bytes = 0
        bar = None
        transfer.start()
        try:
            while not transfer.finished.wait(POLL_S):
                now = time.monotonic()
                if self.cancel is not None and self.cancel():
                    raise NetworkLoadError(f'{self.url}: download cancelled')
                if self.deadline_s is not None and now - start > self.deadline_s:
                    raise NetworkLoadError(f'{self.url}: download not finished within its deadline of '
                                           f'{self.deadline_s:g} s ({_megabytes(transfer.received)} MB received)')
                if transfer.received - progress_bytes >= MIN_PROGRESS_BYTES:
                    progress_bytes, last_progress = transfer.received, now
                elif now - last_progress > self.timeout:
                    raise NetworkLoadError(f'{self.url}: download stalled: less than {MIN_PROGRESS_BYTES >> 10} KB '
                                           f'arrived in {self.timeout:g} s ({transfer.received} bytes so far)')
                if bar is None and transfer.headers_seen.is_set():
                    bar = self._bar(transfer)
                if bar is not None:
                    bar.update(transfer.received)
                else:  # Still connecting: report anyway, so that a live renderer can cancel here.
                    report(f'downloading {self.dest.name}', 0, None, 'connecting')
            if transfer.error is not None:
                raise transfer.error
            bar = bar or self._bar(transfer)
            bar.update(transfer.received)
        finally:
            if not transfer.finished.is_set():
                transfer.abandon()
            if bar is not None:
                bar.close()
        if transfer.total is not None and transfer.received != transfer.total:
            raise NetworkLoadError(f'{self.url}: download truncated: received {transfer.received} of '
                                   f'{transfer.total} bytes')

    def _bar(self, transfer: _Transfer) -> ProgressBar:
        return ProgressBar(f'downloading {self.dest.name}', transfer.total, 'MB', describe=_megabytes,
                           enabled=self.progress)
