"""Shared fixtures: `xvfb_display` (one private X server per session, for the GUI tests)."""

from gui_harness import xvfb_display  # noqa: F401 (a fixture, registered by importing it here)
