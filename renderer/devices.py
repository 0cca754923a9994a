"""Choosing where to run: 'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda' or 'mps'.

Importable without torch; torch is imported when a device is resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from renderer.errors import RequestError
from renderer.options import DEVICES

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> tuple['torch.device', Optional[str]]:
    """(device, note): an unavailable 'cuda' or 'mps' falls back (CUDA -> MPS -> CPU) with a note saying so."""
    import torch
    if name not in DEVICES:
        raise RequestError(f'unknown device {name!r}; choose one of {", ".join(DEVICES)}')
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()
    if name == 'cuda' and not cuda or name == 'mps' and not mps:
        fallback = 'mps' if mps else 'cpu'
        return torch.device(fallback), f'{name} is not available here; rendering on {fallback}'
    if name == 'auto':
        return torch.device('cuda' if cuda else 'mps' if mps else 'cpu'), None
    return torch.device(name), None


def pick_device(name: str) -> 'torch.device':
    """The device asked for, without falling back: RequestError if it is not available (commands)."""
    device, fallback_note = resolve_device(name)
    if fallback_note:
        raise RequestError(f'device {name!r} is not available on this machine')
    return device
