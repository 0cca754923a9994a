"""The renderer process under attack: bounded close, no orphans, any number of deaths, torn messages,
requests that hang. The GUI side never raises and never waits on the worker."""

from __future__ import annotations

import http.server
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import fault_workers
import pytest

from renderer.live import process
from renderer.live.process import AsyncRenderer
from renderer.live.render_args import ERROR_CRASH, RenderArgs

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLOSE_BOUND_S = 3 * process.CLOSE_TIMEOUT_S + 5     # close() gives the worker CLOSE_TIMEOUT_S twice at most


def poll(renderer: AsyncRenderer, until, timeout_s: float = 120.0) -> list:
    """Results delivered while waiting (bounded) for until(results) to hold."""
    results = []
    deadline = time.monotonic() + timeout_s
    while not until(results):
        if time.monotonic() > deadline:
            raise AssertionError(f'gave up after {timeout_s} s; results so far: {[r.error for r in results]}')
        result = renderer.get_result()
        if result is not None:
            results.append(result)
        time.sleep(0.01)
    return results


def exited(pid: int) -> bool:
    try:
        status = pathlib.Path(f'/proc/{pid}/status').read_text()
    except FileNotFoundError:
        return True
    return 'State:\tZ' in status            # A zombie has exited; only its parent's bookkeeping remains.


def timed_close(renderer: AsyncRenderer) -> float:
    start = time.monotonic()
    renderer.close()
    return time.monotonic() - start


def test_close_while_the_worker_is_still_starting():
    renderer = AsyncRenderer()
    renderer.set_args(RenderArgs(seed=1))
    pid = renderer.pid
    assert timed_close(renderer) < CLOSE_BOUND_S and exited(pid)


def test_close_during_a_long_render():
    renderer = AsyncRenderer()
    renderer.set_args(RenderArgs(seed=2, diagnostic='average', average_samples=1024))
    poll(renderer, lambda _: renderer.progress is not None and renderer.progress.stage == 'averaged image A')
    pid = renderer.pid
    assert timed_close(renderer) < CLOSE_BOUND_S and exited(pid)


