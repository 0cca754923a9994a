"""How a running render learns that it should stop, and where it sends progress and partial pictures.

The renderer runs each stage (loading a network, mapping, synthesis, a diagnostic)
inside `RenderControl.stage(key, what)`. Library code reports progress at its safe
points (renderer.media.progress.report: between layers, samples, frames, download
chunks); inside a stage every report asks `is_needed(key)` and raises `Cancelled`
there when the answer is no: a newer request does not use this stage's result, or
the user pressed Cancel. Nothing is stored in a cache before its stage has finished,
so a cancelled stage leaves the caches as they were.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Optional

from renderer.media.progress import ProgressEvent, listening


class Cancelled(BaseException):
    """The running stage is not wanted any more. A BaseException, so `except Exception` blocks let it pass."""


@dataclass(frozen=True)
class Progress:
    """What a long render is doing: the stage (e.g. 'averaged image A') and how far it is."""
    stage: str
    fraction: Optional[float]     # 0..1 of the stage; None when unknown (a download without a size).
    text: str                     # e.g. 'averaged image A 5/16', 'downloading net.pkl 120.0/340.0 MB'.


_STEP_REPORTS = ('frames', 'layers', 'band-limited transform')   # Steps of the stage itself, not sub-tasks.


def _always(_key: Hashable) -> bool:
    return True


class RenderControl:
    """Cancellation and reporting for one render.

    is_needed(key): whether the stage with this key is still wanted (asked at every safe point).
    on_progress(Progress): progress of the running stage.
    on_partial(): called, at most every `partial_interval_s`, when a step of a long stage has a picture
    worth showing; the renderer passes a function that builds it, so nothing is built when no one listens.
    """

    def __init__(self, is_needed: Callable[[Hashable], bool] = _always,
                 on_progress: Optional[Callable[[Progress], None]] = None,
                 on_partial: Optional[Callable[[Callable[[], object]], None]] = None,
                 partial_interval_s: float = 0.25):
        self.is_needed = is_needed
        self.on_progress = on_progress
        self.on_partial = on_partial
        self.partial_interval_s = partial_interval_s
        self._last_partial = 0.0
        self._stages: list[Hashable] = []    # Keys of the running stages, innermost last.

    @property
    def current_stage(self) -> Optional[Hashable]:
        """Key of the innermost running stage (read by the worker's heartbeat thread), or None."""
        stages = self._stages
        return stages[-1] if stages else None

    def check(self, key: Hashable) -> None:
        """Raise Cancelled if the stage `key` is not needed any more."""
        if not self.is_needed(key):
            raise Cancelled(key)

    @contextlib.contextmanager
    def stage(self, key: Hashable, what: str) -> Iterator[None]:
        """Run a stage: progress reports inside it are checked against `key` and forwarded as `what`."""
        self.check(key)

        def on_event(event: ProgressEvent) -> None:
            self.check(key)
            if self.on_progress is not None:
                detail = event.text or (f'{event.done:g}/{event.total:g}' if event.total else '')
                label = what if event.what in _STEP_REPORTS else f'{what}: {event.what}'
                self.on_progress(Progress(what, event.fraction, f'{label} {detail}'.strip()))

        self._stages.append(key)
        try:
            with listening(on_event):
                yield
        finally:
            self._stages.pop()

    def step(self, key: Hashable, what: str, done: int, total: int, picture: Optional[Callable[[], object]] = None
             ) -> None:
        """A step of a long stage: check, report, and offer a partial picture (rate-limited)."""
        self.check(key)
        if self.on_progress is not None:
            self.on_progress(Progress(what, done / total if total else None, f'{what} {done}/{total}'))
        now = time.monotonic()
        if picture is not None and self.on_partial is not None and done < total and \
                now - self._last_partial >= self.partial_interval_s:
            self._last_partial = now
            self.on_partial(picture)


NO_CONTROL = RenderControl()   # Renders to the end and reports nothing (commands, tests, sync mode).
