"""Shared pieces of the command-line tools: network/device options and error handling.

Every command exits 0 on success, 2 with `error: ...` on stderr for bad input
(a bad file, value or option), and 130 on Ctrl-C; output files are written through
renderer.atomic, so an interrupted command leaves nothing under the final name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

import torch

from .errors import NetworkLoadError
from .generation import DEMO_SOURCE, load_generator

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def add_network_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """--network (path, URL or 'demo') and --device."""
    parser.add_argument('--network', required=required, default=None if required else DEMO_SOURCE,
                        help=f'network pickle / .pt path or URL ("{DEMO_SOURCE}": the built-in untrained network)')
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda', 'mps'],
                        help='where to run (auto: CUDA, else MPS, else CPU)')


def pick_device(name: str) -> torch.device:
    """torch.device for 'auto'/'cpu'/'cuda'/'mps'; ValueError if the asked one is not available."""
    from .render import resolve_device
    device, fallback_note = resolve_device(name)
    if fallback_note:
        raise ValueError(f'device {name!r} is not available on this machine')
    return device


def open_network(source: str, device_name: str = 'auto') -> torch.nn.Module:
    return load_generator(source, pick_device(device_name))


def run_command(main: Callable[[Sequence[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)`, turning bad input into `error: ...` + exit 2 and Ctrl-C into exit 130."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except (ValueError, NetworkLoadError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print('\ninterrupted; no partial output was kept', file=sys.stderr)
        return EXIT_INTERRUPTED
