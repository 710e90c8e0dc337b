"""Live call events for watchers (``GET /calls/{id}/events``, ``GET /calls/events``).

A call's owner publishes small JSON events keyed by organization and call;
whoever serves a watcher subscribes to one call of an organization, or to all
of them. The bus carries them between processes (Redis pub/sub), or within
this one (:class:`EventHub` alone, the memory bus).

An event is ``{"type": <SSE event name>, "call_id": ..., "data": {...}}``.
A watcher that does not keep up (its queue full) is cut off rather than slow
the publisher: its subscription ends (``None``), and the client reconnects.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

#: events a watcher may lag behind before it is cut off
SUBSCRIBER_QUEUE: Final = 1000
#: the terminal statuses: a call's stream ends after one of them
TERMINAL: Final = frozenset({"ended", "failed", "rejected"})

CallEvent = dict[str, Any]


def event(type_: str, call_id: str, data: dict[str, Any]) -> CallEvent:
    return {"type": type_, "call_id": call_id, "data": data}


class EventSubscription:
    """One watcher's queue: :meth:`get` returns the next event, ``None`` once closed."""

    def __init__(self, hub: EventHub, org_id: str, call_id: str | None) -> None:
        self.hub, self.org_id, self.call_id = hub, org_id, call_id
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.closed = False
        self._released = False

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.org_id, self.call_id)

    def offer(self, item: CallEvent) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:  # too slow: cut off (the client reconnects)
            self._cut()

    def _cut(self) -> None:
        self.closed = True
        self.hub.discard(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def get(self, within: float | None = None) -> CallEvent | None:
        """The next event; raises ``TimeoutError`` after ``within`` seconds without one."""
        if within is None:
            return await self._queue.get()
        async with asyncio.timeout(within):
            return await self._queue.get()

    async def close(self) -> None:
        """Stop watching (also after being cut off: releases the bus's channel)."""
        if not self._released:
            self._released = self.closed = True
            await self.hub.remove(self)


class EventHub:
    """This process's watchers, by (organization, call) and by organization.

    ``on_first``/``on_last`` let a bus (Redis) subscribe to a key's channel while
    someone here watches it."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, str | None], set[EventSubscription]] = {}

    async def subscribe(self, org_id: str, call_id: str | None = None) -> EventSubscription:
        sub = EventSubscription(self, org_id, call_id)
        subs = self._subs.setdefault(sub.key, set())
        first = not subs
        subs.add(sub)
        if first:
            await self.on_first(sub.key)
        return sub

    def discard(self, sub: EventSubscription) -> bool:
        """Drop ``sub``; True when it was the key's last watcher (see :meth:`remove`)."""
        subs = self._subs.get(sub.key)
        if subs is None or sub not in subs:
            return False
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]
            return True
        return False

    async def remove(self, sub: EventSubscription) -> None:
        self.discard(sub)
        if sub.key not in self._subs:
            await self.on_last(sub.key)

    def dispatch(self, org_id: str, item: CallEvent) -> None:
        """Hand one event to its call's watchers and to the organization's."""
        self.dispatch_to(org_id, item.get("call_id"), item)
        self.dispatch_to(org_id, None, item)

    def dispatch_to(self, org_id: str, call_id: str | None, item: CallEvent) -> None:
        """Hand one event to the watchers of one key (a call, or ``None``: the org)."""
        for sub in list(self._subs.get((org_id, call_id), ())):
            sub.offer(item)

    def watching(self, org_id: str, call_id: str | None) -> bool:
        return (org_id, call_id) in self._subs

    async def on_first(self, key: tuple[str, str | None]) -> None:
        return None

    async def on_last(self, key: tuple[str, str | None]) -> None:
        return None

    def close_all(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub._cut()
        self._subs.clear()
