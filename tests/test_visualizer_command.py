"""`python visualizer.py` refuses bad options before it opens a window (no display needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def visualizer(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'DISPLAY'}   # a window must not be needed
    return subprocess.run([sys.executable, 'visualizer.py', *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize('frames', ['-1', '0', 'many'])
def test_frames_must_be_positive(frames):
    result = visualizer('--frames', frames)
    assert result.returncode == 2 and '--frames' in result.stderr and repr(frames) in result.stderr
    assert 'Traceback' not in result.stderr


def test_unwritable_screenshot_is_refused_at_once(tmp_path):
    (tmp_path / 'a-file').write_bytes(b'x')
    target = tmp_path / 'a-file' / 'window.png'
    result = visualizer('--frames', '1', '--screenshot', str(target))
    assert result.returncode == 2 and str(target) in result.stderr and 'Traceback' not in result.stderr
    assert '.partial' not in result.stderr and os.listdir(tmp_path) == ['a-file']


def test_screenshot_must_be_a_png(tmp_path):
    result = visualizer('--screenshot', str(tmp_path / 'window.jpg'))
    assert result.returncode == 2 and 'window.jpg' in result.stderr and '.png' in result.stderr
    assert os.listdir(tmp_path) == []
