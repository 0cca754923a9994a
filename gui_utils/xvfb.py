"""Start a private Xvfb X server (tests, benchmarks and headless smoke runs)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time

SCREEN = '1280x800x24'


def xvfb_available() -> bool:
    return shutil.which('Xvfb') is not None


def start_xvfb(screen: str = SCREEN, timeout_s: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a display number it picks itself (race-free, -displayfd); returns (process, ':N').

    Raises RuntimeError if it does not come up within timeout_s.
    """
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(['Xvfb', '-displayfd', str(write_fd), '-screen', '0', screen, '-nolisten', 'tcp'],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    try:
        number = _read_display_number(read_fd, process, timeout_s)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    finally:
        os.close(read_fd)
    return process, f':{number}'


def _read_display_number(fd: int, process: subprocess.Popen, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    text = b''
    while not text.endswith(b'\n'):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise RuntimeError('Xvfb did not start')
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            chunk = os.read(fd, 16)
            if not chunk:
                raise RuntimeError('Xvfb did not report its display number')
            text += chunk
    return int(text.strip())


def stop_xvfb(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
