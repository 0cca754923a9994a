"""Atomic output files, the MP4 writer and the text progress bar."""

from __future__ import annotations

import io
import os
import stat
import threading

import imageio.v3 as iio
import numpy as np
import pytest

from renderer.media.atomic import PendingFile, atomic_path, check_writable
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


def test_a_link_is_followed_and_kept(tmp_path):
    (tmp_path / 'real').mkdir()
    (tmp_path / 'real' / 'a.txt').write_text('old')
    (tmp_path / 'link.txt').symlink_to(tmp_path / 'real' / 'a.txt')
    with atomic_path(tmp_path / 'link.txt') as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / 'real')     # beside the file the link points to
        open(tmp, 'w').write('new')
    assert (tmp_path / 'link.txt').is_symlink() and (tmp_path / 'real' / 'a.txt').read_text() == 'new'
    assert sorted(os.listdir(tmp_path / 'real')) == ['a.txt']


def test_a_fifo_is_written_in_place_and_never_replaced(tmp_path):
    """Devices and FIFOs (/dev/null, /dev/stdout, a pipe) are written, not renamed over or removed."""
    fifo = tmp_path / 'pipe'
    os.mkfifo(fifo)
    (tmp_path / 'stdout').symlink_to(fifo)       # as /dev/stdout links to the stream
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, 'rb').read()), daemon=True)
    reader.start()
    with atomic_path(tmp_path / 'stdout') as tmp:
        assert tmp == str(tmp_path / 'stdout')      # written through the link, which stays
        with open(tmp, 'wb') as f:
            f.write(b'through the pipe')
    reader.join(timeout=30)
    assert received == [b'through the pipe'] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ['pipe', 'stdout']
    with pytest.raises(KeyboardInterrupt):       # an interrupted write to a device removes nothing either
        with atomic_path(fifo):
            raise KeyboardInterrupt
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_is_refused_by_name(tmp_path):
    with pytest.raises(IsADirectoryError, match='is a folder') as info:
        PendingFile(tmp_path)
    assert info.value.filename == str(tmp_path)


def test_check_writable_names_the_path_and_leaves_nothing(tmp_path):
    (tmp_path / 'a-file').write_bytes(b'x')
    bad = tmp_path / 'a-file' / 'out.png'
    with pytest.raises(OSError) as info:
        check_writable([tmp_path / 'fine.png', bad])
    assert info.value.filename == str(bad) and 'cannot write' in str(info.value) and '.partial' not in str(info.value)
    check_writable([tmp_path / 'new' / 'deeper' / 'out.png'])
    assert sorted(os.listdir(tmp_path)) == ['a-file']       # the folders made to try are gone again
    (tmp_path / 'kept').mkdir()
    check_writable([tmp_path / 'kept' / 'x.png'])
    assert sorted(os.listdir(tmp_path)) == ['a-file', 'kept'] and os.listdir(tmp_path / 'kept') == []


def test_progress_bar_shows_at_once():
    stream = io.StringIO()
    with ProgressBar('video', 240, 'frames', stream=stream):
        assert '0/240 frames' in stream.getvalue()       # before the first (possibly long) step
