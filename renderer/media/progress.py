"""A one-line text progress bar on stderr (no dependency), shared by downloads and commands."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO


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

    def update(self, done: float) -> None:
        """Set the absolute progress and redraw if due."""
        self.done = done
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
