"""What every command shares: one set of options and one error/exit convention.

Options (each command adds the ones it uses, with the same names, defaults and help):
`--network` and `--network-b` (path, URL or 'demo'), `--device`, `--seed` / `--seeds`,
`--trunc`, `--trunc-cutoff`, `--class`, `--noise-mode`, `--batch`, `--precision` and
`--dist-timeout`.

Many processes: the metric, spectrum and video commands run unchanged under torchrun
(`torchrun --nproc-per-node N -m renderer.commands.<name> ...`, renderer.distributed):
`command_world` joins the ranks, `open_network` opens the network on each rank's device
(local rank 0 first, so a download or the demo build happens once per node) and checks that
every rank has the same weights; only rank 0 writes files, prints and shows progress.

Exit status: 0 on success; 2 with `error: ...` on stderr for a request that cannot be
honoured (a bad file, value or option: `RequestError`, or an `OSError` while reading or
writing); 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP. Under torchrun a rank whose peer
failed says `error: rank R of N failed while ...` and exits as that rank does (2 for bad
input, 1 otherwise); a rank that lost its peers (killed, or silent past --dist-timeout) says so
and exits 1. Output files are written through renderer.media.atomic, so an
interrupted command leaves nothing under the final name.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

from renderer import distributed
from renderer.devices import pick_device
from renderer.distributed import RankFailed, RankLost, World
from renderer.errors import RequestError
from renderer.generation import (
    DEMO_SOURCE,
    Latents,
    check_class,
    check_precision,
    check_seed,
    choose_precision,
    load_generator,
    parse_seeds,
)
from renderer.networks.precision import used_precision
from renderer.options import DEVICES, NOISE_MODES, PRECISION_HELP, PRECISIONS

if TYPE_CHECKING:
    import torch

EXIT_BAD_INPUT = 2
EXIT_RANK_LOST = 1
EXIT_INTERRUPTED = 130
DEFAULT_BATCH = 8


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors follow the commands' convention: one `error: ...` line, exit 2."""

    def error(self, message: str):  # noqa: D102 (argparse's hook)
        print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def command_parser(prog: str, description: Optional[str]) -> CommandParser:
    """The parser of `python -m renderer.commands.<name>`; the description is the module docstring."""
    return CommandParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_network_options(parser: argparse.ArgumentParser, network_b: bool = False) -> None:
    """--network (path, URL or 'demo'), optionally --network-b, and --device."""
    parser.add_argument('--network', default=DEMO_SOURCE,
                        help=f'network pickle / .pt path or URL ("{DEMO_SOURCE}": the built-in untrained network)')
    if network_b:
        parser.add_argument('--network-b', default=None,
                            help='a second network (path, URL or "demo"), rendered with the same latents beside A')
    parser.add_argument('--device', default='auto', choices=DEVICES,
                        help='where to run (auto: CUDA, else MPS, else CPU)')


def add_seed_option(parser: argparse.ArgumentParser, help_text: str = 'seed (default 0)') -> None:
    parser.add_argument('--seed', type=_seed, default=0, help=help_text)


def add_seeds_option(parser: argparse.ArgumentParser, default: Optional[str] = '0',
                     help_text: str = 'seeds, e.g. "0-3,7" (default 0)') -> None:
    parser.add_argument('--seeds', type=_seed_list, default=default, help=help_text)


def add_latent_options(parser: argparse.ArgumentParser, trunc: bool = True) -> None:
    """--trunc (unless the command sweeps psi itself), --trunc-cutoff and --class."""
    if trunc:
        parser.add_argument('--trunc', type=finite_float, default=1.0, help='truncation psi (default 1: none)')
    parser.add_argument('--trunc-cutoff', type=non_negative_int, default=None,
                        help='truncate only the first N ws (default: all)')
    parser.add_argument('--class', dest='class_idx', type=non_negative_int, default=None,
                        help='class index of a conditional network (default 0)')


def add_noise_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--noise-mode', choices=NOISE_MODES, default='const',
                        help='StyleGAN2 noise inputs: const (stored), random or none (default const)')


def add_batch_option(parser: argparse.ArgumentParser, default: int = DEFAULT_BATCH,
                     help_text: Optional[str] = None) -> None:
    parser.add_argument('--batch', type=positive_int, default=default,
                        help=help_text or f'images per synthesis call (default {default})')


