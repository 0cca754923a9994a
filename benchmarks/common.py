"""Shared pieces of the benchmark scripts: environment description and JSON output."""

from __future__ import annotations

import json
import os
import platform
from typing import Any, Optional

import torch


def environment(cuda_device: Optional[str] = None) -> dict[str, Any]:
    return dict(torch=torch.__version__, python=platform.python_version(), cpu_threads=torch.get_num_threads(),
                cpu_count=os.cpu_count(), machine=platform.machine(), cuda_device=cuda_device)


def write_json(path: str, rows: list[dict], **environment_overrides: Any) -> None:
    """Write {'environment': ..., 'rows': rows} to `path` (folders created) and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(environment=environment(**environment_overrides), rows=rows), f, indent=2)
    print(f'wrote {path}')
