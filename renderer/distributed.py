"""One command on many processes: the torch.distributed world of a `torchrun` launch.

    torchrun --nproc-per-node 8 -m renderer.commands.equivariance --network A.pkl --num-samples 50000 --out eq.json
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m renderer.commands...

`start(device_name)` reads what torchrun (or any launcher) puts in the environment: WORLD_SIZE,
RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Without WORLD_SIZE, or with WORLD_SIZE=1, there is
one rank and torch.distributed is never touched: a plain run is a world of one. With more, each
rank joins the process group (NCCL on CUDA, one device per local rank; gloo on CPU) with a
timeout that bounds every collective (`timeout_s`).

Sharding: a command's work is a sequence of items (batches) numbered 0, 1, ...; rank r computes
the items i with i % world_size == r (`World.owns`). Every rank still draws the random numbers of
every item, in order, so no draw depends on the number of ranks, and results are combined in
item order, so a run gives the same numbers whatever the number of ranks.

Failures: `agree(what, compute)` and `gather(what, compute)` run one step on every rank and then
exchange whether it failed, so an error on one rank (a file missing on one node, a bad device)
stops every rank at the end of that step: the failing rank raises its own exception, the others
`RankFailed` naming it. A rank that is gone (killed, crashed) or silent past the timeout makes
the others raise `RankLost`. `compute` must not itself use collectives.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
from typing import Any, Callable, Optional, TypeVar

import torch

from renderer.errors import RequestError

T = TypeVar('T')
DEFAULT_TIMEOUT_S = 1800.0     # Longest wait of one rank for the others at a collective (gloo's own default).
ENVIRONMENT = ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


class RankFailed(Exception):
    """Another rank failed in a step: `rank` and its `message`; `exit_status` is what that rank exits with."""

    def __init__(self, message: str, rank: int, exit_status: int):
        super().__init__(message)
        self.rank = rank
        self.exit_status = exit_status


class RankLost(Exception):
    """A collective failed: another rank is gone or stayed silent past the timeout."""


def describe_failure(error: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) of an exception, as renderer.commands.common reports it."""
    if isinstance(error, RequestError):
        return 2, str(error)
    if isinstance(error, OSError):
        where = f'{error.filename}: ' if error.filename else ''
        return 2, f'{where}{error.strerror or error}'
    if isinstance(error, RankFailed):
        return error.exit_status, str(error)
    return 1, f'{type(error).__name__}: {error}'


@dataclasses.dataclass
class World:
    """The ranks of one run and this process's place in it (a single process: rank 0 of 1)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')   # This rank's device.
    backend: Optional[str] = None                # 'nccl' or 'gloo' when distributed, else None.
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files, prints and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def owns(self, index: int) -> bool:
        """Whether this rank computes item `index` (items are dealt round-robin)."""
        return index % self.world_size == self.rank

    def num_owned(self, count: int) -> int:
        """How many of items 0 .. count - 1 this rank computes."""
        return len(range(self.rank, count, self.world_size))

    def gather(self, what: str, compute: Callable[[], T]) -> list[T]:
        """compute() on every rank; every rank gets all the values in rank order.

        If compute raises on any rank, every rank raises (see the module docstring); `what` names the step
        in the messages ('opening --network', 'measuring eq_t')."""
        if not self.distributed:
            return [compute()]
        error: Optional[Exception] = None
        value = None
        try:
            value = compute()
        except Exception as e:   # Every failure must reach the other ranks, or they would wait for this one.
            error = e
        entries = self._all_gather((None, value) if error is None else (describe_failure(error), None), what)
        if error is not None:
            raise error
        failed = [(rank, status) for rank, (status, _) in enumerate(entries) if status is not None]
        if failed:
            rank, (exit_status, message) = failed[0]
            others = f' (and {len(failed) - 1} more ranks)' if len(failed) > 1 else ''
            raise RankFailed(f'rank {rank} of {self.world_size}{others} failed while {what}: {message}', rank,
                             exit_status)
        return [v for _, v in entries]

    def agree(self, what: str, compute: Callable[[], T]) -> T:
        """compute() on every rank, returning this rank's value once every rank has succeeded (see gather)."""
        if not self.distributed:
            return compute()
        result: list[T] = []
        self.gather(what, lambda: result.append(compute()))
        return result[0]

    def from_main(self, what: str, compute: Callable[[], T]) -> T:
        """Rank 0's compute() on every rank (the others compute nothing): one decision for all ranks."""
        return self.gather(what, lambda: compute() if self.is_main else None)[0]

    def check_same(self, what: str, value: Any) -> None:
        """RequestError on every rank unless every rank has the same `value` (e.g. a digest of the network)."""
        values = self.gather(f'comparing {what}', lambda: value)
        differ = [rank for rank, v in enumerate(values) if v != values[0]]
        if differ:
            raise RequestError(f'{what} differs between the ranks: rank {differ[0]} has {values[differ[0]]!r}, rank 0 '
                               f'{values[0]!r}; every rank must read the same files')

    def _all_gather(self, value: Any, what: str) -> list:
        import torch.distributed as dist
        entries: list = [None] * self.world_size
        try:
            dist.all_gather_object(entries, value)
        except Exception as e:   # Gloo and NCCL raise RuntimeError subclasses for lost peers and timeouts.
            raise RankLost(f'rank {self.rank} of {self.world_size} lost the other ranks while {what} (one of '
                           f'them stopped, failed or stayed silent for {self.timeout_s:g} s; its own output says '
                           f'why): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}') from None
        return entries

    def close(self) -> None:
        """Leave the process group (nothing for a single process)."""
        if self.distributed:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def _environment_int(name: str, default: Optional[int] = None) -> int:
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise RequestError(f'{name} is not set; launch with torchrun, which sets {", ".join(ENVIRONMENT)}')
        return default
    try:
        return int(text)
    except ValueError:
        raise RequestError(f'environment variable {name} must be an integer, got {text!r}') from None


