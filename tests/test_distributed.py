"""The commands under torchrun: 2 ranks on the CPU (gloo) give what one process gives, and a rank that fails
or falls silent stops the others with a clear error in bounded time (renderer.distributed)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from net_helpers import make_generator

from renderer import distributed
from renderer.commands import equivariance, spectrum, video
from renderer.errors import RequestError
from renderer.io.native_format import save_network

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 240            # Longest a launch may take on two busy cores (they take 10-20 s).


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """The single-process references run with one thread, as each rank does (torchrun sets OMP_NUM_THREADS=1):
    what is compared is the sharding, not how a float32 reduction splits over threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> dict[str, str]:
    """Small random networks saved in our format: a StyleGAN3-T and a StyleGAN2, 32 px."""
    root = tmp_path_factory.mktemp('nets')
    paths = {}
    for name, arch in (('t', 'stylegan3-t'), ('sg2', 'stylegan2')):
        paths[name] = str(root / f'{name}.pt')
        save_network(make_generator(arch, res=32, dim=32, seed=5), paths[name])
    return paths


def torchrun(module: str, argv: list[str], ranks: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc-per-node={ranks}',
               '-m', module, *map(str, argv)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_eq_t_under_torchrun_writes_the_json_of_one_process(tiny, tmp_path, capsys):
    argv = ['--network', tiny['t'], '--metrics', 'eq_t,eq_t_frac', '--num-samples', '7', '--batch', '2',
            '--filter-radius', '2', '--no-progress']
    assert equivariance.run([*argv, '--out', str(tmp_path / 'one.json')]) == 0
    torchrun('renderer.commands.equivariance', [*argv, '--out', tmp_path / 'two.json'])
    one, two = (json.loads((tmp_path / name).read_text()) for name in ('one.json', 'two.json'))
    assert (one.pop('world_size'), two.pop('world_size')) == (1, 2)
    assert one['precision'] == two['precision'] == 'fp32'
    for result in (*one['metrics'].values(), *two['metrics'].values()):
        assert result.pop('seconds') > 0
    assert one == two   # Every other number exactly: 4 batches, dealt 2 + 2, summed in batch order.
    assert sorted(os.listdir(tmp_path)) == ['one.json', 'two.json']   # Rank 1 wrote nothing.


def test_average_spectrum_under_torchrun_equals_one_process(tiny, tmp_path):
    real = tmp_path / 'real'
    real.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):   # 5 real images in batches of 8: rank 1 has none of them.
        iio.imwrite(real / f'{i}.png', rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    argv = ['--network', tiny['t'], '--network-b', tiny['sg2'], '--real-dir', real, '--num-images', '9',
            '--batch', '4', '--seed', '3']
    assert spectrum.run([*map(str, argv), '--out', str(tmp_path / 'one.png')]) == 0
    torchrun('renderer.commands.spectrum', [*argv, '--out', tmp_path / 'two.png'])
    one, two = np.load(tmp_path / 'one.npz'), np.load(tmp_path / 'two.npz')
    assert sorted(one.files) == sorted(two.files)
    for name in ('a_power', 'b_power', 'real_power'):
        assert one[name].shape == (32, 32)
        np.testing.assert_allclose(two[name], one[name], rtol=1e-12, atol=0)   # Float64 rounding only.
    assert not np.array_equal(one['a_power'], one['b_power'])


def test_batch_video_under_torchrun_has_the_frames_of_one_process(tiny, tmp_path):
    """A | B: StyleGAN2 with random noise (seeded per synthesis call) beside a StyleGAN3-T; 9 frames in 5 calls."""
    argv = ['interp', '--network', tiny['sg2'], '--network-b', tiny['t'], '--seeds', '0-2', '--w-frames', '3',
            '--batch', '2', '--noise-mode', 'random']
    assert video.run([*argv, '--out', str(tmp_path / 'one.mp4')]) == 0
    torchrun('renderer.commands.video', [*argv, '--out', tmp_path / 'two.mp4'])
    one, two = (iio.imread(tmp_path / name, index=None) for name in ('one.mp4', 'two.mp4'))
    assert one.shape == two.shape and one.shape[0] == 9
    assert np.array_equal(one, two)
    assert one[0].std() > 0 and not np.array_equal(one[0], one[1])
    assert sorted(os.listdir(tmp_path)) == ['one.mp4', 'two.mp4']


# ----------------------------------------------------------------------------------------------------
# Failures: two ranks started with torch.multiprocessing and the environment torchrun would give them.

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, role: list[str], log: str) -> None:
    """One rank: runs the video command with argv `role`, or ['silent'] joins the world and says nothing."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port), OMP_NUM_THREADS='1')
    with open(log, 'w') as stderr:
        sys.stderr = stderr
        if role == ['silent']:
            world = distributed.start('cpu', timeout_s=60)
            time.sleep(30)   # Never reaches a collective; killed by the test once rank 0 has given up.
            world.close()
            os._exit(0)
        code = video.run(role)
        stderr.flush()
        os._exit(code)


def launch(roles: list[list[str]], tmp_path: pathlib.Path, wait_s: float = 120) -> list[tuple[int, str, float]]:
    """(exit status, stderr, seconds) of each rank; a rank still running after rank 0 ended (+ 5 s) is killed."""
    context = torch.multiprocessing.get_context('spawn')
    port = _free_port()
    logs = [str(tmp_path / f'rank{rank}.log') for rank in range(len(roles))]
    processes = [context.Process(target=_rank_main, args=(rank, port, role, log), daemon=True)
                 for rank, (role, log) in enumerate(zip(roles, logs))]
    start = time.monotonic()
    for p in processes:
        p.start()
    ended = []
    for rank, p in enumerate(processes):
        p.join(wait_s if rank == 0 else 5)
        ended.append(time.monotonic() - start)
        if p.is_alive():
            p.kill()
            p.join(10)
    return [(p.exitcode, pathlib.Path(log).read_text(), t) for p, log, t in zip(processes, logs, ended)]


def test_a_rank_that_fails_stops_the_other_with_its_error(tiny, tmp_path):
    common = ['translate', '--frames', '3', '--device', 'cpu', '--out', str(tmp_path / 'v.mp4')]
    missing = str(tmp_path / 'missing.pt')   # On rank 1's "node" only.
    (rank0, err0, t0), (rank1, err1, _) = launch([[*common, '--network', tiny['t']],
                                                  [*common, '--network', missing]], tmp_path)
    assert rank1 == 2 and f'error: {missing}' in err1
    assert rank0 == 2, err0
    assert 'error: rank 1 of 2 failed while opening' in err0 and missing in err0
    assert t0 < 120 and not (tmp_path / 'v.mp4').exists()


def test_a_silent_rank_makes_the_other_give_up_after_the_timeout(tiny, tmp_path):
    rank0_argv = ['translate', '--frames', '3', '--device', 'cpu', '--network', tiny['t'], '--dist-timeout', '5',
                  '--out', str(tmp_path / 'v.mp4')]
    (rank0, err0, t0), _ = launch([rank0_argv, ['silent']], tmp_path)
    assert rank0 == 1, err0
    assert 'error: rank 0 of 2 lost the other ranks while' in err0 and 'silent for 5 s' in err0
    assert t0 < 60
    assert [p for p in os.listdir(tmp_path) if p.endswith('.mp4')] == []


def test_a_world_of_one_needs_no_process_group(monkeypatch):
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    world = distributed.start('cpu')
    assert (world.rank, world.world_size, world.is_main, world.distributed) == (0, 1, True, False)
    assert world.gather('x', lambda: 3) == [3] and world.agree('x', lambda: 4) == 4
    assert [i for i in range(7) if world.owns(i)] == list(range(7))
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize('env, message', [
    ({'WORLD_SIZE': 'two'}, "WORLD_SIZE must be an integer, got 'two'"),
    ({'WORLD_SIZE': '2'}, 'RANK is not set'),
    ({'WORLD_SIZE': '2', 'RANK': '2'}, 'RANK must be in [0, 2)'),
    ({'WORLD_SIZE': '2', 'RANK': '0'}, 'MASTER_ADDR is not set'),
])
def test_a_bad_environment_is_named(monkeypatch, env, message):
    for name in distributed.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RequestError, match=message.replace('[', r'\[').replace(')', r'\)')):
        distributed.start('cpu')


def test_ranks_deal_items_round_robin():
    worlds = [distributed.World(rank=r, world_size=3) for r in range(3)]
    owned = [[i for i in range(8) if w.owns(i)] for w in worlds]
    assert owned == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert [w.num_owned(8) for w in worlds] == [3, 3, 2]
