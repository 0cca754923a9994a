"""The commands' old names, `python -m renderer.<name>`, forwarded to `renderer.commands.<name>`.

The modules renderer/<name>.py are kept only so that existing scripts keep working;
each says the new name on stderr and runs the command.
"""

from __future__ import annotations

import importlib
import sys

from renderer.commands import COMMANDS


def forward(name: str) -> int:
    """Run `renderer.commands.<name>` with this process's arguments; returns its exit status."""
    if name not in COMMANDS:
        raise ValueError(f'unknown command {name!r}')
    print(f'note: "python -m renderer.{name}" is now "python -m renderer.commands.{name}"', file=sys.stderr)
    return importlib.import_module(f'renderer.commands.{name}').run()
