"""Interaction latency of the visualizer's renderer, from the user's side of AsyncRenderer (demo network).

    python benchmarks/interaction.py [--device cpu] [--repeats 5] [--json out/benchmarks/interaction.json]

Rows (milliseconds, median over --repeats unless said otherwise):
- display-only change: a change that only alters how the last render is drawn (channel, gain,
  normalisation, FFT range), set_args -> its final result;
- layer switch: another layer of the same synthesis;
- seed change: a new latent (a full synthesis);
- compare display change: the split position of A | B;
- interrupt during a 64-sample averaged image: a seed change sent once the average is running,
  set_args -> its result, minus the seed change's own time (the time the average held it up);
- cancel: cancel() during the averaged image -> the cancelled result;
- first image (renderer): AsyncRenderer() -> first final result, demo network loaded from the cache;
- first image (window): under Xvfb, the window drawn -> the first image drawn, with the renderer
  process started before the window as visualizer.py does;
- GUI idle CPU: the visualizer's frame loop with nothing to do, process CPU time / wall time.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from renderer.live.process import AsyncRenderer
from renderer.live.render_args import RenderArgs

TIMEOUT_S = 600.0


def final_result(renderer: AsyncRenderer, timeout_s: float = TIMEOUT_S):
    """Poll until the latest request's final result arrives; returns it."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        result = renderer.get_result()
        if result is not None and not result.partial:
            last = result
        if not renderer.is_busy and last is not None:
            if last.error:
                raise RuntimeError(last.error)
            return last
        time.sleep(0.001)
    raise RuntimeError('no result within the time limit')


def latency_ms(renderer: AsyncRenderer, args: RenderArgs) -> float:
    start = time.perf_counter()
    renderer.set_args(args)
    final_result(renderer)
    return 1e3 * (time.perf_counter() - start)


def wait_for_stage(renderer: AsyncRenderer, stage: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not (renderer.progress is not None and renderer.progress.stage == stage):
        if time.monotonic() > deadline:
            raise RuntimeError(f'no progress in {stage}')
        renderer.get_result()
        time.sleep(0.001)


def renderer_rows(device: str, repeats: int) -> list[dict]:
    rows = []
    with AsyncRenderer() as warm:               # Builds and caches the demo network if needed.
        warm.set_args(RenderArgs(device=device))
        final_result(warm)
    start = time.perf_counter()
    renderer = AsyncRenderer()
    try:
        renderer.set_args(RenderArgs(device=device))
        final_result(renderer)
        rows.append(dict(case='first image (renderer)', ms=1e3 * (time.perf_counter() - start), runs=1))
        base = RenderArgs(device=device, layer='L7_148_181')
        latency_ms(renderer, base)
        for name, changes in [('display-only change: channel', lambda i: dict(channel_base=3 * (i + 1))),
                              ('display-only change: gain', lambda i: dict(gain_db=float(i + 1))),
                              ('display-only change: normalise', lambda i: dict(normalize=i % 2 == 0)),
                              ('display-only change: FFT range', lambda i: dict(fft=True, fft_range_db=30.0 + i))]:
            times = [latency_ms(renderer, base.replace(**changes(i))) for i in range(repeats)]
            rows.append(dict(case=name, ms=statistics.median(times), runs=repeats))
        layers = ['L2_36_256', 'L10_276_64', 'L12_276_32', 'L4_52_256', 'L13_256_32', 'L8_148_128']
        times = [latency_ms(renderer, base.replace(layer=layers[i % len(layers)])) for i in range(repeats)]
        rows.append(dict(case='layer switch', ms=statistics.median(times), runs=repeats))
        seed_times = [latency_ms(renderer, RenderArgs(device=device, seed=100 + i)) for i in range(repeats)]
        rows.append(dict(case='seed change', ms=statistics.median(seed_times), runs=repeats))
        compare = RenderArgs(device=device, seed=100, compare_network='demo', compare_view='split')
        latency_ms(renderer, compare)
        times = [latency_ms(renderer, compare.replace(split_pos=0.1 + 0.15 * i)) for i in range(repeats)]
        rows.append(dict(case='compare display change: split', ms=statistics.median(times), runs=repeats))
        interrupt, cancel = [], []
        for i in range(repeats):
            renderer.set_args(RenderArgs(device=device, seed=200 + i, diagnostic='average', average_samples=64))
            wait_for_stage(renderer, 'averaged image A')
            interrupt.append(latency_ms(renderer, RenderArgs(device=device, seed=300 + i)))
            renderer.set_args(RenderArgs(device=device, seed=400 + i, diagnostic='average', average_samples=64))
            wait_for_stage(renderer, 'averaged image A')
            start = time.perf_counter()
            renderer.cancel()
            assert final_result(renderer).cancelled
            cancel.append(1e3 * (time.perf_counter() - start))
        own = statistics.median(seed_times)
        rows.append(dict(case='interrupt 64-sample average (beyond own render)',
                         ms=statistics.median(interrupt) - own, runs=repeats,
                         note=f'total {statistics.median(interrupt):.0f} ms, own render {own:.0f} ms'))
        rows.append(dict(case='cancel 64-sample average', ms=statistics.median(cancel), runs=repeats))
    finally:
        renderer.close()
    return rows


def gui_rows(device: str, idle_s: float) -> list[dict]:
    from gui_utils.xvfb import start_xvfb, stop_xvfb
    xvfb = None
    if not os.environ.get('DISPLAY'):
        xvfb, os.environ['DISPLAY'] = start_xvfb()
    try:
        renderer = AsyncRenderer()               # Started before the window, as visualizer.py does.
        from viz.app import Visualizer
        viz = Visualizer(device=device, vsync=True, renderer=renderer)
        try:
            viz.frame()
            window_up = time.perf_counter()
            deadline = window_up + TIMEOUT_S
            while viz.final_result is None and time.perf_counter() < deadline:
                viz.frame()
            first = time.perf_counter() - window_up
            settle_until = time.perf_counter() + 2.0
            while time.perf_counter() < settle_until:
                viz.frame()
            cpu, wall, frames = time.process_time(), time.perf_counter(), viz.frame_count
            while time.perf_counter() - wall < idle_s:
                viz.frame()
            cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
            idle_frames = viz.frame_count - frames
        finally:
            viz.close()
    finally:
        if xvfb is not None:
            stop_xvfb(xvfb)
    return [dict(case='first image (window)', ms=1e3 * first, runs=1),
            dict(case='GUI idle CPU', percent_of_a_core=100 * cpu_share, frames=idle_frames, seconds=idle_s)]


def main() -> int:
    from common import write_json
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', help='render device (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=5, help='runs per case (default 5)')
    parser.add_argument('--idle-seconds', type=float, default=10.0, help='how long the idle GUI is watched')
    parser.add_argument('--no-gui', action='store_true', help='skip the two rows that need a window')
    parser.add_argument('--json', default='out/benchmarks/interaction.json', help='where to write results')
    args = parser.parse_args()
    rows = renderer_rows(args.device, args.repeats)
    if not args.no_gui:
        rows += gui_rows(args.device, args.idle_seconds)
    width = max(len(r['case']) for r in rows)
    for row in rows:
        value = f'{row["ms"]:8.0f} ms' if 'ms' in row else f'{row["percent_of_a_core"]:8.1f} % of a core'
        print(f'{row["case"]:<{width}}  {value}  {row.get("note", "")}')
    write_json(args.json, rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
