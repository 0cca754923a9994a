"""The visualizer's settings file (viz/settings.py): round trip, atomic writes, bad files ignored with a notice."""

from __future__ import annotations

import json
import os

import pytest

from viz import settings
from viz.settings import Settings


def test_round_trip(tmp_path):
    path = str(tmp_path / 'deeper' / 'settings.json')
    kept = Settings(recent=['a.pkl', 'https://x/b.pkl'], network='a.pkl', seed=4294967295.0, seed_y=2.5,
                    class_idx=3, open_panels={'Spectrum': True, 'Network': False})
    settings.save(path, kept)
    assert os.listdir(tmp_path / 'deeper') == ['settings.json']       # no temporary file left
    assert settings.load(path) == (kept, '')


def test_a_missing_file_is_a_first_launch(tmp_path):
    assert settings.load(str(tmp_path / 'none.json')) == (Settings(), '')


@pytest.mark.parametrize('content, reason', [
    (b'{"version": 1, "recent": [', 'Expecting'),
    (b'\xff\xfe\x00garbage', 'codec'),
    (b'[1, 2, 3]', 'not a settings file'),
    (json.dumps(dict(version=99)).encode(), 'not a settings file'),
    (json.dumps(dict(version=1, recent='a.pkl')).encode(), '"recent"'),
    (json.dumps(dict(version=1, seed=-3)).encode(), 'seed -3'),
    (json.dumps(dict(version=1, seed_y=float('nan'))).encode(), 'seed nan'),
    (json.dumps(dict(version=1, class_idx=True)).encode(), 'class True'),
    (json.dumps(dict(version=1, open_panels={'Spectrum': 'yes'})).encode(), '"open_panels"'),
    (b'[' * 100000 + b']' * 100000, 'starting afresh'),
])
def test_a_bad_file_is_ignored_with_a_notice(tmp_path, content, reason):
    path = tmp_path / 'settings.json'
    path.write_bytes(content)
    loaded, notice = settings.load(str(path))
    assert loaded == Settings()
    assert notice.startswith(f'Ignored the settings in {path}') and reason in notice, notice


def test_an_oversized_file_is_not_read(tmp_path):
    path = tmp_path / 'settings.json'
    path.write_bytes(b' ' * (settings.MAX_FILE_BYTES + 1))
    loaded, notice = settings.load(str(path))
    assert loaded == Settings() and 'more than a settings file holds' in notice


def test_the_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('AFV_CONFIG_DIR', str(tmp_path / 'cfg'))
    assert settings.default_path() == str(tmp_path / 'cfg' / 'settings.json')
    monkeypatch.delenv('AFV_CONFIG_DIR')
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'xdg'))
    assert settings.default_path() == str(tmp_path / 'xdg' / 'alias-free-viz' / 'settings.json')
