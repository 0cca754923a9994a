"""Visualizer logic without a window: state -> RenderArgs, capture naming, browsing, no torch in the GUI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from renderer.live.render_args import RenderArgs
from viz.state import VizState, apply_render_args, render_args
from viz.widgets.capture import next_capture_path, save_capture
from viz.widgets.network import PUBLISHED_URLS, browse


def test_default_state_gives_default_args():
    assert render_args(VizState()) == RenderArgs()


def test_style_mix_range_becomes_layer_list_and_round_trips():
    state = VizState(mix_enabled=True, mix_seed=7, mix_range=(2, 4), seed=3.5, translate=(0.1, 0.0))
    args = render_args(state)
    assert args.mix_seed == 7 and args.mix_layers == (2, 3, 4) and args.seed == 3.5
    restored = VizState()
    apply_render_args(restored, RenderArgs.from_json(args.to_json()))
    assert render_args(restored) == args


def test_view_only_fields_do_not_reach_the_renderer():
    assert render_args(VizState(zoom=4.0, pan=(10, 3), drag_pans=True)) == RenderArgs()


def test_capture_names_never_overwrite(tmp_path):
    import numpy as np
    pixels = np.zeros((4, 6, 3), np.uint8)
    first = next_capture_path(str(tmp_path), 'image')
    save_capture(first, pixels, None)
    (tmp_path / 'image-00007.png').write_bytes(b'')
    assert os.path.basename(first) == 'image-00000.png'
    assert os.path.basename(next_capture_path(str(tmp_path), 'image')) == 'image-00008.png'
    assert os.path.basename(next_capture_path(str(tmp_path), 'window')) == 'window-00000.png'


def test_an_absurd_index_does_not_block_captures(tmp_path):
    (tmp_path / ('image-' + '9' * 240 + '.png')).write_bytes(b'')
    (tmp_path / 'image-00002.png').write_bytes(b'')
    assert os.path.basename(next_capture_path(str(tmp_path), 'image')) == 'image-00003.png'


def test_a_failed_capture_leaves_no_file(tmp_path, monkeypatch):
    import imageio.v3 as iio
    import numpy as np

    import viz.widgets.capture as capture

    def half_written(path, *args, **kwargs):
        open(path, 'wb').write(b'\x89PNG')
        raise OSError(28, 'No space left on device', path)
    monkeypatch.setattr(capture.iio, 'imwrite', half_written)
    target = str(tmp_path / 'image-00000.png')
    with pytest.raises(OSError, match='No space') as info:
        save_capture(target, np.zeros((4, 6, 3), np.uint8), None)
    assert info.value.filename == target and os.listdir(tmp_path) == []
    monkeypatch.undo()
    save_capture(target, np.full((4, 6, 3), 7, np.uint8), None)
    assert os.listdir(tmp_path) == ['image-00000.png'] and (iio.imread(target) == 7).all()


def test_browse_lists_network_files_only(tmp_path):
    for name in ('b.pkl', 'a.pt', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert [os.path.basename(p) for p in browse(str(tmp_path))] == ['a.pt', 'b.pkl']
    assert browse(str(tmp_path / 'missing')) == [] and browse('') == []


def test_published_list_is_names_only():
    assert len(PUBLISHED_URLS) == len(set(PUBLISHED_URLS)) > 20
    assert all(u.startswith('https://') and u.endswith('.pkl') for u in PUBLISHED_URLS)


def test_gui_modules_do_not_import_torch():
    code = 'import sys, viz.app, visualizer; assert "torch" not in sys.modules, "torch imported"'
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, '-c', code], check=True, cwd=root)
