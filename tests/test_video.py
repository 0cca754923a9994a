"""The video command (renderer.commands.video, renderer.media.videos): frame contents against directly
rendered references, frame counts / sizes / fps of the written MP4s, A | B layouts, bad input and Ctrl-C."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from net_helpers import one_intra_op_thread, psnr  # noqa: F401 (a fixture)
from pickle_fixtures import small_generator, write_published

from renderer.commands import video as video_command
from renderer.commands.common import run_command
from renderer.generation import synthesize_images, ws_from_seeds
from renderer.media import video_frames
from renderer.media import videos as video
from renderer.motion import Motion
from renderer.networks.capture import capture_layers
from renderer.signal.transforms import image_transform

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def nets():
    """Small random generators: two StyleGAN3-T at 32 px, StyleGAN2 at 32 and 64 px."""
    return {'t': small_generator('stylegan3-t', seed=1, res=32), 't2': small_generator('stylegan3-t', seed=2, res=32),
            'sg2': small_generator('stylegan2', seed=3, res=32), 'sg2_64': small_generator('stylegan2', seed=4, res=64)}


@pytest.fixture(scope='module')
def pickles(nets, tmp_path_factory):
    root = tmp_path_factory.mktemp('nets')
    return {name: str(write_published(root / f'{name}.pkl', G)) for name, G in nets.items()}


def image_u8(G, ws, matrix=None) -> np.ndarray:
    """Reference frames uint8 [N, H, W, 3] rendered directly, no video code involved."""
    img = synthesize_images(G, ws, matrix).double()
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def assert_close_u8(a: np.ndarray, b: np.ndarray, tol: int = 1) -> None:
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= tol


def read_video(path) -> tuple[np.ndarray, float]:
    return iio.imread(path, index=None), iio.immeta(path)['fps']


def run(argv, capsys) -> tuple[int, str, str]:
    code = run_command(video_command.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------
# Frame contents (library functions, before encoding).

@pytest.mark.parametrize('loop', [True, False])
def test_interp_frames_pass_through_the_seeds(nets, loop):
    G = nets['sg2']
    clip = video.interp_video([G], [5, 6, 7], frames_per_transition=4, kind='linear', loop=loop)
    frames = np.stack(list(clip))
    assert len(clip) == len(frames) == (12 if loop else 9)
    keys = ws_from_seeds(G, [5, 6, 7])
    assert_close_u8(frames[[0, 4, 8]], image_u8(G, keys))
    if loop:   # The last frame is 3/4 of the way from the last seed back to the first.
        assert_close_u8(frames[11], image_u8(G, keys[2:] + 0.75 * (keys[:1] - keys[2:]))[0])


def test_interp_grid_cells_walk_their_own_seeds(nets):
    G = nets['sg2']
    clip = video.interp_video([G], list(range(6)), grid=(3, 1), frames_per_transition=2, kind='linear', loop=False)
    frames = list(clip)
    assert len(frames) == 3 and frames[0].shape == (32, 96, 3)
    first, last = image_u8(G, ws_from_seeds(G, [0, 2, 4])), image_u8(G, ws_from_seeds(G, [1, 3, 5]))
    assert_close_u8(frames[0], np.concatenate(list(first), axis=1))
    assert_close_u8(frames[-1], np.concatenate(list(last), axis=1))


def test_grid_seeds_layout_and_errors():
    assert video.grid_seeds(list(range(8)), (2, 2)) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    with pytest.raises(ValueError, match='2x2 has 4 cells.*6 seeds'):
        video.grid_seeds(list(range(6)), (2, 2))


def test_translate_frames_follow_the_input_transform(nets):
    G = nets['t']
    frames = list(video.translate_video([G], seed=3, num_frames=3, step_px=(2.0, -1.0), start_px=(1.0, 0.0)))
    ws = ws_from_seeds(G, [3])
    for k, frame in enumerate(frames):
        assert_close_u8(frame, image_u8(G, ws, image_transform(translate=((1 + 2 * k) / 32, -k / 32)))[0])


def test_slice_frames_grow_from_the_rendered_rows(nets):
    G = nets['t']
    index, num_frames = 10, 5
    frames = list(video.slice_video([G], Motion('translate', (0,), num_frames=num_frames), 'row', index))
    ws = ws_from_seeds(G, [0])
    reference = np.concatenate([image_u8(G, ws, image_transform(translate=(k / 32, 0))) for k in range(num_frames)])
    for k, frame in enumerate(frames):   # frame above, 4 px gap, then the slice: time runs down.
        assert frame.shape == (32 + 4 + num_frames, 32, 3)
        assert_close_u8(frame[:32], reference[k])
        assert (frame[32:36] == 128).all()    # mid-grey gap
        assert_close_u8(frame[36:37 + k], reference[:k + 1, index])
        assert (frame[37 + k:] == 0).all()    # rows not rendered yet are black


def test_b_is_scaled_to_a_height_with_antialiased_bilinear(nets):
    A, B = nets['sg2'], nets['sg2_64']
    frames = list(video.motion_video([A, B], Motion('latent', (0, 1), 1, 'linear', loop=False)))
    assert len(frames) == 2 and frames[0].shape == (32, 32 + 4 + 32, 3)
    assert (frames[0][:, 32:36] == 128).all()
    assert_close_u8(frames[0][:, :32], image_u8(A, ws_from_seeds(A, [0]))[0])
    # Halving with an antialiased bilinear (triangle) kernel: taps [1, 3, 3, 1] / 8 around pixels 2i, 2i+1.
    b = synthesize_images(B, ws_from_seeds(B, [0]))[0].double().numpy()
    taps = np.array([1, 3, 3, 1]) / 8
    rows = np.stack([np.tensordot(b[:, 2 * i - 1:2 * i + 3], taps, axes=([1], [0])) for i in range(1, 31)], axis=1)
    half = np.stack([np.tensordot(rows[:, :, 2 * j - 1:2 * j + 3], taps, axes=([2], [0])) for j in range(1, 31)],
                    axis=2)
    expected = np.clip(half * 127.5 + 128, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    assert_close_u8(frames[0][1:31, 37:67], expected)


def test_layer_view_is_the_captured_layer_normalised_per_channel(nets):
    G = nets['sg2']
    motion = Motion('latent', (0, 1), 2, 'linear', loop=False)
    frames = list(video.layer_video([G], motion, 'b16.conv0', channels=[0, 2, 1]))
    with capture_layers(G, ['b16.conv0']) as records:
        synthesize_images(G, ws_from_seeds(G, [0]))
    features = records[0].tensor[0, [0, 2, 1]].double().numpy()
    view = features / np.abs(features).max(axis=(1, 2), keepdims=True)
    assert len(frames) == 3
    assert_close_u8(frames[0], np.clip(view * 127.5 + 128, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    grid = next(iter(video.layer_video([G], motion, 'b16.conv0', channel_grid=5)))
    assert grid.shape == (2 * 16 + 1, 3 * 16 + 2, 3)    # 3 columns x 2 rows of 16 px tiles, 1 px gaps
    assert (grid[17:, 34:] == 0).all()                  # the sixth tile is empty (black)


# ----------------------------------------------------------------------------
# Written videos.

KIND_CASES = {   # argv, network, expected (frames, width, height)
    'interp grid': (['interp', '--seeds', '0-3', '--grid', '2x1', '--w-frames', '3', '--no-loop'], 'sg2', (4, 64, 32)),
    'interp loop': (['interp', '--seeds', '0-5', '--grid', '1x2', '--w-frames', '2', '--kind', 'slerp'], 'sg2',
                    (6, 32, 64)),
    'truncation': (['truncation', '--frames', '5', '--size', '33x21'], 'sg2', (5, 34, 22)),
    'translate': (['translate', '--frames', '3', '--step', '0.5', '--scale', '1.5'], 't', (3, 48, 48)),
    'rotate': (['rotate', '--frames', '3', '--total-deg', '90'], 't', (3, 32, 32)),
    'layer grid': (['layer', '--layer', 'b16.conv0', '--channel-grid', '5', '--seeds', '0-1', '--w-frames', '3'],
                   'sg2', (6, 50, 34)),
    'layer translate': (['layer', '--layer', 'L2_36_32', '--channels', '0,1,2', '--motion', 'translate',
                         '--frames', '3'], 't', (3, 36, 36)),
    'slice': (['slice', '--seeds', '0-1', '--w-frames', '4', '--no-loop'], 'sg2', (5, 32, 42)),
}


@pytest.mark.parametrize('case', list(KIND_CASES))
def test_every_kind_writes_a_readable_mp4(case, pickles, tmp_path, capsys):
    argv, net, (num_frames, width, height) = KIND_CASES[case]
    path = tmp_path / 'out.mp4'
    code, out, err = run([*argv, '--network', pickles[net], '--out', path, '--fps', '12'], capsys)
    assert code == 0, err
    frames, fps = read_video(path)
    assert frames.shape == (num_frames, height, width, 3)
    assert fps == 12
    assert out.strip() == f'{path}: {num_frames} frames, {width}x{height}, 12 fps'
    assert os.listdir(tmp_path) == ['out.mp4']


def test_side_by_side_slice_video_from_the_command(nets, pickles, tmp_path, capsys):
    path, num_frames = tmp_path / 'ab.mp4', 12
    code, _, err = run(['slice', '--network', pickles['t'], '--network-b', pickles['t2'], '--motion', 'translate',
                        '--frames', num_frames, '--axis', 'column', '--out', path], capsys)
    assert code == 0, err
    frames, _ = read_video(path)
    panel = 32 + 4 + num_frames     # frame | slice (time runs right)
    assert frames.shape == (num_frames, 32, panel + 4 + panel, 3)
    for x0, G in [(0, nets['t']), (panel + 4, nets['t2'])]:
        slice_a = frames[:, :, x0 + 36:x0 + panel].astype(np.float64)
        assert slice_a[2, :, 5:].max() < 24        # early frame: the columns after frame 2 are still black
        ws = ws_from_seeds(G, [0])
        reference = np.stack([image_u8(G, ws, image_transform(translate=(0, k / 32)))[0][:, 16]
                              for k in range(num_frames)], axis=1)
        assert psnr(torch.from_numpy(slice_a[-1] / 127.5), torch.from_numpy(reference / 127.5)) > 25


def test_bitrate_option(pickles, tmp_path, capsys):
    path = tmp_path / 'b.mp4'
    code, _, err = run(['interp', '--network', pickles['sg2'], '--seeds', '0-1', '--w-frames', '2',
                        '--bitrate', '200k', '--out', path], capsys)
    assert code == 0, err
    assert read_video(path)[0].shape == (4, 32, 32, 3)


# ----------------------------------------------------------------------------
# Bad input and interruption.

BAD_CASES = {   # argv (network name substituted), text the message must contain
    'unknown layer': (['layer', '--layer', 'b9.conv7'], ["'b9.conv7'", 'b16.conv0']),
    'bad grid': (['interp', '--grid', '2x'], ["'2x'", '--grid']),
    'grid/seeds': (['interp', '--grid', '2x2', '--seeds', '0-4'], ['2x2', '5 seeds']),
    'translate sg2': (['translate'], ['{sg2}', 'input transform']),
    'slice translate sg2': (['slice', '--motion', 'translate'], ['{sg2}', 'input transform']),
    'missing file': (['interp', '--network', '{missing}'], ['{missing}']),
    'negative fps': (['interp', '--fps', '-5'], ['--fps', '-5']),
    'bad size': (['interp', '--size', '0x4'], ["'0x4'"]),
    'bad bitrate': (['interp', '--bitrate', 'fast'], ["'fast'"]),
    'not mp4': (['interp', '--out', '{dir}/a.avi'], ['a.avi']),
    'channel range': (['layer', '--layer', 'b4.conv1', '--channels', '40'], ['[40]', '32 channels']),
    'slice index': (['slice', '--index', '32'], ['32', 'row']),
}


@pytest.mark.parametrize('case', list(BAD_CASES))
def test_bad_input_exits_2_naming_the_value(case, pickles, tmp_path, capsys):
    argv, needles = BAD_CASES[case]
    names = dict(sg2=pickles['sg2'], missing=str(tmp_path / 'nope.pkl'), dir=str(tmp_path / 'out'))
    argv = [a.format(**names) for a in argv]
    if '--network' not in argv:
        argv += ['--network', pickles['sg2']]
    if '--out' not in argv:
        argv += ['--out', str(tmp_path / 'out' / 'v.mp4')]
    code, out, err = run(argv, capsys)
    assert code == 2
    # A progress bar may have been drawn before a per-frame check failed; the error is its own last line.
    assert err.strip().splitlines()[-1].startswith('error: ') and 'Traceback' not in err
    for needle in needles:
        assert needle.format(**names) in err
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []


def test_interrupted_write_leaves_no_file(tmp_path):
    def frames():
        for k in range(10):
            if k == 3:
                raise KeyboardInterrupt
            yield np.full((16, 16, 3), 20 * k, np.uint8)
    with pytest.raises(KeyboardInterrupt):
        video.write_video(frames(), str(tmp_path / 'v.mp4'), progress=False)
    assert os.listdir(tmp_path) == []


def test_interrupted_command_exits_130_and_leaves_no_file(pickles, tmp_path, capsys, monkeypatch):
    real = video_frames.render_frames

    def interrupted(*args, **kwargs):   # Ctrl-C after two batches have been encoded.
        for done, batch in enumerate(real(*args, **kwargs)):
            if done == 2:
                raise KeyboardInterrupt
            yield batch
    monkeypatch.setattr(video_frames, 'render_frames', interrupted)
    code, _, err = run(['interp', '--network', pickles['sg2'], '--seeds', '0-3', '--w-frames', '8', '--batch', '2',
                        '--out', tmp_path / 'v.mp4'], capsys)
    assert code == 130 and 'interrupted' in err
    assert os.listdir(tmp_path) == []


def _ffmpeg_child(pid: int) -> int | None:
    try:
        children = pathlib.Path(f'/proc/{pid}/task/{pid}/children').read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            if pathlib.Path(f'/proc/{child}/comm').read_text().startswith('ffmpeg'):
                return int(child)
        except OSError:
            pass
    return None


SIGNALS = {   # signal: (exit status, whom it is sent to, what the command says)
    'SIGINT': (130, 'group', b'interrupted'),       # Ctrl-C in a terminal reaches the whole group.
    'SIGTERM': (143, 'process', b'stopped by signal'),   # kill PID
    'SIGHUP': (129, 'process', b'stopped by signal'),    # the terminal closed
}


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='finds the ffmpeg child through /proc')
@pytest.mark.parametrize('name', list(SIGNALS))
def test_a_signal_to_the_command_leaves_no_file(pickles, tmp_path, name):
    status, whom, message = SIGNALS[name]
    out = tmp_path / 'v.mp4'
    argv = [sys.executable, '-m', 'renderer.commands.video', 'interp', '--network', pickles['sg2'], '--seeds', '0-1',
            '--w-frames', '20000', '--batch', '1', '--out', str(out)]
    # A session of its own, so that a signal to the group reaches the command and its ffmpeg only.
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        ffmpeg = None
        while ffmpeg is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            ffmpeg = _ffmpeg_child(proc.pid)
        assert ffmpeg is not None, 'ffmpeg never started'
        time.sleep(0.3)   # Let some frames through.
        if whom == 'group':
            os.killpg(proc.pid, getattr(signal, name))
        else:
            os.kill(proc.pid, getattr(signal, name))
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err.decode()
    assert message in err and b'Traceback' not in err
    assert os.listdir(tmp_path) == []
    assert not _running(ffmpeg)


def _running(pid: int) -> bool:
    """Whether process pid exists and is not a zombie (a killed child that nobody reaped yet is dead)."""
    try:
        state = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state not in ('Z', 'X')
