"""The embedded default: every call lives in this process."""

from __future__ import annotations

import asyncio
from typing import Any

from flireo.bus.base import ControlAck, ControlHandler
from flireo.bus.events import CallEvent, EventHub, EventSubscription


class _MemoryRegistration:
    def __init__(self, bus: MemoryBus, call_id: str, handler: ControlHandler) -> None:
        self._bus, self._call_id, self._handler = bus, call_id, handler

    async def close(self) -> None:
        if self._bus.handlers.get(self._call_id) is self._handler:
            del self._bus.handlers[self._call_id]


class MemoryBus:
    def __init__(self) -> None:
        self.handlers: dict[str, ControlHandler] = {}
        self.events = EventHub()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.handlers.clear()
        self.events.close_all()

    async def register_call(self, call_id: str, handler: ControlHandler) -> _MemoryRegistration:
        self.handlers[call_id] = handler
        return _MemoryRegistration(self, call_id, handler)

    async def send_control(
        self, call_id: str, command: dict[str, Any], *, reply_timeout: float = 3.0
    ) -> ControlAck | None:
        handler = self.handlers.get(call_id)
        if handler is None:
            return None
        try:
            return await asyncio.wait_for(handler(command), reply_timeout)
        except TimeoutError:
            return ControlAck(ok=False, code="call_not_responding", message="call did not respond")

    async def publish_event(self, org_id: str, item: CallEvent) -> None:
        self.events.dispatch(org_id, item)

    async def subscribe_events(self, org_id: str, call_id: str | None = None) -> EventSubscription:
        return await self.events.subscribe(org_id, call_id)
