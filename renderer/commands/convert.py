"""Convert a published network pickle into our own format (no code from the pickle is run).

    python -m renderer.commands.convert IN.pkl OUT.pt [--key G_ema]

IN may be a path or an http(s) URL. OUT is written atomically (temporary file,
then rename). Exit status 0 on success, 2 on any failure (message on stderr).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from renderer.commands.common import command_parser, run_command
from renderer.errors import RequestError
from renderer.media.atomic import check_writable


def main(argv: Sequence[str]) -> int:
    parser = command_parser('python -m renderer.commands.convert', __doc__)
    parser.add_argument('input', help='published network pickle (path or http(s) URL), or a file in our format')
    parser.add_argument('output', help='output file in our format (e.g. network.pt)')
    parser.add_argument('--key', default='G_ema', help="which network of the pickle to convert (default 'G_ema')")
    parser.add_argument('--quiet', action='store_true', help='no download progress, no summary')
    args = parser.parse_args(argv)

    check_writable([args.output])   # Before a download or a long read.
    from renderer.io.loading import load_network, network_info, save_network  # Heavy imports after parsing.
    G = load_network(args.input, key=args.key, progress=not args.quiet)
    try:
        save_network(G, args.output)
    except OSError as e:
        raise RequestError(f'cannot write {args.output}: {e.strerror or e}') from None
    if not args.quiet:
        info = network_info(G)
        print(f'{args.output}: {info.config} {info.img_resolution}x{info.img_resolution}, z_dim {info.z_dim}, '
              f'c_dim {info.c_dim}, {sum(p.numel() for p in G.parameters()):,} parameters')
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The command with its exit status (console script `afv-convert`)."""
    return run_command(main, argv)


if __name__ == '__main__':
    sys.exit(run())
