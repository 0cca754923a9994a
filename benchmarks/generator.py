"""Generator speed: ms per image for mapping + synthesis, batch 1 and 8, CPU and CUDA.

    python benchmarks/generator.py [--configs stylegan3-t-256,...] [--batches 1,8]
                                   [--devices cpu,cuda] [--json benchmarks/results/generator.json]

Each row: warm-up run(s), then repeated timed runs (median reported) until
--repeats runs or --budget seconds are used. CUDA rows are timed with
synchronisation around each run and report peak memory; on CUDA both the
mixed-precision default (fp16 on the flagged layers) and --force_fp32 are timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from common import write_json

from renderer.networks import stylegan2, stylegan3
from renderer.ops import implementation_status

CONFIGS = {
    'stylegan3-t-256': (stylegan3.Generator, dict(img_resolution=256, channel_base=16384)),
    'stylegan3-r-256': (stylegan3.Generator, dict(img_resolution=256, channel_base=32768, channel_max=1024,
                                                  conv_kernel=1, use_radial_filters=True)),
    'stylegan2-256': (stylegan2.Generator, dict(img_resolution=256, channel_base=16384,
                                                mapping_kwargs=dict(num_layers=8))),
    'stylegan3-t-1024': (stylegan3.Generator, dict(img_resolution=1024)),
    'stylegan3-r-1024': (stylegan3.Generator, dict(img_resolution=1024, channel_base=65536, channel_max=1024,
                                                   conv_kernel=1, use_radial_filters=True)),
    'stylegan2-1024': (stylegan2.Generator, dict(img_resolution=1024, mapping_kwargs=dict(num_layers=8))),
}
DEFAULT_CONFIGS = 'stylegan3-t-256,stylegan3-r-256,stylegan2-256,stylegan3-t-1024'


def build(name: str, device: torch.device) -> torch.nn.Module:
    cls, kwargs = CONFIGS[name]
    torch.manual_seed(0)
    return cls(z_dim=512, c_dim=0, w_dim=512, img_channels=3, **kwargs).eval().requires_grad_(False).to(device)


def time_row(G: torch.nn.Module, batch: int, device: torch.device, force_fp32: bool, repeats: int,
             budget: float) -> dict:
    z = torch.randn([batch, G.z_dim], device=device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

    def run() -> float:
        sync()
        start = time.perf_counter()
        G(z, None, force_fp32=force_fp32)
        sync()
        return time.perf_counter() - start

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        warm = run()
        if device.type == 'cuda' or warm < budget / 4:
            run()  # second warm-up: kernel selection, allocator, oneDNN primitive caches
        times = []
        started = time.perf_counter()
        while len(times) < repeats and (not times or time.perf_counter() - started < budget):
            times.append(run())
    row = dict(batch=batch, runs=len(times), ms_per_image=1e3 * statistics.median(times) / batch,
               ms_per_batch=1e3 * statistics.median(times))
    if device.type == 'cuda':
        row['peak_mem_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default=DEFAULT_CONFIGS, help=f'comma-separated, from {sorted(CONFIGS)}')
    parser.add_argument('--batches', default='1,8')
    parser.add_argument('--devices', default='cpu,cuda', help='devices to time; cuda is skipped when absent')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per row (at most)')
    parser.add_argument('--budget', type=float, default=60, help='seconds of timed runs per row (at least one run)')
    parser.add_argument('--json', default='benchmarks/results/generator.json', help='output JSON path')
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(',') if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f'unknown config(s) {unknown}; choose from {sorted(CONFIGS)}')
    devices = [d for d in args.devices.split(',') if d == 'cpu' or (d == 'cuda' and torch.cuda.is_available())]
    rows = []
    print(f'{"config":<18} {"device":<6} {"prec":<5} {"batch":>5} {"ms/img":>10} {"runs":>5} {"peak MB":>8}')
    for device_name in devices:
        device = torch.device(device_name)
        for name in configs:
            G = build(name, device)
            for precision in (['fp16', 'fp32'] if device.type == 'cuda' else ['fp32']):
                for batch in (int(b) for b in args.batches.split(',')):
                    row = dict(config=name, device=device_name, precision=precision,
                               **time_row(G, batch, device, precision == 'fp32', args.repeats, args.budget))
                    if device.type == 'cuda':  # what each op ran: the kernel, or the reference fallback
                        row['ops'] = {op: s['impl'] for op, s in implementation_status().items()}
                    rows.append(row)
                    peak = f'{row["peak_mem_mb"]:8.0f}' if 'peak_mem_mb' in row else f'{"-":>8}'
                    print(f'{name:<18} {device_name:<6} {precision:<5} {batch:>5} {row["ms_per_image"]:>10.1f} '
                          f'{row["runs"]:>5} {peak}', flush=True)
            del G
    if 'cuda' in devices:  # which implementation each op ran on CUDA tensors, and why
        for op, status in implementation_status().items():
            print(f'{op} on CUDA: {status["impl"]} ({status["reason"]})')
    write_json(args.json, rows, cuda_device=torch.cuda.get_device_name() if 'cuda' in devices else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
