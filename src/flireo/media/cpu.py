"""The one bounded thread pool for CPU-heavy speech work (Whisper, Piper,
pocketsphinx, Silero), shared by every call in the process.

Its size comes from ``FLIREO_CPU_WORKERS`` (default: the number of cores), so
the number of models running at once never exceeds what the machine can do;
the event loop itself never runs model inference.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

ENV_WORKERS = "FLIREO_CPU_WORKERS"

_executor: ThreadPoolExecutor | None = None
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


def cpu_executor() -> ThreadPoolExecutor:
    """The process-wide pool, created on first use."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=cpu_workers(), thread_name_prefix="flireo-cpu"
                )
    return _executor


async def run_cpu(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` on the CPU pool and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(cpu_executor(), fn, *args)
