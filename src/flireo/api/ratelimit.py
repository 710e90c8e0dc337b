"""Fixed-window request counters: in memory (one node) or in Redis (many)."""

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


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> Window: ...


class MemoryRateLimiter:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._counts: dict[str, int] = {}
        self._window_start = 0

    async def hit(self, key: str, limit: int) -> Window:
        now = self._now()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        if start != self._window_start:
            self._counts.clear()
            self._window_start = start
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return Window(count <= limit, limit, max(0, limit - count), start + WINDOW_SECONDS)


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
        return Window(
            int(count) <= limit, limit, max(0, limit - int(count)), start + WINDOW_SECONDS
        )
