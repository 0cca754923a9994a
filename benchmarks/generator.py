"""Generator speed and fidelity per precision: ms per image for mapping + synthesis, and PSNR against float32.

    python benchmarks/generator.py [--configs stylegan3-t-256,...] [--batches 1,8] [--devices cpu,cuda]
                                   [--precisions fp32,bf16,fp16] [--no-ops] [--json benchmarks/results/generator.json]

Each row: warm-up run(s), then repeated timed runs until --repeats runs or --budget seconds per
precision are used, the precisions taking turns run by run (a shared machine's load then hits them
alike); the median and the fastest run are reported, "x fp32" and "min x" being the row's time over
the float32 row's (median, fastest), and "PSNR" compares
its images with the float32 images of the same latents (images in [-1, 1], peak-to-peak 2). CUDA
rows are timed with synchronisation around each run and report peak memory. A precision the device
cannot run (fp16 on a CPU) is skipped. StyleGAN3 networks get their magnitude EMAs calibrated first
(each layer's mean square input, as training tracks it), so that random weights give well-scaled
images. With ops (the default) each StyleGAN3 config also gets a breakdown at batch 1 per precision:
the modulated convolutions, timed alone on every layer's real input, and the rest of each layer
(bias, the polyphase filters, leaky ReLU, clamp: filtered_lrelu), summed over the layers.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Callable

import torch
from common import write_json

from renderer.generation import image_psnr_db
from renderer.networks import stylegan2, stylegan3
from renderer.networks.capture import capture_points
from renderer.networks.precision import (
    cpu_bf16_instructions,
    cpu_supports_bf16,
    layer_dtype,
    network_precision,
    unsupported_reason,
)
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


@torch.no_grad()
def build(name: str, device: torch.device) -> torch.nn.Module:
    """The config with random weights (seed 0); StyleGAN3's magnitude EMAs set from one calibration latent."""
    cls, kwargs = CONFIGS[name]
    torch.manual_seed(0)
    G = cls(z_dim=512, c_dim=0, w_dim=512, img_channels=3, **kwargs).eval().requires_grad_(False).to(device)
    if G.architecture == 'stylegan3':
        ws = G.mapping(torch.randn([1, G.z_dim], device=device), None)
        x = G.synthesis.input(ws[:, 0])
        for layer, w in zip(list(capture_points(G).values())[1:], ws[:, 1:].unbind(dim=1)):
            layer.magnitude_ema.copy_(x.square().mean())
            x = layer(x, w, force_fp32=True)
    return G


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

    def seconds(run: Callable[[], object]) -> float:
        sync()
        start = time.perf_counter()
        run()
        sync()
        return time.perf_counter() - start
    return seconds


@torch.no_grad()
def time_rows(G: torch.nn.Module, batch: int, device: torch.device, precisions: list[str], repeats: int,
              budget: float) -> dict[str, tuple[dict, torch.Tensor]]:
    """{precision: (timing row, images)} for `batch` latents from seed `batch`. The precisions take turns run by
    run (after their warm-ups), so a load that comes and goes on a shared machine hits them alike."""
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(batch)).to(device)
    seconds = _timer(device)
    images: dict[str, torch.Tensor] = {}

    def run(precision: str) -> Callable[[], None]:
        return lambda: images.__setitem__(precision, G(z, None, precision=precision).float())

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    for precision in precisions:
        warm = seconds(run(precision))
        if device.type == 'cuda' or warm < budget / 4:
            seconds(run(precision))  # second warm-up: kernel selection, allocator, oneDNN primitive caches
    times: dict[str, list[float]] = {p: [] for p in precisions}
    started = time.perf_counter()
    while len(times[precisions[0]]) < repeats and (not times[precisions[0]] or
                                                   time.perf_counter() - started < budget * len(precisions)):
        for precision in precisions:
            times[precision].append(seconds(run(precision)))
    rows = {}
    for precision, measured in times.items():
        row = dict(kind='generator', batch=batch, runs=len(measured),
                   ms_per_image=1e3 * statistics.median(measured) / batch, min_ms_per_image=1e3 * min(measured) / batch,
                   ms_per_batch=1e3 * statistics.median(measured))
        if device.type == 'cuda':
            row['peak_mem_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
        rows[precision] = (row, images[precision])
    return rows


@torch.no_grad()
def op_breakdown(G: torch.nn.Module, device: torch.device, precisions: list[str], repeats: int = 3) -> list[dict]:
    """StyleGAN3 at batch 1, per precision: ms of the modulated convolutions and of the rest of the layers
    (filtered_lrelu), each the fastest of `repeats` runs per layer on the layer's real input (the precisions
    taking turns), summed over the layers."""
    layers = list(capture_points(G).values())[1:]
    inputs = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args: inputs.setdefault(m, args[:2])) for layer in layers]
    try:
        G(torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(1)).to(device), None, force_fp32=True)
    finally:
        for hook in hooks:
            hook.remove()
    conv_ms = dict.fromkeys(precisions, 0.0)
    layer_ms = dict.fromkeys(precisions, 0.0)
    for layer in layers:
        best = {p: [math.inf, math.inf] for p in precisions}
        for _ in range(repeats):
            for p in precisions:
                best[p] = [min(a, b) for a, b in zip(best[p], _layer_ms(layer, *inputs[layer], p, device))]
        for p in precisions:
            conv_ms[p] += best[p][0]
            layer_ms[p] += best[p][1]
    return [dict(kind='ops', precision=p, conv_ms=conv_ms[p], rest_ms=layer_ms[p] - conv_ms[p], layers_ms=layer_ms[p])
            for p in precisions]


