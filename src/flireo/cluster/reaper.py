"""Ending the calls of workers that died (SIGKILL, power loss, a lost machine).

Every worker runs a :class:`Reaper`. Each scan (every half heartbeat TTL) reads
the owners of the active calls in the shared database and looks their heartbeat
keys up in Redis. An owner missing on two scans in a row (so a Redis restart or
one late beat does not count) is dead: each of its calls ends with
``ended_reason`` ``worker-died`` through :meth:`CallLifecycle.finish`, which
locks the call's row and ends it only once however many reapers race for it:
one terminal status, one end-of-call report, one usage record.

The call ends at the dead worker's last heartbeat (its calls may have run up to
then, not beyond): ``ended_at``, the duration and the billed minutes count the
answered time up to that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis
from sqlalchemy import select

from flireo.clock import Clock
from flireo.cluster.liveness import last_beat, live_nodes
from flireo.domain.calls import ACTIVE_STATUSES, WORKER_DIED
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.store.tables import Call

log = structlog.get_logger(__name__)


class _At:
    """A clock stopped at one moment: the call's end is dated to the worker's death."""

    def __init__(self, clock: Clock, at: datetime) -> None:
        self._clock, self._at = clock, at

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> datetime:
        return self._at

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


class Reaper:
    def __init__(
        self,
        lifecycle: CallLifecycle,
        redis: Redis,
        node_id: str,
        *,
        ttl_s: float,
        interval_s: float | None = None,
        on_webhook: Callable[[], None] | None = None,
        on_analysis: Callable[[], None] | None = None,
    ) -> None:
        """``on_webhook``/``on_analysis``: the kicks the server's lifecycle also has."""
        self.lifecycle, self.redis, self.node_id = lifecycle, redis, node_id
        self._on_webhook, self._on_analysis = on_webhook, on_analysis
        self.ttl_s = ttl_s
        self.interval_s = interval_s if interval_s is not None else max(0.5, ttl_s / 2)
        #: owner -> monotonic time its heartbeat was first seen missing
        self._missing: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="worker-reaper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.scan()
            except Exception:  # the database or Redis away: the next scan tries again
                log.exception("reaper scan failed")

    async def scan(self) -> int:
        """One scan; returns how many calls it ended."""
        db = self.lifecycle.db
        async with db.read() as s:
            owners = set(
                (
                    await s.execute(
                        select(Call.owner_node)
                        .where(Call.status.in_(ACTIVE_STATUSES), Call.owner_node.is_not(None))
                        .distinct()
                    )
                ).scalars()
            )
        owners.discard(self.node_id)
        owners.discard(None)
        alive = await live_nodes(self.redis, sorted(o for o in owners if o))
        now = time.monotonic()
        dead: list[str] = []
        for owner, info in alive.items():
            if info is not None:
                self._missing.pop(owner, None)
                continue
            first = self._missing.setdefault(owner, now)
            # seen missing on an earlier scan as well (a little slack for timer jitter)
            if now - first >= self.interval_s * 0.9:
                dead.append(owner)
        for gone in set(self._missing) - set(alive):
            del self._missing[gone]
        ended = 0
        for owner in dead:
            ended += await self.reap(owner)
            self._missing.pop(owner, None)
        return ended

    async def reap(self, owner: str) -> int:
        """End every active call of the dead worker ``owner``; returns how many this
        reaper ended (others may have ended some first)."""
        beat = await last_beat(self.redis, owner)
        now = self.lifecycle.clock.now()
        died = datetime.fromtimestamp(beat, UTC) if beat is not None else now
        died = min(died, now)
        async with self.lifecycle.db.read() as s:
            rows = (
                await s.execute(
                    select(Call.id, Call.status, Call.started_at, Call.created_at).where(
                        Call.owner_node == owner, Call.status.in_(ACTIVE_STATUSES)
                    )
                )
            ).all()
        ended = 0
        for call_id, status, started_at, created_at in rows:
            # never before the call began: a call answered after the last beat has 0 s
            begun = started_at or created_at
            at = max(died, _aware(begun)) if begun is not None else died
            at = min(at, now)
            completion = CallCompletion(
                status="ended" if status == "in-progress" else "failed",
                ended_reason=WORKER_DIED,
                error=f"the worker running the call ({owner}) stopped: no heartbeat since "
                f"{died.isoformat(timespec='seconds')}",
            )
            lifecycle = CallLifecycle(
                self.lifecycle.db,
                self.lifecycle.settings,
                _At(self.lifecycle.clock, at),
                on_webhook=self._on_webhook,
                on_analysis=self._on_analysis,
                bus=self.lifecycle.bus,
            )
            if await lifecycle.finish(call_id, completion):
                ended += 1
        if ended:
            log.warning("ended the calls of a dead worker", node_id=owner, count=ended)
        return ended


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive (they are stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
