"""Live events a call reports to the outside world (persisted, forwarded as webhooks,
shown on dashboards), and the pump that delivers them without stalling the call.

The session puts events on an unbounded in-memory queue; one task hands them to
the :class:`EventSink` in order. A slow or failing sink never blocks audio or
turn-taking: failures are logged and the event dropped. After the call ended
the remaining events are delivered (bounded by a deadline) before
:meth:`CallSession.run` returns.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from flireo.engine.metrics import TurnMetrics
from flireo.engine.outcome import CallOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """``in-progress`` when the conversation starts, ``ended`` once it is over."""

    status: Literal["in-progress", "ended"]
    at: datetime
    ended_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A transcript message as recorded (see :mod:`flireo.engine.transcript`)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]
    #: ``function``, ``async-function``, ``endCall``, ``transferCall``, ``sendDtmf``
    kind: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call_id: str
    name: str
    #: what the LLM is told
    result: str
    error: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class CallerInterrupted:
    """Barge-in: the agent stopped talking at ``at`` (clock monotonic)."""

    at: float
    heard: str
    #: what the agent was going to say in full (sentences produced so far)
    intended: str


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    metrics: TurnMetrics


@dataclass(frozen=True, slots=True)
class TransferAttempted:
    destination: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ControlApplied:
    command: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallEnded:
    outcome: CallOutcome


SessionEvent = (
    StatusChanged
    | MessageAdded
    | ToolCallStarted
    | ToolCallFinished
    | CallerInterrupted
    | TurnCompleted
    | TransferAttempted
    | ControlApplied
    | CallEnded
)


class EventSink(Protocol):
    async def emit(self, event: SessionEvent) -> None:
        """Persist/forward one event. Called in order, one at a time."""
        ...


class RecordingSink:
    """Keeps every event in a list (tests, the CLI's live view)."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    async def emit(self, event: SessionEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class EventPump:
    """Queue in front of an :class:`EventSink`, drained by :meth:`run`."""

    def __init__(self, sink: EventSink | None) -> None:
        self._sink = sink
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._done = asyncio.Event()

    def put(self, event: SessionEvent) -> None:
        if self._sink is not None:
            self._queue.put_nowait(event)

    async def run(self) -> None:
        """Deliver events until :meth:`close` was called and the queue is empty."""
        try:
            while (event := await self._queue.get()) is not None:
                try:
                    await self._sink.emit(event)  # type: ignore[union-attr]
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("event sink failed on %s", type(event).__name__)
        finally:
            self._done.set()

    async def close(self, deadline_s: float) -> None:
        """Stop after the queued events (waiting at most ``deadline_s`` seconds)."""
        self._queue.put_nowait(None)
        if self._sink is None:
            return
        try:
            async with asyncio.timeout(deadline_s):
                await self._done.wait()
        except TimeoutError:
            log.warning("event sink too slow: %d events dropped", self._queue.qsize())
