"""Routing control commands to the process that owns a live call, and its live
events back to whoever watches it.

A live call registers a handler under its id; ``send_control`` delivers a
command to it (wherever it runs) and returns the handler's acknowledgement,
or ``None`` when no live session owns the call. ``publish_event`` sends one
event of a call (see :mod:`flireo.bus.events`) to the watchers that
``subscribe_events`` returned, on any node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flireo.bus.events import CallEvent, EventSubscription


@dataclass(frozen=True, slots=True)
class ControlAck:
    ok: bool
    #: machine code when refused, e.g. ``rate_limit_exceeded``, ``call_not_active``
    code: str | None = None
    message: str = ""
    retry_after: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControlAck:
        return cls(
            ok=bool(data.get("ok")),
            code=data.get("code"),
            message=str(data.get("message", "")),
            retry_after=data.get("retry_after"),
        )


ControlHandler = Callable[[dict[str, Any]], Awaitable[ControlAck]]


class Registration(Protocol):
    async def close(self) -> None: ...


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def register_call(self, call_id: str, handler: ControlHandler) -> Registration:
        """Route control commands for ``call_id`` to ``handler`` until closed."""
        ...

    async def send_control(
        self, call_id: str, command: dict[str, Any], *, reply_timeout: float = 3.0
    ) -> ControlAck | None:
        """Deliver ``command``; ``None`` when no live session owns the call."""
        ...

    async def publish_event(self, org_id: str, item: CallEvent) -> None:
        """Hand a live event of a call to its watchers (never raises)."""
        ...

    async def subscribe_events(self, org_id: str, call_id: str | None = None) -> EventSubscription:
        """Watch one call of ``org_id`` (or all of them with ``call_id=None``)."""
        ...
