"""GUI responsiveness while the background renderer is busy.

Runs the real Visualizer (async renderer, built-in demo network, CPU) under the
current DISPLAY, or a private Xvfb when there is none; after the first image
arrives it asks for a new seed every frame for --seconds, so renders are always
in flight, and measures how many frames the GUI draws per second and how many
results the renderer delivers per second.

    python benchmarks/gui_responsiveness.py --seconds 10 --json out/benchmarks/gui_responsiveness.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def wait_for_first_image(viz, timeout_s: float = 120.0) -> float:
    """Draw frames until the first image arrives (worker start + torch import + first render); returns seconds."""
    start = time.perf_counter()
    while viz.shown_result is None:
        if time.perf_counter() - start > timeout_s:
            raise RuntimeError('no image from the renderer within the timeout')
        viz.frame()
    return time.perf_counter() - start


def drive_seeds(viz, seconds: float) -> dict:
    """Change the seed every frame for `seconds`; returns frame and result statistics."""
    frame_ms, busy_frames, render_ms = [], 0, []
    results, last = 0, viz.result
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        viz.state.seed = float(int(viz.state.seed) + 1)
        t = time.perf_counter()
        viz.frame()
        frame_ms.append(1e3 * (time.perf_counter() - t))
        busy_frames += viz.renderer.is_busy
        if viz.result is not last:
            last, results = viz.result, results + 1
            render_ms.append(viz.result.timings.get('total', float('nan')))
    elapsed = time.perf_counter() - start
    frame_ms = np.array(frame_ms)
    return dict(seconds=elapsed, frames=len(frame_ms), gui_fps=len(frame_ms) / elapsed,
                frames_with_render_in_flight=busy_frames, frame_ms_median=float(np.median(frame_ms)),
                frame_ms_p95=float(np.percentile(frame_ms, 95)), frame_ms_max=float(frame_ms.max()),
                results=results, results_per_s=results / elapsed,
                render_ms_mean=float(np.mean(render_ms)) if render_ms else None)


def print_table(stats: dict) -> None:
    width = max(map(len, stats))
    for key, value in stats.items():
        text = f'{value:.2f}' if isinstance(value, float) else str(value)
        print(f'{key:<{width}}  {text}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=10.0, help='how long to drive seed changes')
    parser.add_argument('--device', default='cpu', help='render device (default: %(default)s)')
    parser.add_argument('--json', default='out/benchmarks/gui_responsiveness.json', help='where to write results')
    args = parser.parse_args()
    from gui_utils.xvfb import start_xvfb, stop_xvfb
    xvfb = None
    if not os.environ.get('DISPLAY'):
        xvfb, os.environ['DISPLAY'] = start_xvfb()
    try:
        stats = run(args.seconds, args.device)
    finally:
        if xvfb is not None:
            stop_xvfb(xvfb)
    print_table(stats)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(stats, f, indent=2)
    return 0


def run(seconds: float, device: str) -> dict:
    from viz.app import Visualizer
    viz = Visualizer(sync=False, device=device, vsync=False, wait_when_idle=False)
    try:
        startup_s = wait_for_first_image(viz)
        stats = drive_seeds(viz, seconds)
    finally:
        viz.close()
    return dict(device=device, display=os.environ.get('DISPLAY', ''), first_image_s=startup_s, **stats)


if __name__ == '__main__':
    sys.exit(main())