def test_set_args_never_blocks_and_close_is_bounded_with_a_stopped_worker():
    """A worker that cannot read (stopped) while megabytes of requests pile up in front of it."""
    renderer = AsyncRenderer()
    poll(renderer, lambda _: time.monotonic() - renderer._link.last_heard < 0.5)   # the worker is up
    pid = renderer.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        big = tuple(float(i) for i in range(16 * 512))            # ~100 KB per pickled request
        for seed in range(200):                                    # far more than a pipe holds
            renderer.set_args(RenderArgs(seed=seed, w=big))
        assert renderer.is_busy and renderer.get_result() is None
        assert timed_close(renderer) < CLOSE_BOUND_S and exited(pid)
    finally:
        if not exited(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_worker_exits_when_the_gui_process_is_killed(tmp_path):
    script = ('import sys, time; from renderer.live.process import AsyncRenderer; r = AsyncRenderer(); '
              'print(r.pid, flush=True); time.sleep(600)')
    gui = subprocess.Popen([sys.executable, '-c', script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(gui.stdout.readline())
        time.sleep(1.0)
        gui.kill()
        gui.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not exited(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert exited(worker), 'the renderer process outlived the GUI process'
    finally:
        gui.kill()


def test_the_gui_side_survives_any_number_of_worker_deaths():
    renderer = AsyncRenderer()
    try:
        crashes = 0
        for seed in range(10):
            renderer.set_args(RenderArgs(seed=seed))
            os.kill(renderer.pid, signal.SIGKILL)
            results = poll(renderer, lambda rs: any(r.error_kind == ERROR_CRASH for r in rs))
            crashes += 1
            assert 'killed by signal 9' in results[-1].error
        assert renderer.restarts == crashes == 10
        assert 'times in a row' in results[-1].error and not renderer.is_busy   # no endless re-sending
        renderer.set_args(RenderArgs(seed=42))                   # a new request still renders
        results = poll(renderer, lambda rs: any(r.image is not None for r in rs))
        assert results[-1].args.seed == 42 and results[-1].error is None
    finally:
        renderer.close()


def test_a_worker_dying_mid_message_is_reported_and_its_image_block_freed():
    renderer = AsyncRenderer(worker_main=fault_workers.dies_mid_message)
    try:
        renderer.set_args(RenderArgs(seed=1))
        results = poll(renderer, lambda rs: any(r.error_kind == ERROR_CRASH for r in rs), timeout_s=60)
        assert 'exited with code 3' in results[-1].error
        assert not [p for p in os.listdir('/dev/shm') if p.startswith(process.shm_prefix(os.getpid()))]
    finally:
        assert timed_close(renderer) < CLOSE_BOUND_S


class DrippingHandler(http.server.BaseHTTPRequestHandler):
    """Promises a large network file, then sends it one byte at a time, slowly."""
    stop = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(10 ** 8))
        self.end_headers()
        try:
            while not self.stop.wait(0.2):
                self.wfile.write(b'\x80')
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def dripping_url():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), DrippingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    DrippingHandler.stop.clear()
    try:
        yield f'http://127.0.0.1:{server.server_port}/drip-{time.monotonic_ns()}.pkl'
    finally:
        DrippingHandler.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_hanging_download_is_given_up_when_the_user_switches_network(dripping_url):
    """The download reports progress as bytes drip in, so switching network cancels it there, without a restart."""
    renderer = AsyncRenderer(stop_deadline_s=3.0)
    try:
        renderer.set_args(RenderArgs(network=dripping_url))
        poll(renderer, lambda _: renderer._running_id == 1)        # the worker is in the download
        time.sleep(4.0)                                             # needed, so its heartbeat goes on
        assert renderer.restarts == 0 and renderer.is_busy
        renderer.set_args(RenderArgs(network=''))                  # the user opens the demo instead
        results = poll(renderer, lambda rs: any(r.image is not None for r in rs), timeout_s=180)
        assert not any(r.error_kind == ERROR_CRASH for r in results)
        assert renderer.restarts == 0 and results[-1].args.network == '' and results[-1].error is None
    finally:
        renderer.close()


def test_cancel_gets_out_of_a_hanging_download(dripping_url):
    renderer = AsyncRenderer(stop_deadline_s=3.0)
    try:
        renderer.set_args(RenderArgs(network=dripping_url))
        poll(renderer, lambda _: renderer._running_id == 1)
        renderer.cancel()
        results = poll(renderer, lambda rs: any(r.cancelled for r in rs), timeout_s=60)
        assert results[-1].cancelled and not renderer.is_busy and renderer.restarts == 0   # cancelled, not killed
    finally:
        renderer.close()


def test_a_worker_stuck_without_safe_points_is_replaced_when_not_needed():
    """The watchdog: while the stuck stage is still wanted the worker is left alone (its heartbeat goes on);
    once the user wants something else, or cancels, it is replaced after the deadline."""
    stuck = fault_workers.HANG_PREFIX + 'a'
    renderer = AsyncRenderer(stop_deadline_s=2.0, worker_main=fault_workers.hangs_without_safe_points)
    try:
        renderer.set_args(RenderArgs(network=stuck))
        poll(renderer, lambda _: renderer._running_id == 1)
        time.sleep(3.0)
        assert renderer.restarts == 0 and renderer.is_busy
        renderer.set_args(RenderArgs(network='fine'))
        results = poll(renderer, lambda rs: any(r.image is not None for r in rs), timeout_s=60)
        assert any(r.error_kind == ERROR_CRASH and 'did not respond' in r.error for r in results)
        assert renderer.restarts == 1 and results[-1].args.network == 'fine'
        renderer.set_args(RenderArgs(network=fault_workers.HANG_PREFIX + 'b'))
        stuck_id = renderer._sent_id
        poll(renderer, lambda _: renderer._running_id == stuck_id)
        renderer.cancel()
        results = poll(renderer, lambda rs: any(r.cancelled for r in rs), timeout_s=60)
        assert renderer.restarts == 2 and results[-1].cancelled and not renderer.is_busy   # replaced, as cancelled
    finally:
        renderer.close()


def test_a_request_cancelled_before_it_starts_is_answered():
    """Cancel while the worker is still busy with an older request: the newer one is never rendered, and the
    GUI gets a cancelled answer instead of waiting for ever."""
    renderer = AsyncRenderer(stop_deadline_s=30.0, worker_main=fault_workers.hangs_without_safe_points)
    try:
        renderer.set_args(RenderArgs(network=fault_workers.SLOW_PREFIX + '2'))
        poll(renderer, lambda _: renderer._running_id == 1)
        renderer.set_args(RenderArgs(network='fine'))          # waits behind the slow one,
        renderer.cancel()                                      # and is cancelled before it starts
        results = poll(renderer, lambda _: not renderer.is_busy, timeout_s=60)
        assert results and results[-1].cancelled and results[-1].args.network == 'fine'
        assert renderer.restarts == 0
    finally:
        renderer.close()
