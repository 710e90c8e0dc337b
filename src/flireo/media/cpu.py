"""The one bounded pool for CPU-heavy speech work (Whisper, Piper,
pocketsphinx, Silero), shared by every call in the process.

Its size comes from ``FLIREO_CPU_WORKERS`` (default: the number of cores), so
the number of models running at once never exceeds what the machine can do;
the event loop itself never runs model inference.

Work waits in a priority queue in front of the workers, not in submission
order: with several calls on two cores the job that a caller is waiting on
right now (the final transcript of a turn that has ended, the first audio of
the reply) must not queue behind work that can wait (the rest of a reply,
a speculative transcription). Jobs of one priority run first come, first
served. :attr:`Priority.BACKGROUND` jobs never take the last free worker:
one worker is always left for urgent work (with a pool of one worker they
still run, one at a time, when nothing else is queued). A queued job whose
future is cancelled is dropped without running.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

T = TypeVar("T")

ENV_WORKERS = "FLIREO_CPU_WORKERS"

__all__ = [
    "ENV_WORKERS",
    "CpuPool",
    "Priority",
    "cpu_executor",
    "cpu_workers",
    "run_cpu",
    "submit_cpu",
    "threads_per_job",
]


class Priority(IntEnum):
    """Lower runs first."""

    #: a caller is waiting on it now: the final of an ended turn, a reply's first audio
    URGENT = 0
    #: needed soon (the next sentence of a reply, partials, model loads)
    NORMAL = 1
    #: may be thrown away: speculative work done while the caller is silent
    BACKGROUND = 2


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    future: Future[Any] = field(compare=False)
    fn: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)


class CpuPool(Executor):
    """A fixed number of worker threads fed from a priority queue.

    An :class:`~concurrent.futures.Executor`, so ``loop.run_in_executor`` works
    too (at :attr:`Priority.NORMAL`).
    """

    def __init__(self, workers: int, *, name: str = "flireo-cpu") -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.workers = workers
        self._name = name
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._running = 0
        self._background_running = 0
        self._shutdown = False
        #: jobs started so far, per priority (for tests and benchmarks)
        self.started: dict[Priority, int] = dict.fromkeys(Priority, 0)
        #: most jobs ever running at once
        self.peak_running = 0

    @property
    def background_limit(self) -> int:
        """Background jobs allowed to run at once (one worker stays free for urgent work)."""
        return max(1, self.workers - 1)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            return self.submit_with_priority(Priority.NORMAL, lambda: fn(*args, **kwargs))
        return self.submit_with_priority(Priority.NORMAL, fn, *args)

    def submit_with_priority(
        self, priority: Priority, fn: Callable[..., T], /, *args: Any
    ) -> Future[T]:
        future: Future[T] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            heapq.heappush(self._queue, _Job(int(priority), next(self._seq), future, fn, args))
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify_all()
        return future

    def queued(self) -> int:
        """Jobs waiting for a worker (cancelled ones included until a worker drops them)."""
        with self._cond:
            return len(self._queue)

    def _take(self) -> _Job | None:
        """The next job this worker may run (lock held); None to wait."""
        queue = self._queue
        while queue and queue[0].future.cancelled():
            heapq.heappop(queue)
        if not queue:
            return None
        head = queue[0]
        if head.priority >= Priority.BACKGROUND and (
            self._background_running >= self.background_limit
            or (self.workers > 1 and self._running >= self.workers - 1)
        ):
            return None  # the last free worker is kept for urgent work
        return heapq.heappop(queue)

    def _work(self) -> None:
        while True:
            with self._cond:
                while (job := self._take()) is None:
                    if self._shutdown and not self._queue:
                        return
                    self._cond.wait()
                if not job.future.set_running_or_notify_cancel():
                    continue
                self._running += 1
                background = job.priority >= Priority.BACKGROUND
                if background:
                    self._background_running += 1
                self.started[Priority(job.priority)] += 1
                self.peak_running = max(self.peak_running, self._running)
            try:
                result = job.fn(*job.args)
            except BaseException as exc:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
            finally:
                del job
                with self._cond:
                    self._running -= 1
                    if background:
                        self._background_running -= 1
                    self._cond.notify_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                for job in self._queue:
                    job.future.cancel()
                self._queue.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()


_executor: CpuPool | None = None
_lock = threading.Lock()


def cpu_workers() -> int:
    """Pool size: ``FLIREO_CPU_WORKERS`` if set to a positive integer, else the core count."""
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_WORKERS} must be a positive integer, got {raw!r}") from exc
        if value < 1:
            raise ValueError(f"{ENV_WORKERS} must be a positive integer, got {raw!r}")
        return value
    return os.cpu_count() or 1


def threads_per_job() -> int:
    """Threads one model call may use inside itself: the cores shared out among the
    pool's workers (so a full pool does not run more threads than there are cores)."""
    return max(1, (os.cpu_count() or 1) // cpu_workers())


def cpu_executor() -> CpuPool:
    """The process-wide pool, created on first use."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = CpuPool(cpu_workers())
    return _executor


def submit_cpu(
    fn: Callable[..., T], *args: object, priority: Priority = Priority.NORMAL
) -> Future[T]:
    """Queue ``fn(*args)`` on the CPU pool; the caller awaits (or cancels) the future."""
    return cpu_executor().submit_with_priority(priority, fn, *args)


async def run_cpu(fn: Callable[..., T], *args: object, priority: Priority = Priority.NORMAL) -> T:
    """Run ``fn(*args)`` on the CPU pool and await its result.

    Cancelling the awaiting task drops the job if it has not started yet.
    """
    return await asyncio.wrap_future(submit_cpu(fn, *args, priority=priority))
