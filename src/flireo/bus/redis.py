"""Scale-out routing over Redis pub/sub.

Each node subscribes to ``flireo:control:<call_id>`` for the calls it owns.
A sender publishes ``{"reply_to": ..., "command": ...}``; PUBLISH returning 0
means no node owns the call. The owner answers on the reply channel.

Live events go to ``flireo:events:<org_id>:<call_id>``; a node subscribes to
a call's channel while one of its clients watches that call, and to the
pattern ``flireo:events:<org_id>:*`` while one watches the whole
organization (:class:`~flireo.bus.events.EventHub` fans them out locally).
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
from flireo.bus.events import CallEvent, EventHub, EventSubscription

log = structlog.get_logger(__name__)

_CONTROL = "flireo:control:"
_REPLY = "flireo:reply:"
_EVENTS = "flireo:events:"


def _events_channel(org_id: str, call_id: str | None) -> str:
    return f"{_EVENTS}{org_id}:{call_id if call_id is not None else '*'}"


class _RedisEventHub(EventHub):
    def __init__(self, bus: RedisBus) -> None:
        super().__init__()
        self._bus = bus

    async def on_first(self, key: tuple[str, str | None]) -> None:
        pubsub = self._bus._pubsub
        assert pubsub is not None, "bus not started"
        org_id, call_id = key
        if call_id is None:
            await pubsub.psubscribe(_events_channel(org_id, None))
        else:
            await pubsub.subscribe(_events_channel(org_id, call_id))

    async def on_last(self, key: tuple[str, str | None]) -> None:
        pubsub = self._bus._pubsub
        if pubsub is None:
            return
        org_id, call_id = key
        with contextlib.suppress(Exception):
            if call_id is None:
                await pubsub.punsubscribe(_events_channel(org_id, None))
            else:
                await pubsub.unsubscribe(_events_channel(org_id, call_id))


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
        self.events: EventHub = _RedisEventHub(self)

    async def start(self) -> None:
        await self.redis.ping()
        self._pubsub = self.redis.pubsub()
        # a subscription is needed before get_message works; this channel is never used
        await self._pubsub.subscribe(f"{_CONTROL}__node__{uuid.uuid4().hex}")
        self._reader = asyncio.create_task(self._read_loop(), name="redis-bus-reader")

    async def stop(self) -> None:
        self.events.close_all()
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
            if msg is None or msg["type"] not in ("message", "pmessage"):
                continue
            channel = str(msg["channel"])
            if channel.startswith(_EVENTS):
                self._event_received(msg["type"] == "pmessage", msg["data"])
                continue
            if msg["type"] != "message":
                continue
            call_id = channel[len(_CONTROL) :]
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

    # --- live events --------------------------------------------------------------------
    async def publish_event(self, org_id: str, item: CallEvent) -> None:
        try:
            payload = json.dumps({"org_id": org_id, **item})
            await self.redis.publish(_events_channel(org_id, str(item["call_id"])), payload)
        except Exception as exc:  # watchers are best effort: the call goes on
            log.warning("live event not published", error=repr(exc))

    async def subscribe_events(self, org_id: str, call_id: str | None = None) -> EventSubscription:
        return await self.events.subscribe(org_id, call_id)

    def _event_received(self, by_pattern: bool, raw: str) -> None:
        try:
            item = json.loads(raw)
            org_id = str(item.pop("org_id"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("malformed live event dropped")
            return
        # a node watching a call and its whole organization gets the event twice
        # (channel and pattern): each copy goes to its own watchers only
        self.events.dispatch_to(org_id, None if by_pattern else item.get("call_id"), item)
