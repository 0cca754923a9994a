"""URL loading against a local HTTP server on 127.0.0.1: download once, then the cache; no partial files.

Hostile servers too: web pages, compressed or truncated bodies, drips, endless or huge bodies,
redirects to other schemes, downloads killed mid-way. Every wait is bounded.
"""

from __future__ import annotations

import gzip
import http.server
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

import pickle_fixtures as pf
import pytest

from renderer import NetworkLoadError, load_network, network_info
from renderer.io import download
from renderer.live.control import Cancelled
from renderer.media.progress import listening

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'   # Close-delimited bodies are possible (no Content-Length needed).

    def do_GET(self) -> None:
        server: FileServer = self.server.owner
        server.requests.append(self.path)
        behaviour = server.behaviours.get(self.path)
        if behaviour is not None:
            try:
                behaviour(self)
            except OSError:  # The client went away (as it should, when it refuses a response).
                pass
            return
        body = server.routes.get(self.path)
        if body is None:
            self.send_error(404, 'Not Found')
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.path in server.cut_short:
            self.wfile.write(body[:len(body) // 2])  # Then the connection closes mid-body.
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class FileServer:
    """A threaded HTTP server serving `routes` (path -> bytes), counting requests."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.behaviours: dict[str, Callable[[_Handler], None]] = {}   # path -> writes the whole response
        self.cut_short: set[str] = set()
        self.requests: list[str] = []
        self.stopping = threading.Event()   # Ends endless responses when the test is over.
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def close(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
            self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> pathlib.Path:
    path = tmp_path / 'cache'
    monkeypatch.setenv(download.CACHE_DIR_ENV, str(path))
    return path


@pytest.fixture(scope='module')
def network_bytes(tmp_path_factory):
    G = pf.small_generator('stylegan2')
    return G, pf.write_published(tmp_path_factory.mktemp('net') / 'net.pkl', G).read_bytes()


def test_download_once_then_cache(server, cache_dir, network_bytes, capsys):
    G, data = network_bytes
    server.routes['/nets/stylegan2-tiny.pkl'] = data
    url = server.url('/nets/stylegan2-tiny.pkl')
    H = load_network(url)
    assert server.requests == ['/nets/stylegan2-tiny.pkl']
    assert 'downloading' in capsys.readouterr().err
    cached = download.cache_path(url)
    assert cached.parent == cache_dir and cached.name.endswith('-stylegan2-tiny.pkl')
    assert cached.read_bytes() == data and sorted(p.name for p in cache_dir.iterdir()) == [cached.name]
    info = network_info(H)
    assert (info.source, info.cache_path) == (url, str(cached))
    assert pf.tensors_equal(G, H) == []

    server.close()  # The second load must not connect (there is nothing to connect to any more).
    H2 = load_network(url, progress=False)
    assert len(server.requests) == 1
    assert pf.tensors_equal(G, H2) == []


def test_interrupted_download_leaves_nothing(server, cache_dir, network_bytes):
    server.routes['/net.pkl'] = network_bytes[1]
    server.cut_short.add('/net.pkl')
    url = server.url('/net.pkl')
    with pytest.raises(NetworkLoadError, match='truncated') as info:
        load_network(url, progress=False)
    assert url in str(info.value)
    assert list(cache_dir.iterdir()) == []


def test_keyboard_interrupt_leaves_nothing(server, cache_dir, network_bytes, monkeypatch):
    server.routes['/net.pkl'] = network_bytes[1]

    def interrupt(self, received):
        raise KeyboardInterrupt

    monkeypatch.setattr(download.ProgressBar, 'update', interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_network(server.url('/net.pkl'))
    assert list(cache_dir.iterdir()) == []


def test_http_error(server, cache_dir):
    url = server.url('/missing.pkl')
    with pytest.raises(NetworkLoadError, match='404') as info:
        load_network(url, progress=False)
    assert url in str(info.value)
    assert list(cache_dir.iterdir()) == []


def test_connection_refused(cache_dir):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}/net.pkl'
    with pytest.raises(NetworkLoadError, match='cannot connect') as info:
        load_network(url, progress=False)
    assert url in str(info.value)
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []


def test_downloaded_file_that_is_not_a_network(server, cache_dir):
    server.routes['/page.html'] = b'<html>not a network</html>'
    url = server.url('/page.html')
    with pytest.raises(NetworkLoadError) as info:
        load_network(url, progress=False)
    assert url in str(info.value) and str(download.cache_path(url)) in str(info.value)


def test_explicit_cache_dir_argument(server, tmp_path, network_bytes):
    server.routes['/net.pkl'] = network_bytes[1]
    load_network(server.url('/net.pkl'), cache_dir=tmp_path / 'elsewhere', progress=False)
    assert len(list((tmp_path / 'elsewhere').iterdir())) == 1


def test_cache_locations(monkeypatch, tmp_path):
    monkeypatch.delenv(download.CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert download.default_cache_dir() == tmp_path / 'xdg' / 'alias-free-viz' / 'networks'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert download.default_cache_dir() == tmp_path / 'home' / '.cache' / 'alias-free-viz' / 'networks'
    monkeypatch.setenv(download.CACHE_DIR_ENV, str(tmp_path / 'override'))
    assert download.default_cache_dir() == tmp_path / 'override'


def test_cache_names():
    a = download.cache_path('https://example.com/a/stylegan3-t-ffhq-1024x1024.pkl', '/c')
    b = download.cache_path('https://example.org/a/stylegan3-t-ffhq-1024x1024.pkl', '/c')
    assert a.name.endswith('-stylegan3-t-ffhq-1024x1024.pkl') and a != b
    weird = download.cache_path('https://example.com/x/../we%20ird%3Bname.pkl?token=1', '/c')
    assert weird.parent == pathlib.Path('/c') and weird.name.endswith('-we_ird_name.pkl')
    assert download.cache_path('https://example.com/', '/c').name.endswith('-network')
    assert download.is_url('https://x/y.pkl') and download.is_url('HTTP://x/y.pkl')
    assert not download.is_url('/tmp/y.pkl') and not download.is_url('file:///tmp/y.pkl')


# ----------------------------------------------------------------------------------------------
# Hostile servers.

def respond(status: int = 200, headers: dict = None, body: bytes = b'', close: bool = True) -> Callable:
    """A behaviour: this status, these headers, this body, then the connection closes."""
    def behaviour(handler: _Handler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
    return behaviour


def drip(chunk: bytes, interval_s: float, length: int = None, limit_s: float = 30.0) -> Callable:
    """A behaviour: headers (with Content-Length `length` if given), then `chunk` every `interval_s`."""
    def behaviour(handler: _Handler) -> None:
        server: FileServer = handler.server.owner
        handler.send_response(200)
        handler.send_header('Content-Type', 'application/octet-stream')
        if length is not None:
            handler.send_header('Content-Length', str(length))
        handler.end_headers()
        end = time.monotonic() + limit_s
        while time.monotonic() < end and not server.stopping.wait(interval_s):
            handler.wfile.write(chunk)
            handler.wfile.flush()
    return behaviour


def expect_refused(url: str, fragment: str, cache_dir: pathlib.Path, **kwargs) -> float:
    """Load `url`, expect a NetworkLoadError naming it with `fragment`, nothing left in the cache; the seconds."""
    start = time.monotonic()
    with pytest.raises(NetworkLoadError) as info:
        load_network(url, progress=False, **kwargs)
    seconds = time.monotonic() - start
    assert url in str(info.value) and fragment in str(info.value), str(info.value)
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []
    return seconds


def test_web_page_is_refused_and_not_cached(server, cache_dir, network_bytes):
    server.behaviours['/net.pkl'] = respond(200, {'Content-Type': 'text/html; charset=utf-8'}, b'<html>login</html>')
    url = server.url('/net.pkl')
    expect_refused(url, 'web page', cache_dir)
    server.behaviours.pop('/net.pkl')
    server.routes['/net.pkl'] = network_bytes[1]   # The server is fixed: the next load downloads again.
    load_network(url, progress=False)
    assert server.requests == ['/net.pkl', '/net.pkl']


def test_gzip_encoded_response_is_refused(server, cache_dir, network_bytes):
    body = gzip.compress(network_bytes[1])
    server.behaviours['/net.pkl'] = respond(200, {'Content-Encoding': 'gzip', 'Content-Length': str(len(body))}, body)
    expect_refused(server.url('/net.pkl'), 'gzip-encoded', cache_dir)


def test_compressed_bytes_are_not_cached(server, cache_dir, network_bytes):
    """A 200 response of gzip data without saying so: it does not load, so it does not enter the cache."""
    body = gzip.compress(network_bytes[1])
    server.behaviours['/net.pkl'] = respond(200, {'Content-Length': str(len(body))}, body)
    url = server.url('/net.pkl')
    expect_refused(url, 'not a readable network pickle', cache_dir)
    expect_refused(url, 'not a readable network pickle', cache_dir)
    assert server.requests == ['/net.pkl', '/net.pkl']   # Each load asks the server again.


def test_truncated_close_delimited_body_is_retried(server, cache_dir, network_bytes):
    G, data = network_bytes
    server.behaviours['/net.pkl'] = respond(200, {'Content-Type': 'application/octet-stream'}, data[:len(data) // 2])
    url = server.url('/net.pkl')
    expect_refused(url, 'ends prematurely', cache_dir)
    server.behaviours['/net.pkl'] = respond(200, {}, data)   # Retry, now complete (still without a length).
    assert pf.tensors_equal(G, load_network(url, progress=False)) == []
    assert download.cache_path(url).read_bytes() == data


def test_invalid_content_length(server, cache_dir, network_bytes):
    server.behaviours['/net.pkl'] = respond(200, {'Content-Length': '\u00b2'}, network_bytes[1])
    expect_refused(server.url('/net.pkl'), 'invalid Content-Length', cache_dir)


def test_huge_content_length_refused_at_once(server, cache_dir):
    server.behaviours['/net.pkl'] = drip(b'\0' * (1 << 16), 0.001, length=10 ** 15)
    seconds = expect_refused(server.url('/net.pkl'), 'more than the 4096.0 MB', cache_dir)
    assert seconds < 2


def test_free_space_checked(server, cache_dir):
    server.behaviours['/net.pkl'] = drip(b'\0' * (1 << 16), 0.001, length=10 ** 15)
    url = server.url('/net.pkl')
    with pytest.raises(NetworkLoadError, match='not enough free space') as info:
        download.fetch(url, progress=False, max_bytes=10 ** 16)
    assert url in str(info.value) and list(cache_dir.iterdir()) == []


def test_endless_body_capped(server, cache_dir):
    server.behaviours['/net.pkl'] = drip(b'\0' * (1 << 16), 0.001)
    url = server.url('/net.pkl')
    start = time.monotonic()
    with pytest.raises(NetworkLoadError, match='more than the 2.0 MB') as info:
        download.fetch(url, progress=False, max_bytes=2 << 20)
    assert url in str(info.value) and time.monotonic() - start < 10
    assert list(cache_dir.iterdir()) == []


def test_dripping_server_stalls(server, cache_dir):
    server.behaviours['/net.pkl'] = drip(b'x', 0.05, length=10 << 20)
    url = server.url('/net.pkl')
    start = time.monotonic()
    with pytest.raises(NetworkLoadError, match='stalled') as info:
        download.fetch(url, progress=False, timeout=1)
    assert url in str(info.value) and 0.9 < time.monotonic() - start < 5
    assert list(cache_dir.iterdir()) == []


def test_deadline(server, cache_dir):
    """Steady progress (no stall), but slower than the caller's deadline allows."""
    server.behaviours['/net.pkl'] = drip(b'\0' * (1 << 17), 0.02, length=1 << 30)
    seconds = expect_refused(server.url('/net.pkl'), 'deadline of 1 s', cache_dir, deadline_s=1)
    assert 0.9 < seconds < 5


def test_cancel_callable(server, cache_dir):
    server.behaviours['/net.pkl'] = drip(b'x', 0.05, length=10 << 20)
    start = time.monotonic()
    seconds = expect_refused(server.url('/net.pkl'), 'cancelled', cache_dir,
                             cancel=lambda: time.monotonic() - start > 0.5)
    assert 0.4 < seconds < 3


@pytest.mark.parametrize('where', ['while connecting', 'while receiving'])
def test_live_renderer_cancellation_stops_a_download(where, cache_dir):
    """The live renderer cancels by raising from its progress listener: that works while a server drips,
    and even before it has answered (reports are made while waiting)."""
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(1)   # Accepts connections but never answers: "connecting" stays forever.
        server = FileServer() if where == 'while receiving' else None
        try:
            if server is not None:
                server.behaviours['/net.pkl'] = drip(b'x', 0.05, length=10 << 20)
                url = server.url('/net.pkl')
            else:
                url = f'http://127.0.0.1:{listener.getsockname()[1]}/net.pkl'
            start = time.monotonic()

            def listener_(event):
                if time.monotonic() - start > 0.5:
                    raise Cancelled('newer request')

            with listening(listener_), pytest.raises(Cancelled):
                load_network(url, progress=False)
            assert time.monotonic() - start < 3
            assert list(cache_dir.iterdir()) == []
        finally:
            if server is not None:
                server.close()


def test_redirects_only_to_http(server, cache_dir, network_bytes):
    server.routes['/net.pkl'] = network_bytes[1]
    server.behaviours['/ftp'] = respond(302, {'Location': 'ftp://127.0.0.1/net.pkl'})
    server.behaviours['/file'] = respond(302, {'Location': 'file:///etc/passwd'})
    server.behaviours['/ok'] = respond(302, {'Location': server.url('/net.pkl')})
    expect_refused(server.url('/ftp'), 'not an http(s) URL', cache_dir)
    expect_refused(server.url('/file'), 'not an http(s) URL', cache_dir)
    load_network(server.url('/ok'), progress=False)   # Control: an http redirect is followed.
    assert server.requests[-1] == '/net.pkl'


def test_redirect_loop_ends(server, cache_dir):
    server.behaviours['/loop'] = respond(302, {'Location': '/loop'})
    expect_refused(server.url('/loop'), '302', cache_dir)
    assert len(server.requests) <= download.MAX_REDIRECTS + 1


def partials(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if '.partial' in p.name) if folder.exists() else []


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, 'timed out'
        time.sleep(0.02)


def make_old(path: pathlib.Path) -> None:
    past = time.time() - 2 * download.STALE_PARTIAL_S
    os.utime(path, (past, past))


def test_partial_of_a_killed_download_is_cleaned_up(server, cache_dir, network_bytes):
    server.behaviours['/slow.pkl'] = drip(b'x' * 100, 0.05, length=10 << 20)
    code = (f'from renderer.io import download; '
            f'download.fetch({server.url("/slow.pkl")!r}, cache_dir={str(cache_dir)!r}, progress=False)')
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: bool(partials(cache_dir)) and partials(cache_dir)[0].stat().st_size > 0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    left = partials(cache_dir)
    assert len(left) == 1   # What a killed download leaves ...
    make_old(left[0])
    server.routes['/net.pkl'] = network_bytes[1]
    load_network(server.url('/net.pkl'), progress=False)   # ... the next download removes.
    assert partials(cache_dir) == [] and len(list(cache_dir.iterdir())) == 1


def test_partial_of_a_live_download_is_kept(server, cache_dir):
    server.behaviours['/slow.pkl'] = drip(b'x' * 100, 0.05, length=10 << 20)
    stop = threading.Event()
    errors = []

    def run() -> None:
        try:
            download.fetch(server.url('/slow.pkl'), progress=False, cancel=stop.is_set)
        except NetworkLoadError as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: bool(partials(cache_dir)))
        make_old(partials(cache_dir)[0])
        assert download.remove_stale_partials(cache_dir) == []   # Locked by its download: kept.
        assert len(partials(cache_dir)) == 1
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and 'cancelled' in str(errors[0])
    assert partials(cache_dir) == []


def test_fresh_unlocked_partial_is_kept(cache_dir):
    """Only old unlocked temporary files are removed (a new one may be a download about to lock it)."""
    cache_dir.mkdir()
    path = cache_dir / '.abc-net.pkl.x1y2.partial'
    path.write_bytes(b'half')
    assert download.remove_stale_partials(cache_dir) == [] and path.exists()
    make_old(path)
    assert download.remove_stale_partials(cache_dir) == [path.name] and not path.exists()
