"""Convert a published network pickle into our own format (no code from the pickle is run).

    python -m renderer.convert IN.pkl OUT.pt [--key G_ema]

IN may be a path or an http(s) URL. OUT is written atomically (temporary file,
then rename). Exit status 0 on success, 2 on any failure (message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .errors import NetworkLoadError


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m renderer.convert', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='published network pickle (path or http(s) URL), or a file in our format')
    parser.add_argument('output', help='output file in our format (e.g. network.pt)')
    parser.add_argument('--key', default='G_ema', help="which network of the pickle to convert (default 'G_ema')")
    parser.add_argument('--quiet', action='store_true', help='no download progress, no summary')
    args = parser.parse_args(argv)

    from .loading import load_network, network_info, save_network  # Heavy imports after argument parsing.
    try:
        G = load_network(args.input, key=args.key, progress=not args.quiet)
        save_network(G, args.output)
    except NetworkLoadError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'error: cannot write {args.output}: {e}', file=sys.stderr)
        return 2
    if not args.quiet:
        info = network_info(G)
        print(f'{args.output}: {info.config} {info.img_resolution}x{info.img_resolution}, z_dim {info.z_dim}, '
              f'c_dim {info.c_dim}, {sum(p.numel() for p in G.parameters()):,} parameters')
    return 0


if __name__ == '__main__':
    sys.exit(main())
