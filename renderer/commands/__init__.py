"""Every `python -m ...` entry point: thin shells over the library that share one set of options and one
error/exit convention (renderer.commands.common).

    python -m renderer.commands.generate      PNGs of seeds
    python -m renderer.commands.convert       published pickle -> our format
    python -m renderer.commands.video         MP4 videos (interpolation, truncation, translation, layers, slices)
    python -m renderer.commands.sticking      texture-sticking diagnostics as PNG
    python -m renderer.commands.equivariance  EQ-T, EQ-T_frac, EQ-R as JSON
    python -m renderer.commands.spectrum      average power spectra as PNG + npz

Library code never imports from here (tests/test_layout.py checks it).
"""

COMMANDS = ('generate', 'convert', 'video', 'sticking', 'equivariance', 'spectrum')
