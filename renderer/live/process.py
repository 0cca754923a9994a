"""Rendering in a separate process: the latest request wins, long work can be cancelled, nothing blocks the GUI.

    renderer = AsyncRenderer()          # or AsyncRenderer(sync=True) for tests and debugging
    renderer.set_args(args)             # cheap; call every frame, only changes are sent
    result = renderer.get_result()      # newest result (partial or final) not yet returned, or None
    renderer.progress                   # what the running request is doing (Progress) or None
    renderer.cancel()                   # stop the running request at its next safe point
    renderer.close()                    # idempotent, returns within a few seconds whatever the worker does

The worker process (started with 'spawn', so CUDA is safe) has a reader thread that
always takes the newest request from its pipe, so the render loop can ask, at every
safe point of a stage (renderer.live.control), whether the newest request still needs
that stage; if not, the stage stops and the newest request starts (the caches are
kept, so whatever the two share is not computed twice). A request stops the running one
only once it has stayed the newest for SUPERSEDE_AFTER_S: while requests stream in (a
drag, an animation) each running render finishes and is shown, so the picture follows
the pointer instead of waiting for it to stop; a single change (a new seed during a
64-sample averaged image) takes over at the first safe point after that short wait. Results, partial results of
long stages and progress come back through a second pipe, read by a thread of the GUI
process, so `get_result` only looks at what has already arrived. A result's image
travels in a shared-memory block named after the GUI process (`afv<pid>_...`), which
the GUI copies out and frees; blocks left by a worker that died are removed.

The two pipes also tie the processes' lives together: when the GUI process is gone the
worker's reader sees the end of its pipe and the worker exits (at once if idle, at the
next safe point if busy, and by force after EXIT_GRACE_S); when the worker dies, the GUI
side sees the end of the other pipe, reports it as an error result and starts a new
worker, re-sending the latest request unless it has crashed the worker
MAX_RESENDS times in a row.

Watchdog: a worker thread sends a heartbeat every HEARTBEAT_S while the worker starts,
waits, or works on something the newest request still needs. When the user has cancelled
or a newer request waits, and the worker has been silent for `stop_deadline_s` (a loader
stuck in a hostile file, a download that drips, a kernel that never returns), the GUI
side replaces it with a new worker, which renders the newest request.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import multiprocessing as mp
import os
import secrets
import signal
import threading
import time
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection
from typing import Any, Callable, Optional

import numpy as np

from renderer.live.control import Progress, RenderControl
from renderer.live.render_args import ERROR_CRASH, RenderArgs, RenderResult

MAX_RESENDS = 3               # Consecutive worker deaths after which the latest request is not sent again.
EXIT_GRACE_S = 3.0            # A worker whose GUI process is gone exits by force after this long.
CLOSE_TIMEOUT_S = 2.0         # close() waits this long for the worker to stop, then kills it.
PROGRESS_INTERVAL_S = 0.1     # Progress messages are sent at most this often.
SUPERSEDE_AFTER_S = 0.2       # A newer request stops the running one once it has stayed the newest this long.
HEARTBEAT_S = 1.0             # The worker says it is alive this often (see the module docstring).
STOP_DEADLINE_S = 15.0        # Silence after which a worker that should stop is replaced.
SHM_DIR = '/dev/shm'          # Where POSIX shared memory is visible as files (Linux).


# --------------------------------------------------------------------------------------------------------
# Images through shared memory.

def shm_prefix(pid: int) -> str:
    """Name prefix of the image blocks sent to the GUI process `pid`."""
    return f'afv{pid}_'


def _export_image(result: RenderResult, prefix: str) -> Optional[tuple[str, tuple[int, ...], str]]:
    """Move result.image into a new shared-memory block owned by the receiver; returns its handle."""
    image = result.image
    result.image = None
    if image is None:
        return None
    shm = shared_memory.SharedMemory(name=prefix + secrets.token_hex(6), create=True, size=max(image.nbytes, 1))
    try:
        np.ndarray(image.shape, image.dtype, buffer=shm.buf)[...] = image
        # The receiving process unlinks the block; stop this process's tracker from doing it too.
        resource_tracker.unregister(shm._name, 'shared_memory')  # noqa: SLF001 (documented workaround)
        return shm.name, image.shape, image.dtype.str
    finally:
        shm.close()


def _import_image(handle: tuple[str, tuple[int, ...], str]) -> Optional[np.ndarray]:
    """Copy an image out of shared memory and free the block."""
    name, shape, dtype = handle
    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return None
    try:
        return np.ndarray(shape, np.dtype(dtype), buffer=shm.buf).copy()
    finally:
        shm.close()
        shm.unlink()


def remove_leftover_images(prefix: str) -> int:
    """Unlink shared-memory blocks named `prefix*` (images of a worker that died before handing them over)."""
    removed = 0
    for path in glob.glob(os.path.join(SHM_DIR, glob.escape(prefix) + '*')):
        try:
            os.remove(path)
            removed += 1
        except OSError:
            pass
    return removed


# --------------------------------------------------------------------------------------------------------
# The worker process.

class _Inbox:
    """The worker's view of its request pipe, kept current by a reader thread."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._cond = threading.Condition()
        self._latest: Optional[tuple[int, RenderArgs]] = None
        self._latest_since = 0.0   # When the latest request arrived (monotonic seconds).
        self._taken = 0            # Id of the last request handed to the render loop.
        self._cancelled = 0        # Requests up to this id were cancelled.
        self._closed = False
        self._needed: tuple[int, set] = (0, set())   # Stage keys of the latest request, by id.
        self.running: Optional[tuple[int, RenderControl]] = None   # The request being rendered.
        threading.Thread(target=self._read, name='afv-inbox', daemon=True).start()

    @property
    def closed(self) -> bool:
        return self._closed

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):     # The GUI process is gone.
                message = ('gone',)
            with self._cond:
                kind = message[0]
                if kind == 'request':
                    self._latest = (message[1], message[2])
                    self._latest_since = time.monotonic()
                elif kind == 'cancel':
                    self._cancelled = max(self._cancelled, message[1])
                else:                       # 'shutdown' or 'gone'
                    self._closed = True
                self._cond.notify_all()
            if kind == 'gone':
                timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(0,))
                timer.daemon = True
                timer.start()
            if kind in ('shutdown', 'gone'):
                return

    def next_request(self) -> Optional[tuple[int, RenderArgs]]:
        """Wait for a request newer than the last one taken (None: shut down). It may have been cancelled
        before it started (see was_cancelled): the GUI still waits for its answer."""
        with self._cond:
            while not self._closed and (self._latest is None or self._latest[0] <= self._taken):
                self._cond.wait()
            if self._closed:
                return None
            self._taken = self._latest[0]
            return self._latest

    def was_cancelled(self, request_id: int) -> bool:
        with self._cond:
            return self._cancelled >= request_id

    def is_needed(self, request_id: int, key: tuple, needed_keys: Callable[[RenderArgs], set]) -> bool:
        """Whether the request being rendered should go on with the stage `key`."""
        with self._cond:
            if self._closed or self._cancelled >= request_id:
                return False
            latest, since = self._latest, self._latest_since
        if latest is None or latest[0] <= request_id:
            return True
        if self._needed[0] != latest[0]:
            self._needed = (latest[0], needed_keys(latest[1]))
        return key in self._needed[1] or time.monotonic() - since < SUPERSEDE_AFTER_S


