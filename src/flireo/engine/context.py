"""What the parts of one call share: configuration, clock, transport, the record
being written (transcript, turn metrics, usage), events out, and how the call ends.

The session creates one :class:`CallContext`; the pipeline (cascade or
realtime), control handling and tools read and write it. It holds no
conversation logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from flireo.clock import Clock
from flireo.engine.config import SessionConfig
from flireo.engine.events import EventPump, SessionEvent, TransferAttempted, TurnCompleted
from flireo.engine.metrics import TurnMetrics, TurnTimer, Usage
from flireo.engine.silence import SilenceWatchdog
from flireo.engine.tools import ToolRunner
from flireo.engine.transcript import Transcript
from flireo.engine.transport import AudioTransport, TransferResult
from flireo.engine.voicemail import VoicemailGate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ended:
    reason: str
    error: str | None
    at: float


class Ending:
    """The call ends once: the first reason given wins."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._event = asyncio.Event()
        self.result: Ended | None = None

    def end(self, reason: str, *, error: str | None = None) -> bool:
        if self.result is not None:
            return False
        self.result = Ended(reason, error, self._clock.monotonic())
        self._event.set()
        return True

    @property
    def ended(self) -> bool:
        return self.result is not None

    async def wait(self) -> Ended:
        await self._event.wait()
        assert self.result is not None
        return self.result


class Conversation(Protocol):
    """A pipeline running the conversation: cascade (STT → LLM → TTS) or realtime."""

    async def open(self) -> None:
        """Connect the vendors (raises ``PipelineFailure``)."""
        ...

    async def run(self) -> None:
        """Listen and talk until cancelled."""
        ...

    async def close(self) -> None: ...

    def add_context(self, text: str, *, source: str) -> None:
        """Silent context for the LLM (a system message)."""
        ...

    def respond(self, trigger: str, *, tools: bool = True) -> asyncio.Future[None]:
        """Queue an LLM reply; the future is done when it was said (or dropped)."""
        ...

    def user_input(self, text: str, *, trigger: str) -> None:
        """A caller input that is not speech (DTMF): record it and reply, superseding."""
        ...

    def say(
        self, text: str, *, source: str, interrupt: bool = False, interruptible: bool = True
    ) -> asyncio.Future[None]:
        """Say exactly ``text``; ``interrupt`` stops what is being said first."""
        ...


class CallContext:
    def __init__(
        self,
        config: SessionConfig,
        *,
        clock: Clock,
        transport: AudioTransport,
        pump: EventPump,
        tools: ToolRunner,
        transcript: Transcript,
        voicemail: VoicemailGate,
        usage: Usage,
    ) -> None:
        self.config = config
        self.clock = clock
        self.transport = transport
        self.tools = tools
        self.transcript = transcript
        self.voicemail = voicemail
        self.usage = usage
        self.ending = Ending(clock)
        self.turns: list[TurnMetrics] = []
        self.silence: SilenceWatchdog | None = None
        #: the call is being wound down (goodbye playing): no new replies
        self.closing = False
        #: replies wait: the first message is held until the voicemail verdict
        self.hold_replies = False
        #: the caller has said something (VAD), for the voicemail greeting wait
        self.caller_spoke = False
        self.summary: str | None = None
        self.transferred_to: str | None = None
        self.details: dict[str, Any] = {}
        self._pump = pump
        self._turn_count = 0
        self._spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None

    # --- events and the end ------------------------------------------------------------
    def emit(self, event: SessionEvent) -> None:
        self._pump.put(event)

    def end(self, reason: str, *, error: str | None = None) -> None:
        if self.ending.end(reason, error=error):
            log.info("call %s ending: %s", self.config.call.call_id, reason)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the call's task group (async tool webhooks)."""
        if self._spawn is None:
            coro.close()
            raise RuntimeError("the call is not running")
        self._spawn(coro)

    def set_spawner(self, spawn: Callable[[Coroutine[Any, Any, None]], None] | None) -> None:
        self._spawn = spawn

    # --- turns ---------------------------------------------------------------------------
    def new_turn(self, trigger: str, **moments: float | None) -> TurnTimer:
        self._turn_count += 1
        timer = TurnTimer(turn=self._turn_count, trigger=trigger, started_at=self.clock.monotonic())
        for name, value in moments.items():
            setattr(timer, name, value)
        return timer

    def turn_done(self, timer: TurnTimer) -> None:
        metrics = timer.finish(self.transcript.seconds_from_start, self.clock.monotonic())
        self.turns.append(metrics)
        self.emit(TurnCompleted(metrics))

    # --- who is talking (silence handling) ----------------------------------------------
    def caller_started(self) -> None:
        self.caller_spoke = True
        if self.silence is not None:
            self.silence.caller_active()
            self.silence.pause()

    def caller_stopped(self) -> None:
        if self.silence is not None:
            self.silence.resume()

    def caller_pressed_key(self) -> None:
        if self.silence is not None:
            self.silence.caller_active()

    def agent_started(self) -> None:
        if self.silence is not None:
            self.silence.pause()

    def agent_stopped(self) -> None:
        if self.silence is not None:
            self.silence.resume()

    # --- actions ---------------------------------------------------------------------------
    async def transfer(self, destination: str) -> TransferResult:
        """Hand the caller over; on success the call ends as forwarded."""
        try:
            result = await self.transport.transfer(destination)
        except Exception as exc:  # a transport failure is a failed transfer, not a crash
            log.warning("transfer to %s failed: %r", destination, exc)
            result = TransferResult(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
        self.emit(TransferAttempted(destination, result.ok, result.detail))
        outcome = "succeeded" if result.ok else "failed"
        self.transcript.note(
            f"Transfer to {destination} {outcome}"
            + (f": {result.detail}" if result.detail else ""),
            source="transfer-update",
            transfer={"destination": destination, "status": outcome, "detail": result.detail},
        )
        if result.ok:
            self.transferred_to = destination
        return result
