"""Op speed: CUDA kernel vs reference path on the real layer shapes of the generators.

    python benchmarks/ops.py [--configs stylegan3-t-1024,stylegan3-r-1024,stylegan2-1024]
                             [--ops filtered_lrelu,upfirdn2d,bias_act] [--backward] [--repeats 20]
                             [--json benchmarks/results/ops.json]

Every call the synthesis network makes at batch 1 (shapes, filters, padding,
float16 on the layers flagged for it), timed with CUDA events (median of
--repeats after warm-up) for impl='cuda' and impl='ref'. --backward also
times forward + backward. On a machine without CUDA only the reference
path is timed (on the 256x256 configurations by default) and the CUDA rows
are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch
from common import environment

from renderer.networks import stylegan2, stylegan3
from renderer.ops import bias_act, filtered_lrelu, implementation_status, upfirdn2d, upsample2d

SG3_R = dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
CONFIGS = {
    'stylegan3-t-1024': (stylegan3, dict(img_resolution=1024)),
    'stylegan3-r-1024': (stylegan3, dict(img_resolution=1024, **SG3_R)),
    'stylegan2-1024': (stylegan2, dict(img_resolution=1024)),
    'stylegan3-t-256': (stylegan3, dict(img_resolution=256, channel_base=16384)),
    'stylegan3-r-256': (stylegan3, dict(img_resolution=256, **SG3_R)),
    'stylegan2-256': (stylegan2, dict(img_resolution=256, channel_base=16384)),
}
CUDA_DEFAULT = 'stylegan3-t-1024,stylegan3-r-1024,stylegan2-1024'
CPU_DEFAULT = 'stylegan3-t-256,stylegan3-r-256'


@dataclass
class Call:
    """One op call of the synthesis network: op, layer name, input shape, dtype and arguments."""
    op: str
    layer: str
    shape: tuple
    dtype: torch.dtype
    kwargs: dict = field(default_factory=dict)


def network_calls(config: str, device: torch.device) -> list[Call]:
    """The resampling-op calls of one synthesis pass at batch 1 (as the network makes them)."""
    module, kwargs = CONFIGS[config]
    torch.manual_seed(0)
    net = module.SynthesisNetwork(w_dim=512, img_channels=3, **kwargs)
    fp16 = torch.float16 if device.type == 'cuda' else torch.float32
    calls = []
    if module is stylegan3:
        for name in net.layer_names:
            layer = getattr(net, name)
            size = int(layer.in_size[0]) + layer.conv_kernel - 1
            calls.append(Call('filtered_lrelu', name, (1, layer.out_channels, size, size),
                              fp16 if layer.use_fp16 else torch.float32,
                              dict(fu=layer.up_filter, fd=layer.down_filter, b=layer.bias, up=layer.up_factor,
                                   down=layer.down_factor, padding=layer.padding,
                                   gain=1 if layer.is_torgb else math.sqrt(2), slope=1 if layer.is_torgb else 0.2,
                                   clamp=layer.conv_clamp)))
        return calls
    for res in net.block_resolutions:
        block = getattr(net, f'b{res}')
        dtype = fp16 if block.use_fp16 else torch.float32
        layers = [block.conv1] if res == 4 else [block.conv0, block.conv1]
        for layer in layers:
            if layer.up == 2:  # the FIR after the stride-2 transposed convolution
                calls.append(Call('upfirdn2d', f'b{res}.conv0', (1, layer.out_channels, res + 1, res + 1), dtype,
                                  dict(f=layer.resample_filter, padding=[1, 1, 1, 1], gain=4)))
            calls.append(Call('bias_act', f'b{res}.{"conv0" if layer.up == 2 else "conv1"}',
                              (1, layer.out_channels, res, res), dtype,
                              dict(b=layer.bias, act='lrelu', clamp=layer.conv_clamp)))
        if res > 4:
            calls.append(Call('upsample2d', f'b{res}.skip', (1, 3, res // 2, res // 2), torch.float32,
                              dict(f=block.resample_filter)))
    return calls


OPS = {'filtered_lrelu': filtered_lrelu, 'upfirdn2d': upfirdn2d, 'upsample2d': upsample2d, 'bias_act': bias_act}


def _prepare(call: Call, device: torch.device):
    x = torch.randn(call.shape, device=device, dtype=call.dtype) * 3
    kwargs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in call.kwargs.items()}
    if 'b' in kwargs and kwargs['b'] is not None:
        kwargs['b'] = (torch.randn_like(kwargs['b']) * 0.1).to(call.dtype)
    return x, kwargs


def time_call(call: Call, impl: str, device: torch.device, repeats: int, backward: bool, budget: float) -> float:
    """Median milliseconds of one call (forward, or forward + backward)."""
    x, kwargs = _prepare(call, device)
    op = OPS[call.op]
    if backward:
        x.requires_grad_(True)

    def run():
        y = op(x, impl=impl, **kwargs)
        if backward:
            y.backward(torch.ones_like(y))

    with torch.set_grad_enabled(backward):
        if device.type == 'cuda':
            for _ in range(3):
                run()
            times = []
            start_all = time.perf_counter()
            while len(times) < repeats and (not times or time.perf_counter() - start_all < budget):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            return statistics.median(times)
        run()
        times = []
        start_all = time.perf_counter()
        while len(times) < repeats and (not times or time.perf_counter() - start_all < budget):
            t0 = time.perf_counter()
            run()
            times.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default=None, help=f'comma-separated, from {sorted(CONFIGS)} '
                        f'(default: {CUDA_DEFAULT} on CUDA, {CPU_DEFAULT} without)')
    parser.add_argument('--ops', default='filtered_lrelu,upfirdn2d,upsample2d,bias_act')
    parser.add_argument('--backward', action='store_true', help='also time forward + backward')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--budget', type=float, default=10, help='seconds of timed runs per row (at least one run)')
    parser.add_argument('--json', default='benchmarks/results/ops.json')
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device('cuda' if cuda else 'cpu')
    configs = [c for c in (args.configs or (CUDA_DEFAULT if cuda else CPU_DEFAULT)).split(',') if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f'unknown config(s) {unknown}; choose from {sorted(CONFIGS)}')
    ops = set(args.ops.split(','))
    impls = ['cuda', 'ref'] if cuda else ['ref']
    if not cuda:
        print(f'CUDA rows skipped: {implementation_status()["filtered_lrelu"]["reason"]}')
    passes = [False, True] if args.backward else [False]
    rows = []
    header = f'{"config":<17} {"layer":<13} {"op":<14} {"shape":<20} {"dtype":<8} {"pass":<8}'
    header += ''.join(f' {impl + " ms":>10}' for impl in impls) + (f' {"speedup":>8}' if cuda else '')
    print(header)
    totals: dict = {}
    for config in configs:
        for call in network_calls(config, device):
            if call.op not in ops:
                continue
            for backward in passes:
                times = {impl: time_call(call, impl, device, args.repeats, backward, args.budget) for impl in impls}
                row = dict(config=config, layer=call.layer, op=call.op, shape=list(call.shape),
                           dtype=str(call.dtype).replace('torch.', ''), backward=backward,
                           **{f'{impl}_ms': t for impl, t in times.items()})
                if cuda:
                    row['speedup'] = times['ref'] / times['cuda']
                rows.append(row)
                key = (config, call.op, backward)
                for impl, t in times.items():
                    totals.setdefault(key, {}).setdefault(impl, 0.0)
                    totals[key][impl] += t
                line = (f'{config:<17} {call.layer:<13} {call.op:<14} {str(list(call.shape)):<20} {row["dtype"]:<8} '
                        f'{"fwd+bwd" if backward else "fwd":<8}' + ''.join(f' {times[i]:>10.3f}' for i in impls))
                print(line + (f' {row["speedup"]:>7.1f}x' if cuda else ''), flush=True)
    print('\ntotals per config and op (sum over the layers):')
    for (config, op, backward), t in totals.items():
        line = f'{config:<17} {op:<14} {"fwd+bwd" if backward else "fwd":<8}' + ''.join(
            f' {impl} {t[impl]:.2f} ms' for impl in impls)
        print(line + (f'  speedup {t["ref"] / t["cuda"]:.1f}x' if cuda else ''))
    env = dict(environment(cuda_device=torch.cuda.get_device_name() if cuda else None),
               implementations=implementation_status(),
               cuda_rows_skipped=None if cuda else implementation_status()['filtered_lrelu']['reason'])
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(dict(environment=env, rows=rows,
                       totals=[dict(config=c, op=o, backward=b, **{f'{i}_ms': v for i, v in t.items()})
                               for (c, o, b), t in totals.items()]), f, indent=2)
    print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
