"""The project layout: import rules (tests/layout_rules.py), the rule checker itself, and the README's commands."""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import runpy
import shutil
import subprocess
import sys

import pytest
from layout_rules import check_layout, imports_of

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_project_keeps_its_import_rules():
    assert check_layout(ROOT) == []


def write_tree(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SOUND = {
    'renderer/__init__.py': '',
    'renderer/maths.py': 'import numpy\n',
    'renderer/images.py': 'from renderer.maths import numpy\n',
    'renderer/commands/__init__.py': '',
    'renderer/commands/draw.py': 'from renderer import maths\n',
    'renderer/old_draw.py': 'if __name__ == "__main__":\n    from renderer.commands import draw\n',
    'tests/helpers.py': '',
}


def test_checker_accepts_a_sound_tree(tmp_path):
    assert check_layout(write_tree(tmp_path, SOUND)) == []


def test_checker_finds_a_library_module_importing_a_command(tmp_path):
    files = dict(SOUND, **{'renderer/images.py': 'def show():\n    from renderer.commands.draw import main\n'})
    problems = check_layout(write_tree(tmp_path, files))
    assert problems == ['renderer.images (library) imports the command module renderer.commands.draw']


def test_checker_finds_circles_hidden_in_functions(tmp_path):
    files = dict(SOUND, **{'renderer/maths.py': 'def f():\n    from . import images\n'})
    assert check_layout(write_tree(tmp_path, files)) == ['import circle: renderer.images -> renderer.maths']


def test_checker_finds_gui_and_test_imports(tmp_path):
    files = dict(SOUND, **{'renderer/maths.py': 'import OpenGL.GL\n', 'benchmarks/run.py': 'import helpers\n'})
    assert check_layout(write_tree(tmp_path, files)) == [
        'renderer.maths imports OpenGL.GL: the renderer must work without a GUI',
        'benchmarks.run imports helpers from tests/']


def test_type_checking_imports_do_not_count(tmp_path):
    path = write_tree(tmp_path, {'renderer/a.py': 'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
                                                  '    import torch\nimport numpy\n'}) / 'renderer' / 'a.py'
    assert imports_of(tmp_path, path) == {'typing', 'numpy'}


def readme_commands() -> list[str]:
    text = (ROOT / 'README.md').read_text()
    return sorted(set(re.findall(r'python -m (renderer(?:\.\w+)+)(?![.\w])', text)))


def test_readme_lists_every_command():
    from renderer.commands import COMMANDS
    assert {f'renderer.commands.{name}' for name in COMMANDS} <= set(readme_commands())


def help_text(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize('module', readme_commands())
def test_readme_commands_exist_and_take_network_and_device(module, capsys):
    main = importlib.import_module(module).main
    helps = help_text(capsys, main, ['--help'])
    kinds = re.search(r'^  \{([\w,]+)\}', helps, re.M)    # Sub-commands: check each one's options.
    for kind in kinds.group(1).split(',') if kinds else []:
        options = help_text(capsys, main, [kind, '--help'])
        assert '--network ' in options and '--device ' in options, (kind, options)
    if not kinds and not module.endswith('convert'):   # convert takes IN and OUT, and no network option
        assert '--network ' in helps and '--device ' in helps, helps


@pytest.mark.parametrize('name', ['generate', 'convert', 'video', 'sticking', 'equivariance', 'spectrum'])
def test_old_command_names_still_work(name, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [f'renderer/{name}.py', '--help'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(f'renderer.{name}', run_name='__main__')
    assert exit_info.value.code == 0
    assert f'renderer.commands.{name}' in capsys.readouterr().err


@pytest.mark.skipif(shutil.which('afv-generate') is None,
                    reason='the project is not installed (pip install -r requirements.txt)')
def test_installed_commands_work_from_any_folder(tmp_path):
    """Once installed, the console scripts and `python -m` work outside the checkout."""
    from net_helpers import make_generator
    from pickle_fixtures import write_published
    network = write_published(tmp_path / 'net.pkl', make_generator('stylegan2', 32, seed=1))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    done = subprocess.run(['afv-generate', '--network', str(network), '--seeds', '2', '--out', 'pngs', '--device',
                           'cpu'], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert os.listdir(elsewhere / 'pngs') == ['seed0002.png']
    done = subprocess.run([sys.executable, '-m', 'renderer.commands.convert', str(network), 'net.pt', '--quiet'],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (elsewhere / 'net.pt').is_file(), done.stderr