def _layer_ms(layer: torch.nn.Module, x: torch.Tensor, w: torch.Tensor, precision: str,
              device: torch.device) -> tuple[float, float]:
    """(ms of one run of the layer's modulated convolution alone, ms of one run of the whole layer)."""
    seconds = _timer(device)
    dtype = layer_dtype(network_precision(precision), layer.use_fp16, device, torch.float32, layer.is_torgb)
    styles = layer.affine(w)
    if layer.is_torgb:
        styles = styles * (1 / math.sqrt(layer.in_channels * layer.conv_kernel ** 2))
    x_in = x.to(dtype)

    def conv() -> torch.Tensor:
        return stylegan3.modulated_conv2d(x_in, layer.weight, styles, padding=layer.conv_kernel - 1,
                                          demodulate=not layer.is_torgb, input_gain=layer.magnitude_ema.rsqrt())
    return 1e3 * seconds(conv), 1e3 * seconds(lambda: layer(x, w, precision=precision))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default=DEFAULT_CONFIGS, help=f'comma-separated, from {sorted(CONFIGS)}')
    parser.add_argument('--batches', default='1,8')
    parser.add_argument('--devices', default='cpu,cuda', help='devices to time; cuda is skipped when absent')
    parser.add_argument('--precisions', default='fp32,bf16,fp16',
                        help='precisions to time where the device runs them (fp32 is always timed first)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per row (at most)')
    parser.add_argument('--budget', type=float, default=60, help='seconds of timed runs per row (at least one run)')
    parser.add_argument('--no-ops', action='store_true', help='skip the per-op breakdown of StyleGAN3 configs')
    parser.add_argument('--json', default='benchmarks/results/generator.json', help='output JSON path')
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(',') if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f'unknown config(s) {unknown}; choose from {sorted(CONFIGS)}')
    asked = ['fp32'] + [p for p in dict.fromkeys(args.precisions.split(',')) if p and p != 'fp32']
    if any(p not in ('fp32', 'bf16', 'fp16') for p in asked):
        parser.error(f'--precisions takes fp32, bf16 and fp16, got {args.precisions!r}')
    devices = [d for d in args.devices.split(',') if d == 'cpu' or (d == 'cuda' and torch.cuda.is_available())]
    machine = dict(kind='machine', cpu_capability=torch.backends.cpu.get_cpu_capability(),
                   mkldnn_bf16=cpu_supports_bf16(), cpu_bf16_instructions=list(cpu_bf16_instructions()),
                   threads=torch.get_num_threads())
    print(f'CPU: {machine["cpu_capability"]}, oneDNN bf16 {"yes" if machine["mkldnn_bf16"] else "no"}, native bf16 '
          f'instructions: {", ".join(machine["cpu_bf16_instructions"]) or "none (oneDNN emulates bf16)"}, '
          f'{machine["threads"]} threads')
    rows, op_rows = [machine], []
    print(f'{"config":<18} {"device":<6} {"prec":<5} {"batch":>5} {"ms/img":>10} {"x fp32":>7} {"min ms":>10} '
          f'{"min x":>6} {"PSNR dB":>8} {"runs":>5} {"peak MB":>8}')
    for device_name in devices:
        device = torch.device(device_name)
        precisions = [p for p in asked if unsupported_reason(p, device) is None]
        for name in configs:
            G = build(name, device)
            for batch in (int(b) for b in args.batches.split(',')):
                timed = time_rows(G, batch, device, precisions, args.repeats, args.budget)
                reference, fp32_ms = timed['fp32'][1], timed['fp32'][0]['ms_per_image']
                for precision, (timing, images) in timed.items():
                    row = dict(config=name, device=device_name, precision=precision, **timing,
                               ratio_to_fp32=timing['ms_per_image'] / fp32_ms,
                               min_ratio_to_fp32=timing['min_ms_per_image'] / timed['fp32'][0]['min_ms_per_image'],
                               psnr_db=image_psnr_db(images, reference))
                    if device.type == 'cuda':  # what each op ran: the kernel, or the reference fallback
                        row['ops'] = {op: s['impl'] for op, s in implementation_status().items()}
                    rows.append(row)
                    peak = f'{row["peak_mem_mb"]:8.0f}' if 'peak_mem_mb' in row else f'{"-":>8}'
                    psnr = 'exact' if math.isinf(row['psnr_db']) else f'{row["psnr_db"]:.1f}'
                    print(f'{name:<18} {device_name:<6} {precision:<5} {batch:>5} {row["ms_per_image"]:>10.1f} '
                          f'{row["ratio_to_fp32"]:>7.2f} {row["min_ms_per_image"]:>10.1f} '
                          f'{row["min_ratio_to_fp32"]:>6.2f} {psnr:>8} {row["runs"]:>5} {peak}', flush=True)
            if not args.no_ops and G.architecture == 'stylegan3':
                op_rows += [dict(config=name, device=device_name, **r) for r in op_breakdown(G, device, precisions)]
            del G
    if op_rows:
        print(f'\n{"config":<18} {"device":<6} {"prec":<5} {"modconv ms":>11} {"filters ms":>11} {"layers ms":>10}')
        for r in op_rows:
            print(f'{r["config"]:<18} {r["device"]:<6} {r["precision"]:<5} {r["conv_ms"]:>11.1f} {r["rest_ms"]:>11.1f} '
                  f'{r["layers_ms"]:>10.1f}')
    if 'cuda' in devices:  # which implementation each op ran on CUDA tensors, and why
        for op, status in implementation_status().items():
            print(f'{op} on CUDA: {status["impl"]} ({status["reason"]})')
    write_json(args.json, rows + op_rows, cuda_device=torch.cuda.get_device_name() if 'cuda' in devices else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
