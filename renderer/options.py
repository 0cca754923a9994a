"""The choices and limits of every user option, in one place for the GUI, the renderer and the commands.

Plain constants, importable without torch: the GUI bounds its controls with the
same numbers that the renderer and the commands validate against.
"""

from __future__ import annotations

DEVICES = ('auto', 'cpu', 'cuda', 'mps')          # 'auto': CUDA, else MPS, else CPU.
NOISE_MODES = ('const', 'random', 'none')         # StyleGAN2 noise inputs: stored buffers, fresh draws, none.
PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')     # How synthesis computes; see renderer/networks/precision.py.
PRECISION_HELP = {                                # What each precision means, for --help and the GUI.
    'fp32': 'everything in float32',
    'bf16': 'bfloat16 synthesis layers with float32 accumulation (CPUs with oneDNN bf16; CUDA)',
    'fp16': 'float16 in the layers the network flags, on CUDA, as the published networks do (float32 elsewhere)',
    'auto': 'the fastest of these that keeps PSNR >= 40 dB against float32, measured once per network',
}
PRECISION_FLOOR_DB = 40.0   # 'auto' takes a reduced precision only if its image keeps this PSNR against float32.
INTERPOLATIONS = ('linear', 'slerp', 'cubic')     # Ways to interpolate between keyframe ws.
COMPARE_VIEWS = ('side', 'split', 'diff')         # A | B, A left of a split line and B right of it, |A - B|.
COMPARE_MATCHES = {                               # How split and |A - B| put B on A's pixels when sizes differ.
    'resize': 'B resized to A (bilinear, antialiased)',
    'pad': 'B at its own pixels, centred on A (grey around, or cropped)',
}
SLICE_MOTIONS = ('translate', 'latent')           # Input translation, or latent interpolation seed -> seed + 1.
SLICE_AXES = ('row', 'column')                    # A row slice stacks rows (time runs down), a column one columns.
DIAGNOSTICS = {                                   # What each diagnostic view shows, left to right.
    'none': 'the image or layer view',
    'average': 'central image | average of perturbed latents (sharp detail in the average sticks to the grid)',
    'slice': 'middle frame | one row (or column) of every frame stacked over time (vertical streaks stick)',
    'eq_error': 'rendered with the input transform | ideal transform of the reference | |error|',
}

MAX_SEED = 2 ** 32 - 1       # Seeds are numpy RandomState seeds: 0 <= seed < 2**32.
SEED_ROW_STEP = 100          # The 2-D latent plane: grid point (x, y) is seed x + 100 y (as NVIDIA's visualizer).
MAX_AVERAGE_SAMPLES = 1024   # Perturbed latents of one averaged image.
MAX_SLICE_FRAMES = 4096      # Frames of one slice (the slice image is this many rows or columns).
MIN_SLICE_FRAMES = 2
