"""Drive a real :class:`CallSession` over the in-memory transport.

``call = await start_call(config, llm=..., stt=..., tts=...)`` starts ``run()``
in a task; the test plays the caller (``await call.transport.caller_says(pcm)``),
waits for what it expects (``await call.until(...)``), and reads the outcome
(``await call.finished()``). Everything real: VAD, Whisper, Piper, the HTTP
fakes; time is the system clock unless a test passes its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from flireo.clock import Clock, SystemClock
from flireo.engine.config import SessionConfig
from flireo.engine.events import (
    CallerInterrupted,
    MessageAdded,
    RecordingSink,
    TurnCompleted,
)
from flireo.engine.memory_transport import MemoryTransport, PlayedFrame
from flireo.engine.outcome import CallOutcome
from flireo.engine.session import CallSession
from flireo.media.frames import SAMPLE_RATE
from flireo.providers.llm.base import LanguageModel
from flireo.providers.realtime.base import RealtimeModel
from flireo.providers.stt.base import SpeechToText
from flireo.providers.tts.base import TextToSpeech
from tests.speech import transcribe

E = TypeVar("E")


def silence(seconds: float) -> bytes:
    return bytes(int(SAMPLE_RATE * seconds) * 2)


def agent_record(messages: list[dict[str, Any]]) -> list[tuple[str, str | None, list[str]]]:
    """(role, content, names of the tools called) of the agent's and the tools'
    messages, in the order the call recorded them."""
    return [
        (
            m["role"],
            m.get("content"),
            [c["function"]["name"] for c in m.get("tool_calls", [])],
        )
        for m in messages
        if m["role"] in ("assistant", "tool")
    ]


@dataclass
class Call:
    session: CallSession
    transport: MemoryTransport
    sink: RecordingSink
    task: asyncio.Task[CallOutcome]
    clock: Clock

    async def until(
        self, condition: Callable[[], Any], *, within: float = 15.0, what: str = ""
    ) -> None:
        """Wait (real time) until ``condition()`` is true; fail after ``within`` s."""
        deadline = time.monotonic() + within
        while not condition():
            if self.task.done():
                self.task.result()  # surface a crash
                raise AssertionError(f"call ended before: {what or condition}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {what or condition}")
            await asyncio.sleep(0.01)

    # --- what happened so far -----------------------------------------------------------
    def messages(self, role: str | None = None) -> list[dict[str, Any]]:
        found = [e.message for e in self.sink.of(MessageAdded)]
        return [m for m in found if role is None or m["role"] == role]

    def said(self) -> list[str]:
        """Assistant messages with content, in order (as recorded live)."""
        return [m["content"] for m in self.messages("assistant") if m.get("content")]

    def turns_done(self) -> int:
        return len(self.sink.of(TurnCompleted))

    def interruptions(self) -> list[CallerInterrupted]:
        return self.sink.of(CallerInterrupted)

    def agent_idle(self) -> bool:
        return self.transport.queued_samples == 0

    def of(self, kind: type[E]) -> list[E]:
        """The events of one type the session emitted so far."""
        return self.sink.of(kind)

    def frames(self, since: float | None = None, until: float | None = None) -> list[PlayedFrame]:
        """Agent frames played (clock time ``at``) in ``[since, until]``."""
        return [
            f
            for f in self.transport.played
            if (since is None or f.at >= since) and (until is None or f.at <= until)
        ]

    def hung_up_after_the_last_word(self) -> bool:
        """The line was closed (hang-up or hand-over) after all agent audio had played."""
        last, closed = self.transport.last_played_at, self.transport.hung_up_at
        return last is not None and closed is not None and closed >= last

    def early_checks(
        self, outcome: CallOutcome, *, first_s: float, interval_s: float, slack: float = 0.05
    ) -> list[int]:
        """Silence checks (the outcome's turns, 1-based) that came before ``first_s``
        from the start, or less than ``interval_s`` after the agent's previous audio."""
        starts = [outcome.started_monotonic + t.seconds_from_start for t in outcome.turns]
        early = [1] if starts and starts[0] - outcome.started_monotonic < first_s else []
        for n, start in enumerate(starts[1:], start=2):
            previous_audio = self.frames(until=start)[-1].at
            if start - previous_audio < interval_s - slack:
                early.append(n)
        return early

    async def caller_turn(self, pcm: bytes, *, pause: float = 0.6) -> None:
        """The caller says ``pcm`` then stays quiet for ``pause`` s (the engine got it all)."""
        await self.transport.caller_says(pcm + silence(pause))

    async def idle_after(self, turns: int, *, within: float = 20.0, what: str = "") -> None:
        """Wait until ``turns`` agent turns are done and everything was played."""
        await self.until(
            lambda: self.turns_done() >= turns and self.agent_idle(),
            within=within,
            what=what or f"{turns} agent turns played",
        )

    async def agent_says_something(self, *, within: float = 20.0) -> None:
        start = len(self.transport.played)
        await self.until(lambda: len(self.transport.played) > start, within=within)

    async def heard(self, since: float | None = None, until: float | None = None) -> str:
        """What Whisper hears in the agent audio played between ``since`` and ``until``."""
        return await transcribe(self.transport.agent_audio(since, until))

    async def finished(self, within: float = 20.0) -> CallOutcome:
        async with asyncio.timeout(within):
            return await asyncio.shield(self.task)

    async def hang_up(self) -> CallOutcome:
        self.transport.remote_hangup()
        return await self.finished()


async def start_call(
    config: SessionConfig,
    *,
    http: httpx.AsyncClient,
    llm: LanguageModel | None = None,
    stt: SpeechToText | None = None,
    tts: TextToSpeech | None = None,
    realtime: RealtimeModel | None = None,
    clock: Clock | None = None,
    transport: MemoryTransport | None = None,
) -> Call:
    clock = clock or SystemClock()
    transport = transport or MemoryTransport(clock)
    sink = RecordingSink()
    session = CallSession(
        config,
        transport=transport,
        clock=clock,
        http=http,
        events=sink,
        stt=stt,
        llm=llm,
        tts=tts,
        realtime=realtime,
        allow_private_urls=True,
    )
    task = asyncio.create_task(session.run(), name="test-call")
    call = Call(session, transport, sink, task, clock)
    await call.until(lambda: session.active or task.done(), within=10, what="session start")
    return call