class _Outbox:
    """The worker's result pipe: results (images through shared memory), rate-limited progress, heartbeats."""

    def __init__(self, conn: Connection, prefix: str):
        self._conn, self._prefix = conn, prefix
        self._last_progress = 0.0
        self._lock = threading.Lock()   # The render loop and the heartbeat thread both send.

    def result(self, result: RenderResult) -> None:
        handle = _export_image(result, self._prefix)
        self._send(('result', result, handle))

    def progress(self, request_id: int, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL_S or progress.fraction == 1:
            self._last_progress = now
            self._send(('progress', request_id, progress))

    def started(self, request_id: int) -> None:
        self._send(('started', request_id))

    def alive(self) -> None:
        self._send(('alive',))

    def _send(self, message: tuple) -> None:
        try:
            with self._lock:
                self._conn.send(message)
        except OSError:     # The GUI process is gone: nothing left to render for.
            os._exit(0)


def _heartbeat(inbox: _Inbox, outbox: _Outbox, needed_keys: Callable[[], Optional[Callable]]) -> None:
    """Say 'alive' while starting, waiting, or working on a stage that the newest request still needs."""
    while not inbox.closed:
        running = inbox.running
        keys = needed_keys()
        if running is None or keys is None or inbox.is_needed(running[0], running[1].current_stage, keys):
            outbox.alive()
        time.sleep(HEARTBEAT_S)


def _worker_main(requests: Connection, results: Connection, prefix: str) -> None:
    """Worker loop: render the newest request, send its result (and progress on the way), repeat."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the GUI's to handle; it closes us.
    inbox = _Inbox(requests)
    outbox = _Outbox(results, prefix)
    renderer = None
    threading.Thread(target=_heartbeat, args=(inbox, outbox, lambda: renderer and renderer.needed_keys),
                     name='afv-heartbeat', daemon=True).start()
    from renderer.live.render import Renderer  # Heavy imports (torch) happen in the worker only.
    renderer = Renderer()
    while True:
        request = inbox.next_request()
        if request is None:
            break
        request_id, args = request
        if inbox.was_cancelled(request_id):    # Cancelled before it started: say so, render nothing.
            outbox.result(RenderResult(request_id=request_id, args=args, cancelled=True))
            continue
        control = RenderControl(
            is_needed=lambda key, rid=request_id: inbox.is_needed(rid, key, renderer.needed_keys),
            on_progress=lambda progress, rid=request_id: outbox.progress(rid, progress),
            on_partial=lambda make: outbox.result(make()))
        outbox.started(request_id)
        inbox.running = (request_id, control)
        try:
            result = renderer.render(args, request_id, control)
        finally:
            inbox.running = None
        if result.cancelled and not inbox.was_cancelled(request_id):
            continue   # Superseded: the newer request's result answers.
        outbox.result(result)


# --------------------------------------------------------------------------------------------------------
# The GUI side.

class _WorkerLink:
    """One worker process with a sender thread (requests) and a receiver thread (results) on the GUI side."""

    def __init__(self, prefix: str, on_message: Callable[[], None], target: Callable = _worker_main):
        ctx = mp.get_context('spawn')
        request_read, request_write = ctx.Pipe(duplex=False)
        result_read, result_write = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=target, args=(request_read, result_write, prefix),
                                   name='afv-renderer', daemon=True)
        self.last_heard = time.monotonic()   # When the worker last sent anything (heartbeats included).
        self.process.start()
        request_read.close()    # Keep only our ends, so that each side sees EOF when the other dies.
        result_write.close()
        self._requests, self._results = request_write, result_read
        self._outgoing: Any = collections.deque()
        self._wake = threading.Event()
        self.messages: collections.deque = collections.deque()
        self.gone = threading.Event()
        self._on_message = on_message
        threading.Thread(target=self._send_loop, name='afv-send', daemon=True).start()
        threading.Thread(target=self._receive_loop, name='afv-receive', daemon=True).start()

    def send(self, message: tuple) -> None:
        self._outgoing.append(message)
        self._wake.set()

    def _send_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                message = self._outgoing.popleft()
                try:
                    self._requests.send(message)
                except (OSError, TypeError, ValueError):   # The worker died, or we closed the pipe meanwhile.
                    return
                if message[0] == 'shutdown':
                    return

    def _receive_loop(self) -> None:
        while True:
            try:
                message = self._results.recv()
            except (EOFError, OSError, TypeError, ValueError):   # The worker is gone, or we closed the pipe.
                self.gone.set()
                self._notify()
                return
            self.last_heard = time.monotonic()
            if message[0] != 'alive':
                self.messages.append(message)
                self._notify()

    def _notify(self) -> None:
        try:
            self._on_message()
        except Exception:  # noqa: BLE001 - a failing wake-up callback must not stop the receiver
            pass

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Ask the worker to stop, kill it if it does not within `timeout`; bounded whatever its state."""
        self.send(('shutdown',))
        self.process.join(timeout)
        self.abandon()
        self.process.join(timeout)

    def abandon(self) -> None:
        """Kill the worker without waiting for it (a dead or unresponsive one) and close our pipe ends."""
        if self.process.is_alive():
            self.process.kill()
        for conn in (self._requests, self._results):
            with contextlib.suppress(OSError):
                conn.close()


class AsyncRenderer:
    """Drives a `Renderer` in a worker process (or in-process with sync=True).

    on_message: called from a background thread whenever a message from the worker arrives (the
    visualizer wakes its event loop with it); set it at construction or later as an attribute.
    stop_deadline_s: the watchdog's patience (see the module docstring).
    worker_main: the worker's main function (tests put a faulty one in its place).
    """

    def __init__(self, sync: bool = False, on_message: Optional[Callable[[], None]] = None,
                 stop_deadline_s: float = STOP_DEADLINE_S, worker_main: Callable = _worker_main):
        self.sync = sync
        self.on_message = on_message
        self.stop_deadline_s = stop_deadline_s
        self._worker_main = worker_main
        self._running_id = 0                          # Newest request the worker said it started.
        self._cancel_id = 0                           # Newest request the user cancelled.
        self._old_links: list[_WorkerLink] = []       # Abandoned workers, reaped without waiting.
        self._args: Optional[RenderArgs] = None      # Latest arguments set by the GUI.
        self._sent_id = 0                             # Id of the latest request sent.
        self._done_id = 0                             # Newest request whose final result was delivered.
        self._shown_id = 0                            # Newest request of any result delivered.
        self._pending: Optional[RenderResult] = None  # Sync mode: result waiting for get_result.
        self._progress: Optional[tuple[int, Progress]] = None
        self._closed = False
        self.restarts = 0
        self._crashes = 0                             # Worker deaths since the last result.
        self._prefix = shm_prefix(os.getpid())
        self._link: Optional[_WorkerLink] = None
        if sync:
            from renderer.live.render import Renderer
            self._renderer = Renderer()
        else:
            self._link = self._new_link()

    # -- public API --------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """True while the latest request has been sent and its final result not yet delivered."""
        return self._done_id < self._sent_id

    @property
    def progress(self) -> Optional[Progress]:
        """What the running request is doing, or None when idle (or nothing was reported yet)."""
        if not self.is_busy or self._progress is None:
            return None
        return self._progress[1]

    @property
    def pid(self) -> Optional[int]:
        return None if self._link is None else self._link.process.pid

    def set_args(self, args: RenderArgs, force: bool = False) -> None:
        """Request a render of `args` unless they equal the latest request (never blocks).

        force=True renders them again anyway, e.g. to retry a network that failed to load.
        """
        if self._closed:
            raise RuntimeError('AsyncRenderer is closed')
        if args == self._args and not force:
            return
        self._args = args
        self._sent_id += 1
        if self.sync:
            self._pending = self._renderer.render(args, self._sent_id)
            return
        self._link.send(('request', self._sent_id, args))

    def cancel(self) -> None:
        """Stop the running request at its next safe point; a result with `cancelled=True` answers it."""
        if self.is_busy and not self.sync and not self._closed:
            self._cancel_id = self._sent_id
            self._link.send(('cancel', self._sent_id))

    def get_result(self) -> Optional[RenderResult]:
        """The newest result not yet returned (partial or final), or None; never blocks.

        Results of requests older than one already delivered are dropped."""
        if self.sync:
            result, self._pending = self._pending, None
            if result is not None:
                self._done_id = self._shown_id = result.request_id
            return result
        if self._link is None:
            return None
        newest = None
        while self._link.messages:
            message = self._link.messages.popleft()
            if message[0] == 'progress':
                self._progress = (message[1], message[2])
                continue
            if message[0] == 'started':
                self._running_id = max(self._running_id, message[1])
                continue
            _, result, handle = message
            image = _import_image(handle) if handle is not None else None  # Always free the block.
            self._crashes = 0
            if result.request_id < self._shown_id:
                continue
            result.image = image
            newest = result
            self._shown_id = result.request_id
            if not result.partial:
                self._done_id = max(self._done_id, result.request_id)
        if newest is None and self._link.gone.is_set() and not self._link.messages:
            return self._restart_after_crash()
        if newest is None and self._unresponsive():
            return self._replace_unresponsive()
        return newest

    def wait_until_idle(self, timeout: float = 60.0) -> Optional[RenderResult]:
        """Block until the latest request's result arrives (tests); returns it (or None on timeout).

        It consumes results like get_result: the caller gets them, a later get_result does not.
        """
        deadline = time.monotonic() + timeout
        last = None
        while True:
            result = self.get_result()
            if result is not None:
                last = result
            if not self.is_busy or time.monotonic() > deadline:
                return last
            time.sleep(0.005)

    def close(self) -> None:
        """Stop the worker and free its resources; safe to call more than once, returns in bounded time."""
        if self._closed:
            return
        self._closed = True
        if self._link is not None:
            self._link.close()
            for link in self._old_links:
                link.process.join(0.1)
            while self._link.messages:   # Free the images nobody will look at.
                message = self._link.messages.popleft()
                if message[0] == 'result' and message[2] is not None:
                    _import_image(message[2])
            remove_leftover_images(self._prefix)

    def __enter__(self) -> 'AsyncRenderer':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------
    def _notify(self) -> None:
        if self.on_message is not None:
            self.on_message()

    def _new_link(self) -> _WorkerLink:
        self._running_id = self._cancel_id = 0
        self._old_links = [link for link in self._old_links if link.process.is_alive()]
        return _WorkerLink(self._prefix, self._notify, self._worker_main)

    def _unresponsive(self) -> bool:
        """The worker should have stopped (cancel, or a newer request waits) but has been silent too long."""
        waiting = self._cancel_id > 0 and self.is_busy or self._running_id < self._sent_id
        return self.is_busy and waiting and time.monotonic() - self._link.last_heard > self.stop_deadline_s

    def _replace(self) -> None:
        """Abandon the current worker (killed, not waited for) and start a new one."""
        self._link.abandon()
        self._old_links.append(self._link)
        remove_leftover_images(self._prefix)
        self.restarts += 1
        self._link = self._new_link()

    def _resend(self) -> None:
        self._sent_id += 1
        self._link.send(('request', self._sent_id, self._args))

    def _replace_unresponsive(self) -> RenderResult:
        cancelled = self._cancel_id == self._sent_id
        self._replace()
        result = RenderResult(request_id=self._sent_id, args=self._args, error_kind=ERROR_CRASH,
                              error=f'The renderer did not respond for {self.stop_deadline_s:g} s (a file or download '
                                    f'that hangs?); a new renderer was started.')
        self._done_id = self._shown_id = self._sent_id
        if cancelled:
            result.error, result.error_kind, result.cancelled = None, None, True
        else:
            self._resend()
        return result

    def _restart_after_crash(self) -> RenderResult:
        self._link.process.join(0.5)   # Its pipe ended, so it is exiting: reap it to read its exit status.
        code = self._link.process.exitcode
        how = f'was killed by signal {-code}' if code is not None and code < 0 else \
            f'exited with code {code}' if code is not None else 'stopped answering'
        self._replace()
        self._crashes += 1
        error = RenderResult(request_id=self._sent_id, args=self._args, error_kind=ERROR_CRASH)
        self._done_id = self._shown_id = self._sent_id
        if self._crashes >= MAX_RESENDS or self._args is None:
            error.error = (f'The renderer process {how}, {self._crashes} times in a row; a new renderer was '
                           f'started and will render when the arguments change (or on Retry).')
            return error
        error.error = (f'The renderer process {how} (a crash in a kernel, out of memory, or killed). '
                       f'A new renderer was started.')
        self._resend()
        return error