def rank_device(device_name: str, local_rank: int) -> torch.device:
    """The device of the rank with `local_rank` on its node: CUDA device local_rank for 'cuda' (and for
    'auto' where CUDA exists), else the CPU ('cpu', 'auto' without CUDA) or MPS."""
    from renderer.devices import pick_device
    device = pick_device(device_name)
    if device.type != 'cuda':
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise RequestError(f'LOCAL_RANK {local_rank} has no CUDA device: this node has {count}; start at most '
                           f'{count} processes per node (torchrun --nproc-per-node {count})')
    return torch.device('cuda', local_rank)


def start(device_name: str = 'auto', timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """This process's World: joins the process group when the environment holds a world of several ranks."""
    if not timeout_s > 0:
        raise RequestError(f'the distributed timeout must be a positive number of seconds, got {timeout_s!r}')
    world_size = _environment_int('WORLD_SIZE', 1)
    if world_size < 1:
        raise RequestError(f'WORLD_SIZE must be >= 1, got {world_size}')
    if world_size == 1:
        from renderer.devices import pick_device
        return World(device=pick_device(device_name), timeout_s=timeout_s)
    rank = _environment_int('RANK')
    local_rank = _environment_int('LOCAL_RANK', 0)
    if not 0 <= rank < world_size:
        raise RequestError(f'RANK must be in [0, {world_size}) for WORLD_SIZE {world_size}, got {rank}')
    for name in ('MASTER_ADDR', 'MASTER_PORT'):
        if name not in os.environ:
            raise RequestError(f'{name} is not set; launch with torchrun, which sets {", ".join(ENVIRONMENT)}')
    device = rank_device(device_name, local_rank)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    import torch.distributed as dist
    if device.type == 'cuda':
        torch.cuda.set_device(device)   # NCCL's object collectives use the current device.
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), rank=rank,
                                world_size=world_size)
    except Exception as e:   # A rendezvous that never completes, a port in use, a bad address.
        raise RankLost(f'rank {rank} of {world_size} could not join the others ({backend}, '
                       f'{os.environ["MASTER_ADDR"]}:{os.environ["MASTER_PORT"]}): {type(e).__name__}: '
                       f'{str(e).splitlines()[0] if str(e) else ""}') from None
    return World(rank, world_size, local_rank, device, backend, timeout_s)


def module_digest(module: torch.nn.Module) -> str:
    """16 hex digits over the names, dtypes, shapes and values of a module's parameters and buffers."""
    h = hashlib.sha256()
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        t = tensor.detach().cpu().contiguous()
        h.update(f'{name} {t.dtype} {list(t.shape)}'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
