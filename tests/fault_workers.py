"""Renderer-process main functions that fail on purpose, for AsyncRenderer's fault tests (spawned by name)."""

from __future__ import annotations

import os
import struct
from multiprocessing import shared_memory
from multiprocessing.connection import Connection


def dies_mid_message(requests: Connection, results: Connection, prefix: str) -> None:
    """Leave an image block behind, write the start of a large message, and die without finishing it."""
    requests.recv()                                       # Wait for the first request.
    block = shared_memory.SharedMemory(name=prefix + 'orphan', create=True, size=1024)
    block.close()
    os.write(results.fileno(), struct.pack('!i', 300_000) + b'\0' * 1000)   # Header and a fraction of the payload.
    os._exit(3)
