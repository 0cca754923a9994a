"""Atomic output files, the MP4 writer and the text progress bar."""

from __future__ import annotations

import io
import os

import imageio.v3 as iio
import numpy as np
import pytest

from renderer.media.atomic import PendingFile, atomic_path
from renderer.media.progress import ProgressBar
from renderer.media.video_writer import VideoWriter, even_rgb


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / 'sub' / 'a.txt'
    with atomic_path(target) as tmp:
        assert tmp.endswith('.partial.txt') and os.path.dirname(tmp) == str(target.parent)
        open(tmp, 'w').write('done')
        assert not target.exists()
    assert target.read_text() == 'done' and os.listdir(target.parent) == ['a.txt']
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask   # not mkstemp's 0600


@pytest.mark.parametrize('error', [KeyboardInterrupt, RuntimeError])
def test_atomic_path_leaves_nothing_on_error(tmp_path, error):
    target = tmp_path / 'a.txt'
    target.write_text('old')
    with pytest.raises(error):
        with atomic_path(target) as tmp:
            open(tmp, 'w').write('half')
            raise error()
    assert target.read_text() == 'old' and os.listdir(tmp_path) == ['a.txt']


def test_pending_file_discard_after_commit_is_harmless(tmp_path):
    pending = PendingFile(tmp_path / 'b.bin')
    open(pending.tmp, 'wb').write(b'x')
    pending.commit()
    pending.discard()
    assert (tmp_path / 'b.bin').read_bytes() == b'x'


def test_video_writer_frames_size_fps_and_content(tmp_path):
    path = tmp_path / 'v.mp4'
    frames = [np.full((33, 47, 3), 40 + 20 * i, np.uint8) for i in range(10)]
    with VideoWriter(str(path), fps=24) as video:
        for frame in frames:
            video.append(frame)
    meta = iio.immeta(path)
    decoded = np.stack(list(iio.imiter(path)))
    assert meta['fps'] == 24 and meta['size'] == (48, 34)  # odd sizes padded to even
    assert decoded.shape == (10, 34, 48, 3)
    assert np.abs(decoded[:, :33, :47].astype(int) - np.stack(frames)).max() <= 3  # flat frames survive H.264


def test_video_writer_interrupted_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(str(tmp_path / 'v.mp4'), fps=10) as video:
            video.append(np.zeros((16, 16, 3), np.uint8))
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_video_writer_abort_and_errors(tmp_path):
    video = VideoWriter(str(tmp_path / 'v.mp4'), fps=10)
    video.append(np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match='frame 1 is 18x16'):
        video.append(np.zeros((16, 18, 3), np.uint8))
    video.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match='no frames'):
        VideoWriter(str(tmp_path / 'w.mp4')).finish()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match='fps'):
        VideoWriter(str(tmp_path / 'x.mp4'), fps=0)
    with pytest.raises(ValueError, match='uint8'):
        even_rgb(np.zeros((4, 4, 3), np.float32))


def test_even_rgb_pads_by_repeating_edges():
    frame = np.arange(3 * 5, dtype=np.uint8).reshape(3, 5, 1)
    out = even_rgb(frame)
    assert out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out[3, :5, 0], frame[2, :, 0])
    np.testing.assert_array_equal(out[:3, 5, 1], frame[:, 4, 0])


def test_progress_bar_draws_and_ends_line():
    stream = io.StringIO()
    with ProgressBar('work', 4, 'frames', stream=stream) as bar:
        for _ in range(4):
            bar.advance()
    text = stream.getvalue()
    assert 'work [' in text and '4/4 frames 100%' in text and text.endswith('\n')
    quiet = io.StringIO()
    with ProgressBar('work', 4, stream=quiet, enabled=False) as bar:
        bar.advance()
    assert quiet.getvalue() == ''
