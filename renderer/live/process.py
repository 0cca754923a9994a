"""Rendering in a separate process, latest request wins; images return through shared memory.

    renderer = AsyncRenderer()          # or AsyncRenderer(sync=True) for tests and debugging
    renderer.set_args(args)             # cheap; call every frame, only changes are sent
    result = renderer.get_result()      # newest finished result or None; never blocks
    renderer.close()                    # idempotent

The worker process (started with 'spawn', so CUDA is safe) drains its request
queue and renders only the newest request; older pending ones are dropped. A
result's image is written into a fresh shared-memory block whose name travels
with the (small) result record; the GUI side copies it out and unlinks it. If
the worker dies (a crash in a kernel, out of memory, killed), the next
`get_result` reports it as an error result and a new worker is started with the
latest arguments, so the GUI never blocks and never has to restart.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from multiprocessing import resource_tracker, shared_memory
from typing import Any, Optional

import numpy as np

from renderer.live.render_args import ERROR_CRASH, RenderArgs, RenderResult

MAX_FAILURES = 3  # Consecutive worker deaths before restarting waits for new arguments.


def _export_image(result: RenderResult) -> Optional[tuple[str, tuple[int, ...], str]]:
    """Move result.image into a new shared-memory block owned by the receiver; returns its handle."""
    image = result.image
    result.image = None
    if image is None:
        return None
    shm = shared_memory.SharedMemory(create=True, size=max(image.nbytes, 1))
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


def _worker_main(requests: Any, results: Any) -> None:
    """Worker loop: render the newest pending request, send the result, repeat until None arrives."""
    from renderer.live.render import Renderer  # Heavy imports (torch) happen in the worker only.
    renderer = Renderer()
    while True:
        item = requests.get()
        try:
            while True:
                item = requests.get_nowait()  # Latest wins: skip everything older.
        except queue.Empty:
            pass
        if item is None:
            break
        request_id, args = item
        result = renderer.render(args, request_id)
        handle = _export_image(result)
        results.put(('result', result, handle))


class AsyncRenderer:
    """Drives a `Renderer` in a worker process (or in-process with sync=True)."""

    def __init__(self, sync: bool = False):
        self.sync = sync
        self._args: Optional[RenderArgs] = None      # Latest arguments set by the GUI.
        self._sent_id = 0                             # Id of the latest request sent.
        self._done_id = 0                             # Id of the newest result delivered.
        self._pending: Optional[RenderResult] = None  # Sync mode: result waiting for get_result.
        self._closed = False
        self.restarts = 0
        self._failures = 0                            # Worker deaths since the last delivered result.
        self._process = None
        self._requests = self._results = None
        if sync:
            from renderer.live.render import Renderer
            self._renderer = Renderer()
        else:
            self._start_worker()

    # -- public API --------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """True while a request has been sent and its result not yet delivered."""
        return self._done_id < self._sent_id

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
        if not self._process.is_alive() and self._failures >= MAX_FAILURES:
            self._failures = 0  # New arguments: give the renderer another chance.
            self._start_worker()
        self._requests.put((self._sent_id, args))

    def get_result(self) -> Optional[RenderResult]:
        """The newest result not yet returned, or None. Stale results are dropped; never blocks."""
        if self.sync:
            result, self._pending = self._pending, None
            if result is not None:
                self._done_id = result.request_id
            return result
        newest = None
        while True:
            try:
                kind, result, handle = self._results.get_nowait()
            except queue.Empty:
                break
            if kind != 'result':
                continue
            image = _import_image(handle) if handle is not None else None  # Always free the block.
            self._failures = 0
            if result.request_id >= self._done_id:
                result.image = image
                newest = result
                self._done_id = result.request_id
        if newest is None and self._failures < MAX_FAILURES and not self._process.is_alive():
            return self._restart_after_crash()
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

    @property
    def pid(self) -> Optional[int]:
        return None if self._process is None else self._process.pid

    def close(self) -> None:
        """Stop the worker and free its resources; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self.sync:
            return
        try:
            self._requests.put(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._drain_and_free()
        for q in (self._requests, self._results):
            q.close()
            q.join_thread()

    def __enter__(self) -> 'AsyncRenderer':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------
    def _start_worker(self) -> None:
        ctx = mp.get_context('spawn')
        self._requests = ctx.Queue()
        self._results = ctx.Queue()
        self._process = ctx.Process(target=_worker_main, args=(self._requests, self._results),
                                    name='afv-renderer', daemon=True)
        self._process.start()

    def _drain_and_free(self) -> None:
        while True:
            try:
                _, _, handle = self._results.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if handle is not None:
                _import_image(handle)

    def _restart_after_crash(self) -> RenderResult:
        code = self._process.exitcode
        how = f'was killed by signal {-code}' if code is not None and code < 0 else f'exited with code {code}'
        self._drain_and_free()
        for q in (self._requests, self._results):
            q.close()
        self._failures += 1
        self._done_id = self._sent_id
        if self._failures >= MAX_FAILURES:
            return RenderResult(request_id=self._sent_id, args=self._args, error_kind=ERROR_CRASH,
                                error=f'The renderer process {how}, {self._failures} times in a row without '
                                      f'finishing a render; it will be started again when the arguments change.')
        self.restarts += 1
        self._start_worker()
        error = RenderResult(request_id=self._sent_id, args=self._args, error_kind=ERROR_CRASH,
                             error=f'The renderer process {how} (a crash in a kernel, out of memory, or killed). '
                                   f'A new renderer was started.')
        if self._args is not None:  # Re-send the latest arguments to the new worker.
            self._sent_id += 1
            self._requests.put((self._sent_id, self._args))
        return error

