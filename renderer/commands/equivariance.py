"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R of a StyleGAN3 network (renderer.diagnostics.equivariance).

    python -m renderer.commands.equivariance --network A.pkl --metrics eq_t,eq_t_frac,eq_r \\
        --num-samples 1000 --batch 4 --seed 0 --out eq.json

Prints a table and, with --out, writes the results as JSON (an infinite PSNR is
stored as null with "exact": true), with the precision the images were rendered in
("precision", float32 unless --precision says otherwise) and the number of processes
that computed them ("world_size"). The same --seed gives the same samples and
transforms on any device.

On several GPUs or nodes run it under torchrun; the samples are shared by the ranks and
the JSON is the same as one process writes (except world_size and seconds):

    torchrun --nproc-per-node 8 -m renderer.commands.equivariance --network A.pkl --num-samples 50000 --out eq.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional, Sequence

from renderer.commands.common import (
    add_batch_option,
    add_distributed_options,
    add_network_options,
    add_precision_option,
    add_seed_option,
    command_parser,
    command_precision,
    command_world,
    finite_float,
    open_network,
    positive_int,
    run_command,
)
from renderer.diagnostics.equivariance import DEFAULT_BATCH, DEFAULT_NUM_SAMPLES, METRICS, measure, parse_metrics
from renderer.errors import RequestError
from renderer.generation import device_of, require_input_transform
from renderer.media.atomic import atomic_path, check_writable
from renderer.signal import band_limited


def main(argv: Sequence[str]) -> int:
    parser = command_parser('python -m renderer.commands.equivariance', __doc__)
    add_network_options(parser)
    parser.add_argument('--metrics', default=','.join(METRICS), help=f'comma-separated, from {", ".join(METRICS)}')
    parser.add_argument('--num-samples', type=positive_int, default=DEFAULT_NUM_SAMPLES, help='samples per metric')
    add_batch_option(parser, DEFAULT_BATCH, 'samples per batch (one random transform per batch)')
    add_seed_option(parser, 'seed of all random draws (default 0)')
    parser.add_argument('--trunc', type=finite_float, default=1.0, help='truncation psi (default 1: none)')
    parser.add_argument('--translate-max', type=float, default=0.125, help='largest translation, image widths')
    parser.add_argument('--rotate-max', type=float, default=180.0, help='largest rotation, degrees')
    parser.add_argument('--filter-radius', type=positive_int, default=None,
                        help='radius in pixels of the band-limited filters of EQ-T_frac and EQ-R (each masks as '
                             'much border; default 8, less for images under 128 pixels)')
    parser.add_argument('--out', default=None, help='write the results as JSON to this file')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar on stderr')
    add_precision_option(parser)
    add_distributed_options(parser)
    args = parser.parse_args(argv)

    metrics = parse_metrics(args.metrics)
    if not 0 <= args.translate_max < 1:
        raise RequestError(f'--translate-max must be in [0, 1), got {args.translate_max}')
    if not 0 <= args.rotate_max <= 180:
        raise RequestError(f'--rotate-max must be in [0, 180], got {args.rotate_max}')
    if args.out is not None and os.path.isdir(args.out):
        raise RequestError(f'--out {args.out} is a folder; give a file name such as '
                           f'{os.path.join(args.out, "eq.json")}')
    with command_world(args) as world:
        if args.out is not None:
            world.agree('checking --out', lambda: check_writable([args.out]) if world.is_main else None)
        G = open_network(args.network, args.device, world=world)
        require_input_transform(G, f'{args.network}: the equivariance metrics')
        precision = command_precision(G, args.precision, world)
        options = dict(num_samples=args.num_samples, batch=args.batch, seed=args.seed, truncation_psi=args.trunc,
                       translate_max=args.translate_max, rotate_max_deg=args.rotate_max,
                       radius_px=band_limited.resolve_radius(args.filter_radius, G.img_resolution))
        common = dict(progress=not args.no_progress, precision=precision, world=world)
        if args.out is None or not world.is_main:
            results = measure(G, metrics, **common, **options)
        else:
            with atomic_path(args.out) as tmp:  # created now: an unwritable path fails before the long run
                results = measure(G, metrics, **common, **options)
                with open(tmp, 'w') as f:
                    json.dump(dict(network=args.network, device=str(device_of(G)), precision=precision,
                                   world_size=world.world_size, **options,
                                   metrics={name: r.to_json() for name, r in results.items()}),
                              f, indent=2, allow_nan=False)
    if not world.is_main:
        return 0
    print(f'{"metric":<10} {"PSNR dB":>9} {"samples":>8} {"seconds":>8}')
    for r in results.values():
        print(f'{r.name:<10} {r.psnr_db:>9.2f} {r.num_samples:>8} {r.seconds:>8.1f}')
    if args.out is not None:
        print(f'wrote {args.out}')
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-equivariance`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
