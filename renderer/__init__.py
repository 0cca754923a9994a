"""alias-free-viz renderer: generators, safe network loading, rendering.

Top-level names are imported lazily, so `import renderer` stays cheap (no torch, no GL):
    from renderer import load_network, save_network, network_info, NetworkInfo, NetworkLoadError
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_EXPORTS = {
    'load_network': 'io.loading',
    'save_network': 'io.native_format',
    'network_info': 'io.checkpoint',
    'NetworkInfo': 'io.checkpoint',
    'NetworkLoadError': 'errors',
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{module}', __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
