"""Shared fixtures: `xvfb_display` (one private X server per session, for the GUI tests).

The network cache (downloads, the built demo network) goes to a folder of this test session,
not the user's: renderer processes started by the tests inherit it, so the demo network is
built once per session and loaded from there afterwards.
"""

import atexit
import os
import shutil
import tempfile

from gui_harness import xvfb_display  # noqa: F401 (a fixture, registered by importing it here)

_CACHE = tempfile.mkdtemp(prefix='afv-test-cache-')
os.environ['AFV_CACHE_DIR'] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
# The visualizer's settings (recent networks, last state) likewise, never the user's.
_CONFIG = tempfile.mkdtemp(prefix='afv-test-config-')
os.environ['AFV_CONFIG_DIR'] = _CONFIG
atexit.register(shutil.rmtree, _CONFIG, ignore_errors=True)
