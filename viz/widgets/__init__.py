"""One widget class per module; each reads `viz.result` and edits `viz.state` in `__call__`."""
