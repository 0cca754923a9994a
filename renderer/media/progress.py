"""Progress: a one-line text bar on stderr for the commands, and reports that a live renderer listens to.

Long work calls `report(what, done, total)` at its safe points (between layers, samples,
frames, download chunks; `ProgressBar.update` does it too). Outside a `listening` block a
report costs a context-variable lookup and does nothing. Inside one, the listener gets a
`ProgressEvent`; the visualizer's renderer shows it and may raise from the listener to stop
the work there (a newer request does not need it), which is why reports are made only where
stopping leaves nothing half-done.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, TextIO


@dataclass(frozen=True)
class ProgressEvent:
    what: str                    # e.g. 'synthesis', 'downloading net.pkl', 'building CUDA kernels'
    done: float                  # Units done so far.
    total: Optional[float]       # Units in all; None when unknown.
    text: str = ''               # Human-readable amount, e.g. '120.0/340.0 MB'.

    @property
    def fraction(self) -> Optional[float]:
        return min(max(self.done / self.total, 0.0), 1.0) if self.total else None


_listener: contextvars.ContextVar[Optional[Callable[[ProgressEvent], None]]] = contextvars.ContextVar(
    'progress_listener', default=None)


def report(what: str, done: float, total: Optional[float] = None, text: str = '') -> None:
    """Tell the current listener (if any) that `done` of `total` units of `what` are done."""
    listener = _listener.get()
    if listener is not None:
        listener(ProgressEvent(what, done, total, text))


@contextlib.contextmanager
def listening(listener: Callable[[ProgressEvent], None]) -> Iterator[None]:
    """Send the reports made in this block (in this thread or task) to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _plain(n: float) -> str:
    return f'{n:g}'


class ProgressBar:
    """`label [#####.....] done/total unit pct%`, redrawn at most 10 times a second.

    total None shows a running count only. `describe` formats counts (e.g. bytes as MB).
    Use as a context manager, or call close(), to end the line.
    """

    def __init__(self, label: str, total: Optional[float], unit: str = '', width: int = 30,
                 describe: Callable[[float], str] = _plain, stream: Optional[TextIO] = None,
                 enabled: bool = True):
        self.label, self.total, self.unit, self.width = label, total, unit, width
        self.describe = describe
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0.0
        self._last_draw = 0.0
        self._drawn = False
        self._width_drawn = 0
        self._start = time.monotonic()
        if enabled:
            self.update(0)   # Show the bar at once, not after the first (possibly long) step.

    def update(self, done: float) -> None:
        """Set the absolute progress, report it (see `report`) and redraw if due."""
        self.done = done
        if _listener.get() is not None:
            amount = self.describe(done) + (f'/{self.describe(self.total)}' if self.total else '')
            report(self.label, done, self.total, f'{amount} {self.unit}'.strip())
        now = time.monotonic()
        if not self.enabled or (now - self._last_draw < 0.1 and done != self.total):
            return
        self._last_draw = now
        unit = f' {self.unit}' if self.unit else ''
        if self.total:
            frac = min(done / self.total, 1)
            filled = int(frac * self.width)
            line = (f'{self.label} [{"#" * filled}{"." * (self.width - filled)}] '
                    f'{self.describe(done)}/{self.describe(self.total)}{unit} {frac * 100:3.0f}%'
                    f' {now - self._start:.0f} s')
        else:
            line = f'{self.label}: {self.describe(done)}{unit}'
        self.stream.write('\r' + line.ljust(self._width_drawn))  # Cover a longer previous line.
        self._width_drawn = len(line)
        self.stream.flush()
        self._drawn = True

    def advance(self, step: float = 1) -> None:
        self.update(self.done + step)

    def close(self) -> None:
        if self._drawn:
            self.stream.write('\n')
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> 'ProgressBar':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
