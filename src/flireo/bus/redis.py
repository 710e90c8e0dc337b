"""Scale-out routing over Redis pub/sub.

Each node subscribes to ``flireo:control:<call_id>`` for the calls it owns.
A sender publishes ``{"reply_to": ..., "command": ...}``; PUBLISH returning 0
means no node owns the call. The owner answers on the reply channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from flireo.bus.base import ControlAck, ControlHandler

log = structlog.get_logger(__name__)

_CONTROL = "flireo:control:"
_REPLY = "flireo:reply:"


class _RedisRegistration:
    def __init__(self, bus: RedisBus, call_id: str) -> None:
        self._bus, self._call_id = bus, call_id

    async def close(self) -> None:
        await self._bus.unregister(self._call_id)


class RedisBus:
    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(url, decode_responses=True)
        self._handlers: dict[str, ControlHandler] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.redis.ping()
        self._pubsub = self.redis.pubsub()
        # a subscription is needed before get_message works; this channel is never used
        await self._pubsub.subscribe(f"{_CONTROL}__node__{uuid.uuid4().hex}")
        self._reader = asyncio.create_task(self._read_loop(), name="redis-bus-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._tasks):
            task.cancel()
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()

    async def register_call(self, call_id: str, handler: ControlHandler) -> _RedisRegistration:
        assert self._pubsub is not None, "bus not started"
        self._handlers[call_id] = handler
        await self._pubsub.subscribe(_CONTROL + call_id)
        return _RedisRegistration(self, call_id)

    async def unregister(self, call_id: str) -> None:
        self._handlers.pop(call_id, None)
        if self._pubsub is not None:
            await self._pubsub.unsubscribe(_CONTROL + call_id)

    async def send_control(
        self, call_id: str, command: dict[str, Any], *, reply_timeout: float = 3.0
    ) -> ControlAck | None:
        reply_channel = _REPLY + uuid.uuid4().hex
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(reply_channel)
            message = json.dumps({"reply_to": reply_channel, "command": command})
            receivers = await self.redis.publish(_CONTROL + call_id, message)
            if receivers == 0:
                return None
            try:
                async with asyncio.timeout(reply_timeout):
                    while True:
                        msg = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=reply_timeout
                        )
                        if msg is not None and msg["type"] == "message":
                            return ControlAck.from_json(json.loads(msg["data"]))
            except TimeoutError:
                return ControlAck(
                    ok=False, code="call_not_responding", message="call did not respond"
                )
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_loop(self) -> None:
        assert self._pubsub is not None
        while True:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None or msg["type"] != "message":
                continue
            call_id = str(msg["channel"])[len(_CONTROL) :]
            handler = self._handlers.get(call_id)
            if handler is None:
                continue
            task = asyncio.create_task(self._dispatch(handler, msg["data"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, handler: ControlHandler, raw: str) -> None:
        try:
            envelope = json.loads(raw)
            command, reply_to = envelope["command"], envelope.get("reply_to")
        except (ValueError, KeyError, TypeError):
            log.warning("malformed control envelope dropped")
            return
        try:
            ack = await handler(command)
        except Exception as exc:  # a failing handler must not kill the reader
            log.warning("control command failed", error=repr(exc))
            ack = ControlAck(ok=False, code="internal_error", message="command failed")
        if reply_to:
            await self.redis.publish(reply_to, json.dumps(ack.to_json()))
