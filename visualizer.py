"""Interactive visualizer for StyleGAN3 / StyleGAN2 generators.

    python visualizer.py                      # the built-in (untrained) demo network
    python visualizer.py net.pkl other.pkl    # open net.pkl; other.pkl goes to the recent list
    xvfb-run python visualizer.py --frames 60 --screenshot out/window.png   # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional

from renderer.media.atomic import atomic_path, check_writable
from renderer.options import DEVICES, PRECISION_HELP, PRECISIONS

SCREENSHOT_WAIT_S = 120.0  # Longest wait for the renderer before a --screenshot is taken.


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('networks', nargs='*', metavar='PATH_OR_URL',
                        help='network pickles (.pkl) or our format (.pt); the first is opened')
    parser.add_argument('--capture-dir', default='out/captures', help='where captures go (default: %(default)s)')
    parser.add_argument('--browse-dir', default='', help='folder whose *.pkl / *.pt files are listed for opening')
    parser.add_argument('--device', choices=DEVICES, default='auto', help='render device (default: %(default)s)')
    parser.add_argument('--precision', choices=PRECISIONS, default=None,
                        help='how synthesis computes (default: as last time, at first fp16; the Performance panel '
                             'shows what rendered each image): ' +
                             '; '.join(f'{k}: {v}' for k, v in PRECISION_HELP.items()))
    parser.add_argument('--sync', action='store_true', help='render in the GUI process (debugging)')
    parser.add_argument('--no-settings', action='store_true',
                        help='neither restore nor save the recent networks and the last state')
    parser.add_argument('--frames', type=_frame_count, default=None, help='draw N frames, then exit (smoke tests)')
    parser.add_argument('--screenshot', default=None, metavar='PATH', help='write a PNG of the window at exit')
    args = parser.parse_args(argv)
    if args.screenshot is not None:
        if os.path.splitext(args.screenshot)[1].lower() != '.png':
            parser.error(f'--screenshot must be a .png file, got {args.screenshot!r}')
        try:
            check_writable([args.screenshot])      # Now, not after the session.
        except OSError as e:
            parser.error(f'--screenshot {e.filename}: {e.strerror}')
    return args


def _frame_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a whole number of frames >= 1, got {text!r}')
    return value


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    # Start the renderer process first: it imports torch and loads the network while the GUI's own
    # imports run and the window opens.
    from renderer.live.process import AsyncRenderer
    renderer = AsyncRenderer(sync=args.sync)
    from gui_utils.window import WindowError  # GUI imports after argparse, so --help works anywhere.
    from viz.app import Visualizer
    from viz.settings import default_path
    try:
        viz = Visualizer(sync=args.sync, capture_dir=args.capture_dir, browse_dir=args.browse_dir,
                         device=args.device, renderer=renderer,
                         settings_path=None if args.no_settings else default_path())
    except WindowError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.precision is not None:
        viz.state.precision = args.precision
    try:
        for path in reversed(args.networks):
            viz.network_widget.open(path)  # The first one ends up open and first in the recent list.
        run(viz, args.frames, args.screenshot)
    except OSError as e:    # The screenshot could not be written after all (the disk filled up).
        print(f'error: --screenshot {e.filename or args.screenshot}: {e.strerror or e}', file=sys.stderr)
        return 2
    finally:
        viz.close()
    return 0


def run(viz, frames: Optional[int], screenshot: Optional[str]) -> None:
    """Run frames until the window closes (or `frames` were drawn); save the last one if asked.

    With a screenshot, frames continue past `frames` until the renderer is idle (at most
    SCREENSHOT_WAIT_S), so the picture shows the rendered image even with the async renderer."""
    while not viz.window.should_close() and (frames is None or viz.frame_count < frames):
        viz.frame()
    if screenshot:
        deadline = time.monotonic() + SCREENSHOT_WAIT_S
        while viz.renderer.is_busy and time.monotonic() < deadline:
            viz.frame()
        viz.read_back = True
        viz.frame()
        import imageio.v3 as iio
        with atomic_path(screenshot) as tmp:
            iio.imwrite(tmp, viz.last_pixels, extension='.png')


if __name__ == '__main__':
    sys.exit(main())
