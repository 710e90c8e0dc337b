"""The shared CPU pool runs model work off the event loop, sized by FLIREO_CPU_WORKERS,
urgent work first."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future

import pytest

from flireo.media.cpu import (
    CpuPool,
    Priority,
    cpu_executor,
    cpu_workers,
    run_cpu,
    threads_per_job,
)


async def test_work_runs_on_a_pool_thread_not_the_event_loop() -> None:
    loop_thread = threading.current_thread().name
    worker_thread = await run_cpu(lambda: threading.current_thread().name)
    assert worker_thread != loop_thread
    assert worker_thread.startswith("flireo-cpu")


async def test_arguments_and_results_pass_through() -> None:
    assert await run_cpu(pow, 2, 10) == 1024


def test_one_pool_is_shared_by_the_whole_process() -> None:
    assert cpu_executor() is cpu_executor()


def test_pool_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIREO_CPU_WORKERS", "3")
    assert cpu_workers() == 3
    monkeypatch.delenv("FLIREO_CPU_WORKERS")
    assert cpu_workers() >= 1


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_pool_size_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FLIREO_CPU_WORKERS", value)
    with pytest.raises(ValueError, match="FLIREO_CPU_WORKERS"):
        cpu_workers()


def _blocked_pool(workers: int) -> tuple[CpuPool, threading.Event, list[Future[None]]]:
    """A pool whose every worker is busy until the returned event is set."""
    pool = CpuPool(workers, name="test-cpu")
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(30)

    holders = [pool.submit_with_priority(Priority.URGENT, hold) for _ in range(workers)]
    for _ in range(workers):
        assert started.acquire(timeout=30)
    return pool, release, holders


def test_queued_work_runs_by_priority_then_first_come_first_served() -> None:
    pool, release, _ = _blocked_pool(1)
    order: list[str] = []
    jobs = [
        ("background-1", Priority.BACKGROUND),
        ("normal-1", Priority.NORMAL),
        ("urgent-1", Priority.URGENT),
        ("background-2", Priority.BACKGROUND),
        ("urgent-2", Priority.URGENT),
        ("normal-2", Priority.NORMAL),
    ]
    futures = [pool.submit_with_priority(p, order.append, name) for name, p in jobs]
    assert pool.queued() == len(jobs)
    release.set()
    for future in futures:
        future.result(timeout=30)
    assert order == ["urgent-1", "urgent-2", "normal-1", "normal-2", "background-1", "background-2"]
    pool.shutdown()


def test_a_cancelled_queued_job_never_runs() -> None:
    pool, release, _ = _blocked_pool(1)
    ran: list[str] = []
    dropped = pool.submit_with_priority(Priority.URGENT, ran.append, "dropped")
    kept = pool.submit_with_priority(Priority.NORMAL, ran.append, "kept")
    assert dropped.cancel()
    release.set()
    kept.result(timeout=30)
    assert ran == ["kept"]
    pool.shutdown()


def test_no_more_jobs_run_at_once_than_the_pool_has_workers() -> None:
    pool = CpuPool(2, name="test-cpu")
    lock = threading.Lock()
    running = [0, 0]  # now, most seen
    both = threading.Barrier(2, timeout=30)  # the first two jobs meet: they ran at once

    def work(index: int) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        if index < 2:
            both.wait()
        time.sleep(0.005)
        with lock:
            running[0] -= 1

    futures = [pool.submit_with_priority(Priority(i % 2), work, i) for i in range(30)]
    for future in futures:
        future.result(timeout=60)
    assert running[1] == 2
    assert pool.peak_running == 2
    assert sum(pool.started.values()) == 30
    pool.shutdown()


def test_background_work_leaves_a_worker_free_for_urgent_work() -> None:
    pool = CpuPool(2, name="test-cpu")
    release = threading.Event()
    background_started = threading.Event()

    def slow_background() -> None:
        background_started.set()
        release.wait(30)

    first = pool.submit_with_priority(Priority.BACKGROUND, slow_background)
    assert background_started.wait(30)
    # a second background job must wait: it would take the last free worker
    second = pool.submit_with_priority(Priority.BACKGROUND, lambda: "second")
    urgent = pool.submit_with_priority(Priority.URGENT, lambda: "urgent")
    assert urgent.result(timeout=30) == "urgent"
    assert not second.done()
    release.set()
    assert second.result(timeout=30) == "second"
    first.result(timeout=30)
    pool.shutdown()


def test_a_one_worker_pool_still_runs_background_work() -> None:
    pool = CpuPool(1, name="test-cpu")
    assert pool.submit_with_priority(Priority.BACKGROUND, pow, 3, 3).result(timeout=30) == 27
    pool.shutdown()


async def test_the_pool_is_an_executor_for_run_in_executor() -> None:
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(cpu_executor(), pow, 2, 5) == 32
    assert await run_cpu(pow, 2, 6, priority=Priority.URGENT) == 64


async def test_cancelling_the_awaiting_task_drops_the_queued_job() -> None:
    gate = threading.Event()
    holders = [  # every worker of the process pool busy
        asyncio.ensure_future(run_cpu(gate.wait, 30, priority=Priority.URGENT))
        for _ in range(cpu_executor().workers)
    ]
    ran: list[int] = []
    waiting = asyncio.ensure_future(run_cpu(ran.append, 1, priority=Priority.NORMAL))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)  # the pool's future is cancelled by a callback of the task's
    gate.set()
    await asyncio.gather(*holders)
    await run_cpu(pow, 1, 1)  # the pool went past where the cancelled job was
    assert ran == []


def test_threads_per_job_share_the_cores_among_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.setenv("FLIREO_CPU_WORKERS", "1")
    assert threads_per_job() == cores
    monkeypatch.setenv("FLIREO_CPU_WORKERS", str(cores * 4))
    assert threads_per_job() == 1
