"""What the visualizer remembers between launches: the recent networks and the last session's state.

Stored as JSON in `$AFV_CONFIG_DIR/settings.json` (default `$XDG_CONFIG_HOME/alias-free-viz`,
else `~/.config/alias-free-viz`), written atomically when the window closes. A file that cannot
be read or does not hold what is expected is ignored with a notice, never an error: the
visualizer then starts as on a first launch.

Kept: the recent networks, network A and its latent (seed, seed y, class), and which control
panels were open.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from renderer.media.atomic import atomic_path
from renderer.options import MAX_SEED

FILE_NAME = 'settings.json'
VERSION = 1
MAX_FILE_BYTES = 1 << 20       # A settings file larger than this is not ours.
MAX_RECENT = 10


def settings_dir() -> str:
    override = os.environ.get('AFV_CONFIG_DIR')
    if override:
        return os.path.expanduser(override)
    base = os.environ.get('XDG_CONFIG_HOME') or os.path.join(os.path.expanduser('~'), '.config')
    return os.path.join(base, 'alias-free-viz')


def default_path() -> str:
    return os.path.join(settings_dir(), FILE_NAME)


@dataclass
class Settings:
    recent: list[str] = field(default_factory=list)
    network: str = ''                       # '' = the built-in demo network.
    seed: float = 0.0
    seed_y: float = 0.0
    class_idx: Optional[int] = None
    open_panels: dict[str, bool] = field(default_factory=dict)   # Section title -> open.

    def to_json(self) -> str:
        return json.dumps(dict(version=VERSION, recent=self.recent, network=self.network, seed=self.seed,
                               seed_y=self.seed_y, class_idx=self.class_idx, open_panels=self.open_panels),
                          indent=1)


def load(path: str) -> tuple[Settings, str]:
    """(settings, notice): the saved settings, or the defaults and why the file was not used ('' if absent)."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return Settings(), ''
    except OSError as e:
        return Settings(), f'Ignored the settings in {path}: {e.strerror}.'
    try:
        if size > MAX_FILE_BYTES:
            raise ValueError(f'{size} bytes is more than a settings file holds')
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        return _parse(data), ''
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as e:
        return Settings(), f'Ignored the settings in {path} ({e}); starting afresh.'


def _parse(data: object) -> Settings:
    if not isinstance(data, dict) or data.get('version') != VERSION:
        raise ValueError('not a settings file of this version')
    recent = data.get('recent', [])
    if not isinstance(recent, list) or not all(isinstance(p, str) for p in recent):
        raise ValueError('"recent" must be a list of paths')
    network = data.get('network', '')
    if not isinstance(network, str):
        raise ValueError('"network" must be a path')
    seeds = [data.get('seed', 0.0), data.get('seed_y', 0.0)]
    for value in seeds:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= MAX_SEED:
            raise ValueError(f'seed {value!r} is not one')
    class_idx = data.get('class_idx')
    if class_idx is not None and (isinstance(class_idx, bool) or not isinstance(class_idx, int) or class_idx < 0):
        raise ValueError(f'class {class_idx!r} is not one')
    panels = data.get('open_panels', {})
    if not isinstance(panels, dict) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in panels.items()):
        raise ValueError('"open_panels" must map panel titles to true or false')
    return Settings(recent=recent[:MAX_RECENT], network=network, seed=float(seeds[0]), seed_y=float(seeds[1]),
                    class_idx=class_idx, open_panels=panels)


def save(path: str, settings: Settings) -> None:
    """Write the settings atomically (a crash mid-write leaves the previous file)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(settings.to_json())
