"""What every command shares: one set of options and one error/exit convention.

Options (each command adds the ones it uses, with the same names, defaults and help):
`--network` and `--network-b` (path, URL or 'demo'), `--device`, `--seed` / `--seeds`,
`--trunc`, `--trunc-cutoff`, `--class`, `--noise-mode`, `--batch`.

Exit status: 0 on success; 2 with `error: ...` on stderr for a request that cannot be
honoured (a bad file, value or option: `RequestError`, or an `OSError` while reading or
writing); 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP. Output files are written through renderer.media.atomic, so an
interrupted command leaves nothing under the final name.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

from renderer.devices import pick_device
from renderer.errors import RequestError
from renderer.generation import DEMO_SOURCE, Latents, check_class, check_seed, load_generator, parse_seeds
from renderer.options import DEVICES, NOISE_MODES

if TYPE_CHECKING:
    import torch

EXIT_BAD_INPUT = 2
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


def latents_of(args: argparse.Namespace) -> Latents:
    """The Latents of --trunc (1 where the command has none), --trunc-cutoff and --class."""
    return Latents(getattr(args, 'trunc', 1.0), args.trunc_cutoff, args.class_idx)


def open_network(source: str, device_name: str = 'auto', class_idx: Optional[int] = None) -> 'torch.nn.Module':
    """The network of --network / --network-b on --device, checked against --class."""
    G = load_generator(source, pick_device(device_name))
    check_class(G, class_idx)
    return G


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
