"""Fixed-window request counters: in memory (one node) or in Redis (many).

Keys are chosen by the callers: ``key:<api key id>`` for authenticated requests,
``ip:<address>`` for requests without credentials and ``authfail:<address>`` for
failed authentications. The in-memory table holds at most ``max_keys`` counters
per window; once it is full, new keys share one overflow counter (so a flood of
distinct addresses is throttled together instead of growing the table).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Window:
    allowed: bool
    limit: int
    remaining: int
    #: Unix time (seconds) when the window resets
    reset_at: int

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


def _window(count: int, limit: int, start: int) -> Window:
    """The window after ``count`` hits: allowed while ``count <= limit``."""
    return Window(count <= limit, limit, max(0, limit - count), start + WINDOW_SECONDS)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> Window:
        """Count one request; ``allowed`` is False once over ``limit``."""
        ...

    async def peek(self, key: str, limit: int) -> Window:
        """The state without counting: ``allowed`` is False once ``limit`` hits are used."""
        ...


#: the bucket keys share once the in-memory table is full
OVERFLOW_KEY = "\x00overflow"
DEFAULT_MAX_KEYS = 50_000


class MemoryRateLimiter:
    def __init__(
        self, now: Callable[[], float] = time.time, *, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self._now = now
        self._counts: dict[str, int] = {}
        self._window_start = 0
        self.max_keys = max_keys

    def __len__(self) -> int:
        """Counters held right now (bounded by ``max_keys`` + the overflow one)."""
        return len(self._counts)

    def _start(self) -> int:
        start = int(self._now() // WINDOW_SECONDS) * WINDOW_SECONDS
        if start != self._window_start:
            self._counts.clear()
            self._window_start = start
        return start

    def _slot(self, key: str) -> str:
        if key in self._counts or len(self._counts) < self.max_keys:
            return key
        return OVERFLOW_KEY

    async def hit(self, key: str, limit: int) -> Window:
        start = self._start()
        slot = self._slot(key)
        count = self._counts.get(slot, 0) + 1
        self._counts[slot] = count
        return _window(count, limit, start)

    async def peek(self, key: str, limit: int) -> Window:
        start = self._start()
        count = self._counts.get(self._slot(key), 0)
        return _window(count + 1, limit, start)


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str = "flireo:rl:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, limit: int) -> Window:
        now = time.time()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        rkey = f"{self._prefix}{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(rkey)
            pipe.expire(rkey, WINDOW_SECONDS + 5)
            count, _ = await pipe.execute()
        return _window(int(count), limit, start)

    async def peek(self, key: str, limit: int) -> Window:
        start = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS
        count = await self._redis.get(f"{self._prefix}{key}:{start}")
        return _window(int(count or 0) + 1, limit, start)
