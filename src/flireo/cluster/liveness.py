"""Each worker's heartbeat in Redis.

``flireo:node:<node_id>`` holds a JSON description of the live worker (its SIP and
API addresses, its live-call count, whether it drains) and expires after
``FLIREO_NODE_HEARTBEAT_TTL_S``; the worker rewrites it every third of that.
``flireo:node-beat:<node_id>`` keeps the time of the last heartbeat for a day, so
the worker that ends a dead one's calls knows when it died.

A node id names one live worker: :meth:`NodeHeartbeat.claim` refuses to start a
second worker under an id whose key is still being refreshed, and after a crash
waits (at most one TTL) for the dead worker's key to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

NODE_KEY = "flireo:node:"
BEAT_KEY = "flireo:node-beat:"
#: how long the time of a worker's last heartbeat is kept after it stops
BEAT_KEEP_S = 24 * 3600


class NodeIdInUse(RuntimeError):
    """Another live worker has this node id."""


def node_key(node_id: str) -> str:
    return NODE_KEY + node_id


def beat_key(node_id: str) -> str:
    return BEAT_KEY + node_id


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    instance: str
    pid: int
    sip: str | None
    api: str | None
    live_calls: int
    draining: bool
    beat: float

    @classmethod
    def from_json(cls, raw: str) -> NodeInfo:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            node_id=str(data["node_id"]),
            instance=str(data["instance"]),
            pid=int(data.get("pid", 0)),
            sip=data.get("sip"),
            api=data.get("api"),
            live_calls=int(data.get("live_calls", 0)),
            draining=bool(data.get("draining", False)),
            beat=float(data["beat"]),
        )


class NodeHeartbeat:
    """This worker's heartbeat. ``live_calls`` and ``draining`` are read at each beat."""

    def __init__(
        self,
        redis: Redis,
        node_id: str,
        *,
        ttl_s: float,
        sip: str | None = None,
        api: str | None = None,
        live_calls: Callable[[], int] = lambda: 0,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self.redis, self.node_id, self.ttl_s = redis, node_id, ttl_s
        self.sip, self.api = sip, api
        self.live_calls, self.draining = live_calls, draining
        self.instance = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._last_beat = 0.0

    @property
    def interval_s(self) -> float:
        return self.ttl_s / 3

    def _value(self) -> str:
        return json.dumps(
            {
                "node_id": self.node_id,
                "instance": self.instance,
                "pid": os.getpid(),
                "sip": self.sip,
                "api": self.api,
                "live_calls": self.live_calls(),
                "draining": self.draining(),
                "beat": time.time(),
            }
        )

    async def claim(self, *, wait_s: float | None = None) -> None:
        """Take the node id, or raise :class:`NodeIdInUse` when a live worker has it.
        A key left by a dead worker is waited out (at most ``wait_s``, default one TTL
        and a bit): it is dead when its beat does not move for a whole TTL."""
        deadline = time.monotonic() + (wait_s if wait_s is not None else self.ttl_s * 1.2 + 1)
        seen: str | None = None
        announced = False
        while True:
            px = int(self.ttl_s * 1000)
            if await self.redis.set(node_key(self.node_id), self._value(), nx=True, px=px):
                await self._write_beat()
                return
            current = _text(await self.redis.get(node_key(self.node_id)))
            if current is not None:
                if seen is not None and current != seen:
                    raise NodeIdInUse(
                        f"node id {self.node_id!r} is in use by a live worker "
                        f"({_describe(current)}): give each worker its own FLIREO_NODE_ID"
                    )
                seen = current
                if not announced:
                    log.warning(
                        "node id held by an earlier worker: waiting for its heartbeat to expire",
                        node_id=self.node_id,
                        holder=_describe(current),
                    )
                    announced = True
            if time.monotonic() >= deadline:
                raise NodeIdInUse(
                    f"node id {self.node_id!r} is still held ({_describe(current or '')}): "
                    "give each worker its own FLIREO_NODE_ID"
                )
            await asyncio.sleep(min(0.5, self.interval_s))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"node-heartbeat-{self.node_id}")

    async def beat(self) -> None:
        """Write the heartbeat now (also after a state change, e.g. drain)."""
        await self.redis.set(node_key(self.node_id), self._value(), px=int(self.ttl_s * 1000))
        await self._write_beat()

    async def _write_beat(self) -> None:
        now = time.time()
        await self.redis.set(beat_key(self.node_id), repr(now), ex=BEAT_KEEP_S)
        late = self._last_beat and now - self._last_beat > self.ttl_s
        if late:
            log.warning(
                "heartbeat was late: other workers may have ended this worker's calls",
                node_id=self.node_id,
                gap_s=round(now - self._last_beat, 1),
            )
        self._last_beat = now

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat()
            except Exception as exc:  # Redis away: try again at the next beat
                log.warning("heartbeat not written", node_id=self.node_id, error=repr(exc))

    async def stop(self) -> None:
        """A clean exit: the key goes at once (this worker's calls are over)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            current = _text(await self.redis.get(node_key(self.node_id)))
            if current is not None and NodeInfo.from_json(current).instance == self.instance:
                await self.redis.delete(node_key(self.node_id))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _describe(raw: str) -> str:
    try:
        info = NodeInfo.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return "unknown"
    return f"pid {info.pid}, sip {info.sip}, api {info.api}"


async def live_nodes(redis: Redis, node_ids: Iterable[str]) -> dict[str, NodeInfo | None]:
    """The heartbeat of each of ``node_ids`` (None: no live worker has that id)."""
    ids = list(node_ids)
    if not ids:
        return {}
    values = await redis.mget([node_key(n) for n in ids])
    out: dict[str, NodeInfo | None] = {}
    for node_id, value in zip(ids, values, strict=True):
        info: NodeInfo | None = None
        raw = _text(value)
        if raw is not None:
            try:
                info = NodeInfo.from_json(raw)
            except (ValueError, KeyError, TypeError):  # a key someone else wrote: alive
                info = NodeInfo(node_id, "", 0, None, None, 0, False, time.time())
        out[node_id] = info
    return out


async def last_beat(redis: Redis, node_id: str) -> float | None:
    """Unix time of ``node_id``'s last heartbeat (None when not known)."""
    raw = _text(await redis.get(beat_key(node_id)))
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
