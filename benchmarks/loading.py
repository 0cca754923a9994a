"""Network loading speed: a StyleGAN3-T 1024x1024 generator at published size (22.3M parameters).

    python benchmarks/loading.py [--repeats 5] [--json benchmarks/results/loading.json]

Writes, into a temporary folder, the network in the published pickle format
(with renderer.io.published_writer: once with G_ema only, once as a training
snapshot with G, a discriminator-sized stand-in D and G_ema) and in our own
format, then times `load_network` on each: the first load in this process and
the median of --repeats further loads. Rows are printed as a table and written as JSON.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time

import torch
from common import write_json

from renderer import load_network, save_network
from renderer.io import published_writer as pf
from renderer.networks import stylegan3

DISCRIMINATOR_PARAMS = 29_000_000  # About the size of a published 1024x1024 discriminator.


def discriminator_stand_in() -> pf.Persistent:
    """A 'Discriminator' object with about as many parameters as a published 1024x1024 one."""
    record = pf.discriminator_record()
    chunk = 512 * 512 * 3 * 3
    record.state['_parameters'] = collections.OrderedDict(
        (f'w{i}', torch.nn.Parameter(torch.randn(512, 512, 3, 3), requires_grad=False))
        for i in range(DISCRIMINATOR_PARAMS // chunk))
    return record


def time_loads(path: str, repeats: int) -> dict:
    start = time.perf_counter()
    load_network(path)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        G = load_network(path)
        times.append(time.perf_counter() - start)
        del G
    return dict(first_s=first, median_s=statistics.median(times), min_s=min(times), runs=len(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=5, help='timed loads per file after the first')
    parser.add_argument('--json', default='benchmarks/results/loading.json', help='output JSON path')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        G = stylegan3.Generator(512, 0, 512, 1024, 3).eval()
        files = {'pickle, G_ema only': os.path.join(tmp, 'g_ema.pkl'),
                 'pickle, training snapshot': os.path.join(tmp, 'snapshot.pkl'),
                 'native format': os.path.join(tmp, 'g_ema.pt')}
        pf.write_pickle(files['pickle, G_ema only'], {'G_ema': pf.generator_record(G)})
        snapshot = pf.snapshot(G)
        snapshot['D'] = discriminator_stand_in()
        pf.write_pickle(files['pickle, training snapshot'], snapshot)
        del snapshot
        save_network(G, files['native format'])
        del G

        rows = []
        print(f'{"file":<28} {"MB":>7} {"first s":>8} {"median s":>9} {"min s":>7} {"runs":>5}')
        for name, path in files.items():
            row = dict(file=name, config='stylegan3-t-1024', size_mb=os.path.getsize(path) / 2 ** 20,
                       **time_loads(path, args.repeats))
            rows.append(row)
            print(f'{name:<28} {row["size_mb"]:>7.0f} {row["first_s"]:>8.2f} {row["median_s"]:>9.2f} '
                  f'{row["min_s"]:>7.2f} {row["runs"]:>5}', flush=True)

    write_json(args.json, rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
