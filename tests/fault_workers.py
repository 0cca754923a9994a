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


HANG_PREFIX = 'hang://'
SLOW_PREFIX = 'slow://'    # slow://S takes S seconds (no safe points), then answers.


def hangs_without_safe_points(requests: Connection, results: Connection, prefix: str) -> None:
    """The real worker protocol, but a network named hang://... blocks forever inside one stage (as a call
    into C that never returns would), never looking at cancellation; slow://S takes S seconds; other requests
    get a small image at once."""
    import threading
    import time

    import numpy as np

    from renderer.live import process
    from renderer.live.control import RenderControl
    from renderer.live.render_args import RenderResult
    inbox, outbox = process._Inbox(requests), process._Outbox(results, prefix)   # noqa: SLF001 (the protocol)
    needed = lambda args: {('stuck', args.network)}                               # noqa: E731
    threading.Thread(target=process._heartbeat, args=(inbox, outbox, lambda: needed), daemon=True).start()  # noqa: SLF001
    while (request := inbox.next_request()) is not None:
        request_id, args = request
        if inbox.was_cancelled(request_id):
            outbox.result(RenderResult(request_id=request_id, args=args, cancelled=True))
            continue
        control = RenderControl()
        outbox.started(request_id)
        if args.network.startswith(HANG_PREFIX):
            with control.stage(('stuck', args.network), 'stuck'):
                inbox.running = (request_id, control)
                while True:
                    time.sleep(3600)
        if args.network.startswith(SLOW_PREFIX):
            time.sleep(float(args.network[len(SLOW_PREFIX):]))
        outbox.result(RenderResult(request_id=request_id, args=args, image=np.full((4, 4, 3), 7, np.uint8)))
