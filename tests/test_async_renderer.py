"""The renderer process: latest request wins, images through shared memory, crash recovery."""

from __future__ import annotations

import os
import pathlib
import signal
import time

import numpy as np
import pytest

from renderer.live.process import AsyncRenderer
from renderer.live.render_args import RenderArgs


def shm_blocks() -> set[str]:
    """Shared-memory blocks of Python's default names and of the renderer's image names."""
    shm = pathlib.Path('/dev/shm')
    return {p.name for p in shm.iterdir() if p.name.startswith(('psm_', 'afv'))} if shm.exists() else set()


def collect(renderer: AsyncRenderer, timeout: float = 120) -> list:
    """Every result delivered until the renderer is idle."""
    results = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = renderer.get_result()
        if result is not None:
            results.append(result)
        elif not renderer.is_busy:
            break
        time.sleep(0.01)
    return results


@pytest.fixture(scope='module')
def async_renderer():
    renderer = AsyncRenderer()
    yield renderer
    renderer.close()


def test_renders_in_another_process_through_shared_memory(async_renderer):
    before = shm_blocks()
    async_renderer.set_args(RenderArgs(seed=1))
    results = collect(async_renderer)
    assert async_renderer.pid != os.getpid()
    assert results[-1].error is None and results[-1].image.shape == (256, 256, 3)
    assert shm_blocks() <= before  # every block was freed


def test_stale_requests_are_dropped(async_renderer):
    for seed in range(10, 20):
        async_renderer.set_args(RenderArgs(seed=seed))
    results = collect(async_renderer)
    assert results[-1].args.seed == 19 and results[-1].error is None
    assert len(results) < 10
    assert [r.request_id for r in results] == sorted(r.request_id for r in results)


def test_same_args_are_not_rendered_again(async_renderer):
    async_renderer.set_args(RenderArgs(seed=19))
    assert not async_renderer.is_busy and async_renderer.get_result() is None


def test_matches_in_process_rendering(async_renderer):
    args = RenderArgs(seed=3, translate=(0.1, 0.0))
    async_renderer.set_args(args)
    remote = collect(async_renderer)[-1]
    with AsyncRenderer(sync=True) as local:
        local.set_args(args)
        np.testing.assert_array_equal(local.wait_until_idle().image, remote.image)


def test_error_results_do_not_kill_the_worker(async_renderer, tmp_path):
    async_renderer.set_args(RenderArgs(network=str(tmp_path / 'missing.pkl')))
    result = collect(async_renderer)[-1]
    assert result.image is None and 'no such file' in result.error
    async_renderer.set_args(RenderArgs(seed=4))
    assert collect(async_renderer)[-1].image is not None


def test_killed_worker_is_replaced_and_next_request_succeeds():
    with AsyncRenderer() as renderer:
        renderer.set_args(RenderArgs(seed=1))
        assert collect(renderer)[-1].image is not None
        old_pid = renderer.pid
        os.kill(old_pid, signal.SIGKILL)
        time.sleep(0.2)
        renderer.set_args(RenderArgs(seed=2))
        results = collect(renderer)
        assert any(r.error and 'killed by signal 9' in r.error for r in results)
        assert renderer.pid != old_pid and renderer.restarts == 1
        assert results[-1].error is None and results[-1].args.seed == 2 and results[-1].image is not None


def test_close_is_idempotent_and_final():
    renderer = AsyncRenderer()
    renderer.close()
    renderer.close()
    with pytest.raises(RuntimeError, match='closed'):
        renderer.set_args(RenderArgs())


def test_force_renders_equal_args_again(tmp_path):
    """Retry: a network file that failed to load and is then fixed loads on a forced request."""
    from net_helpers import make_generator

    from renderer import save_network
    path = tmp_path / 'net.pt'
    with AsyncRenderer(sync=True) as renderer:
        args = RenderArgs(network=str(path))
        renderer.set_args(args)
        assert 'no such file' in renderer.get_result().error
        save_network(make_generator('stylegan3-t', 32), path)
        renderer.set_args(args)
        assert renderer.get_result() is None  # equal arguments are not rendered again
        renderer.set_args(args, force=True)
        result = renderer.get_result()
        assert result.error is None and result.image.shape == (32, 32, 3)


def wait_for_progress(renderer: AsyncRenderer, stage: str, timeout: float = 120) -> list:
    """Results delivered until the running request reports progress in `stage`."""
    results = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = renderer.get_result()
        if result is not None:
            results.append(result)
        if renderer.progress is not None and renderer.progress.stage == stage:
            return results
        time.sleep(0.01)
    raise AssertionError(f'no progress in {stage!r} within {timeout} s')


def test_a_newer_request_interrupts_a_long_average(async_renderer):
    long = RenderArgs(seed=5, diagnostic='average', average_samples=64)
    async_renderer.set_args(long)
    wait_for_progress(async_renderer, 'averaged image A')
    async_renderer.set_args(RenderArgs(seed=6))
    results = collect(async_renderer)
    assert results[-1].args.seed == 6 and results[-1].error is None and not results[-1].partial
    assert not any(r.args == long and not r.partial for r in results)   # the average was never finished
    assert not async_renderer.is_busy and async_renderer.progress is None


def test_cancel_stops_the_running_request(async_renderer):
    async_renderer.set_args(RenderArgs(seed=8, diagnostic='average', average_samples=64))
    wait_for_progress(async_renderer, 'averaged image A')
    async_renderer.cancel()
    results = collect(async_renderer)
    assert results[-1].cancelled and results[-1].image is None and results[-1].error is None
    assert not async_renderer.is_busy
    async_renderer.set_args(RenderArgs(seed=9))              # and the worker renders on
    assert collect(async_renderer)[-1].image is not None


def test_long_renders_show_the_answer_forming(async_renderer):
    async_renderer.set_args(RenderArgs(seed=2, diagnostic='average', average_samples=3))
    seen = []
    deadline = time.monotonic() + 120
    results = []
    while async_renderer.is_busy and time.monotonic() < deadline:
        result = async_renderer.get_result()
        if result is not None:
            results.append(result)
        if async_renderer.progress is not None:
            seen.append(async_renderer.progress)
        time.sleep(0.005)
    results += collect(async_renderer)
    partial = [r for r in results if r.partial]
    assert partial and all(r.image is not None and r.image.shape == results[-1].image.shape for r in partial)
    assert not results[-1].partial and results[-1].error is None
    fractions = [p.fraction for p in seen if p.stage == 'averaged image A']
    assert fractions and fractions == sorted(fractions)
