"""A call's live events on the bus: what ``GET /calls/{id}/events`` streams.

Status changes are published by :class:`~flireo.services.call_lifecycle.CallLifecycle`
once they are committed; the conversation's transcript lines, tool calls and
control results by :class:`BusEventSink`, the session's event sink in the
process that runs the call (:class:`~flireo.services.call_runner.CallRunner`).
Publishing never fails the call: the bus logs and drops what it cannot send.
"""

from __future__ import annotations

import logging
from typing import Any

from flireo.bus.base import Bus
from flireo.bus.events import event
from flireo.engine.events import (
    ControlApplied,
    EventSink,
    MessageAdded,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
    TransferAttempted,
)

log = logging.getLogger(__name__)


async def publish_status(
    bus: Bus | None,
    org_id: str,
    call_id: str,
    status: str,
    *,
    ended_reason: str | None = None,
) -> None:
    if bus is None:
        return
    data: dict[str, Any] = {"call_id": call_id, "status": status}
    if ended_reason is not None:
        data["ended_reason"] = ended_reason
    try:
        await bus.publish_event(org_id, event("status-update", call_id, data))
    except Exception:  # a watcher's channel must never fail the call record
        log.exception("status event not published")


def transcript_line(message: dict[str, Any]) -> dict[str, Any] | None:
    """The SSE ``transcript`` data of a recorded message, or None (prompts, tool
    plumbing, a tool call without words)."""
    role, text = message.get("role"), message.get("content")
    if role not in ("assistant", "user") or not text or message.get("source") == "prompt":
        return None
    line: dict[str, Any] = {"role": role, "text": text, "time": message.get("secondsFromStart")}
    if message.get("interrupted"):
        line["interrupted"] = True
    return line


class BusEventSink:
    """Publishes a session's events for watchers, then hands them to ``inner`` (if any)."""

    def __init__(
        self, bus: Bus, org_id: str, call_id: str, *, inner: EventSink | None = None
    ) -> None:
        self._bus, self._org_id, self._call_id, self._inner = bus, org_id, call_id, inner
        self._arguments: dict[str, dict[str, Any]] = {}  # tool call id → its arguments

    async def emit(self, item: SessionEvent) -> None:
        data = self._data(item)
        if data is not None:
            type_, payload = data
            payload["call_id"] = self._call_id
            await self._bus.publish_event(self._org_id, event(type_, self._call_id, payload))
        if self._inner is not None:
            await self._inner.emit(item)

    def _data(self, item: SessionEvent) -> tuple[str, dict[str, Any]] | None:
        if isinstance(item, MessageAdded):
            line = transcript_line(item.message)
            return ("transcript", line) if line is not None else None
        if isinstance(item, ToolCallStarted):
            self._arguments[item.call_id] = item.arguments
            return "tool-call", {
                "id": item.call_id,
                "name": item.name,
                "kind": item.kind,
                "arguments": item.arguments,
            }
        if isinstance(item, ToolCallFinished):
            finished: dict[str, Any] = {
                "id": item.call_id,
                "name": item.name,
                "arguments": self._arguments.pop(item.call_id, {}),
                "result": item.result,
                "seconds": round(item.seconds, 3),
            }
            if item.error:
                finished["error"] = item.error
            return "tool-call", finished
        if isinstance(item, ControlApplied):
            control: dict[str, Any] = {"type": item.command, "ok": item.ok}
            if item.detail:
                control["detail"] = item.detail
            return "control", control
        if isinstance(item, TransferAttempted):
            transfer: dict[str, Any] = {"destination": item.destination, "ok": item.ok}
            if item.detail:
                transfer["detail"] = item.detail
            return "transfer", transfer
        return None