def add_precision_option(parser: argparse.ArgumentParser, default: str = 'fp32') -> None:
    parser.add_argument('--precision', choices=PRECISIONS, default=default,
                        help=f'how synthesis computes (default {default}): ' +
                             '; '.join(f'{name}: {text}' for name, text in PRECISION_HELP.items()))


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """--dist-timeout: under torchrun, the longest wait of one rank for the others."""
    parser.add_argument('--dist-timeout', type=positive_float, default=distributed.DEFAULT_TIMEOUT_S,
                        help='under torchrun: seconds a rank waits for the others at a synchronisation point '
                             f'before giving up (default {distributed.DEFAULT_TIMEOUT_S:g})')


@contextlib.contextmanager
def command_world(args: argparse.Namespace) -> Iterator[World]:
    """The World of this run (renderer.distributed.start with --device and --dist-timeout), left at the end."""
    world = distributed.start(args.device, getattr(args, 'dist_timeout', distributed.DEFAULT_TIMEOUT_S))
    try:
        yield world
    finally:
        world.close()


def latents_of(args: argparse.Namespace) -> Latents:
    """The Latents of --trunc (1 where the command has none), --trunc-cutoff and --class."""
    return Latents(getattr(args, 'trunc', 1.0), args.trunc_cutoff, args.class_idx)


def open_network(source: str, device_name: str = 'auto', class_idx: Optional[int] = None,
                 world: Optional[World] = None) -> 'torch.nn.Module':
    """The network of --network / --network-b on --device (each rank's own device), checked against --class.

    With several ranks, local rank 0 of each node opens it first (a URL is downloaded, the demo built, once
    per node), then the others; every rank must end up with the same weights."""
    def open_here() -> 'torch.nn.Module':
        G = load_generator(source, pick_device(device_name) if world is None else world.device)
        check_class(G, class_idx)
        return G
    if world is None or not world.distributed:
        return open_here()
    what = f'opening {source or DEMO_SOURCE}'
    first = world.agree(what, lambda: open_here() if world.local_rank == 0 else None)
    G = world.agree(what, lambda: first if first is not None else open_here())
    world.check_same(f'the weights of {source or DEMO_SOURCE}', distributed.module_digest(G))
    return G


def command_precision(G: 'torch.nn.Module', requested: str, world: Optional[World] = None,
                      quiet: bool = False) -> str:
    """The precision G computes in for --precision `requested`: RequestError if this device cannot run it;
    'auto' is measured once (by rank 0, for every rank: renderer.generation.choose_precision) and reported on
    stderr unless quiet. fp16 on a network without float16 layers computes, and is reported as, fp32."""
    world = world or World(device=next(G.buffers()).device)
    world.agree('checking --precision', lambda: check_precision(requested, world.device, '--precision'))
    if requested == 'auto':
        choice = world.from_main('choosing --precision auto', lambda: choose_precision(G))
        if world.is_main and not quiet:
            print(choice.reason, file=sys.stderr)
        requested = choice.precision
    return used_precision(G, requested, world.device)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C, so that no partial output is kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _terminating_signals() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise Terminated (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [name for name in ('SIGTERM', 'SIGHUP') if hasattr(signal, name)]
    previous = {name: signal.signal(getattr(signal, name), _terminate) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def run_command(main: Callable[[Sequence[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run `main(argv)`: bad input -> `error: ...` + exit 2; Ctrl-C -> 130; SIGTERM / SIGHUP -> 128 + signal.

    Whatever ends the command, the files it was writing are removed (renderer.media.atomic)."""
    try:
        with _terminating_signals():
            return main(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error, already reported (2).
        return e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
    except RankFailed as e:   # Another rank failed; it reported its own error.
        print(f'error: {e}', file=sys.stderr)
        return e.exit_status
    except RankLost as e:
        print(f'error: {e}', file=sys.stderr)
        return EXIT_RANK_LOST
    except RequestError as e:
        print(f'error: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        where = f'{e.filename}: ' if e.filename else ''
        print(f'error: {where}{e.strerror or e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print('\ninterrupted; no partial output was kept', file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as e:
        print(f'\nstopped by signal {e.signum}; no partial output was kept', file=sys.stderr)
        return 128 + e.signum


# ----------------------------------------------------------------------------------------------------
# argparse types: argparse turns their ArgumentTypeError into a usage error (exit 2).

def _integer_at_least(minimum: int, description: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f'expected {description}, got {text!r}')
        return value
    return parse


positive_int = _integer_at_least(1, 'a positive integer')
non_negative_int = _integer_at_least(0, 'an integer >= 0')


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if value != value or value in (float('inf'), float('-inf')):
        raise argparse.ArgumentTypeError(f'expected a finite number, got {text!r}')
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except (ValueError, RequestError) as e:
        raise argparse.ArgumentTypeError(str(e) if isinstance(e, RequestError) else
                                         f'expected an integer seed, got {text!r}') from None


def _seed_list(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except RequestError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
