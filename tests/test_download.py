"""URL loading against a local HTTP server on 127.0.0.1: download once, then the cache; no partial files."""

from __future__ import annotations

import http.server
import pathlib
import socket
import threading

import pickle_fixtures as pf
import pytest

from renderer import NetworkLoadError, load_network, network_info
from renderer.io import download


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: FileServer = self.server.owner
        server.requests.append(self.path)
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
        self.cut_short: set[str] = set()
        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def close(self) -> None:
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
