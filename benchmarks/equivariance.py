"""Equivariance metrics speed: seconds per sample of EQ-T, EQ-T_frac and EQ-R, and the comparison's share.

    python benchmarks/equivariance.py [--network demo] [--metrics eq_t,eq_t_frac,eq_r] [--samples 4]
                                      [--batch 2] [--device cpu] [--json benchmarks/results/equivariance.json]

Each row runs the metric on `--samples` samples (two renders per sample) and reports the wall time per
sample; `compare ms/batch` is the time of the image comparison alone (the exact shift, the windowed-sinc
shift, or the band-limited rotation plus pseudo-rotation) on one batch of the network's images, so the
rest is rendering. The PSNR of so few samples is only indicative.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from common import write_json

from renderer.commands.common import open_network
from renderer.diagnostics import equivariance as eq
from renderer.signal.transforms import image_transform


def sample_transform(name: str, resolution: int) -> np.ndarray:
    """A typical transform of each metric, for timing the comparison alone."""
    if name == 'eq_r':
        return image_transform(rotate_deg=37)
    shift = (5, -3) if name == 'eq_t' else (5.3, -2.6)
    return image_transform(translate=(shift[0] / resolution, shift[1] / resolution))


def time_comparison(name: str, images: torch.Tensor, repeats: int = 3) -> float:
    """Median ms of the comparison for one batch of images [N, C, H, W]."""
    matrix = sample_transform(name, images.shape[-1])
    eq.compare_images(images, images, matrix, None)  # warm-up: filter design, allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        eq.compare_images(images, images, matrix, None)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--network', default='demo', help='network pickle / .pt path or URL, or "demo"')
    parser.add_argument('--device', default='cpu', choices=['auto', 'cpu', 'cuda', 'mps'])
    parser.add_argument('--metrics', default=','.join(eq.METRICS))
    parser.add_argument('--samples', type=int, default=4, help='samples per metric')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--json', default='benchmarks/results/equivariance.json', help='output JSON path')
    args = parser.parse_args()
    metrics = eq.parse_metrics(args.metrics)
    G = open_network(args.network, args.device)
    device = next(G.buffers()).device
    with torch.no_grad():
        ws = G.mapping(torch.randn([args.batch, G.z_dim], device=device), torch.zeros([args.batch, G.c_dim],
                                                                                      device=device))
        images = G.synthesis(ws, force_fp32=True)
    rows = []
    print(f'{"metric":<10} {"device":<6} {"res":>5} {"batch":>5} {"s/sample":>9} {"compare ms/batch":>17} '
          f'{"PSNR dB":>8}')
    for name in metrics:
        result = eq.measure(G, [name], num_samples=args.samples, batch=args.batch, progress=False)[name]
        row = dict(metric=name, network=args.network, device=str(device), resolution=G.img_resolution,
                   batch=args.batch, samples=args.samples, s_per_sample=result.seconds / args.samples,
                   compare_ms_per_batch=time_comparison(name, images), psnr_db=result.to_json()['psnr_db'])
        rows.append(row)
        print(f'{name:<10} {row["device"]:<6} {G.img_resolution:>5} {args.batch:>5} {row["s_per_sample"]:>9.2f} '
              f'{row["compare_ms_per_batch"]:>17.1f} {result.psnr_db:>8.2f}', flush=True)
    write_json(args.json, rows, cuda_device=torch.cuda.get_device_name() if device.type == 'cuda' else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
