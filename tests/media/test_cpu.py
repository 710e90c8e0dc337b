"""The shared CPU pool runs model work off the event loop, sized by FLIREO_CPU_WORKERS."""

from __future__ import annotations

import threading

import pytest

from flireo.media.cpu import cpu_executor, cpu_workers, run_cpu


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
