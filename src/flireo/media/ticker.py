"""One 20 ms pacer for every call of an event loop (and clock): RTP sessions, in-memory lines.

A task per session that sleeps until its next deadline costs a timer, a
future and a task switch per call every 20 ms: at 200 calls, 10,000 wake-ups
a second before any audio is touched. :class:`Ticker` wakes once per 20 ms
for all of them: it sends every session's packet, then plays every
session's slot of received audio (and so runs the engine's VAD).

Deadlines are absolute, ``start + k × 20 ms`` of the injected monotonic clock
(never ``sleep(0.02)`` in a loop, which drifts). A wake-up that comes late
runs the tick at once and the next overdue one right after it; when the loop
stalled for longer, the oldest overdue ticks are skipped rather than burst
out: each session is told how many (its receive side still plays them, so the
engine's frames keep time; its RTP timestamps jump with them).

A session joins at the next tick of the shared grid, so its first packet goes
out at most 20 ms after :meth:`RtpSession.start`; the ticker's task ends when
its last session leaves and starts again with the next one.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Final, Protocol

from flireo.clock import Clock
from flireo.media.frames import FRAME_MS

log = logging.getLogger(__name__)

TICK_S: Final = FRAME_MS / 1000
#: at most this many ticks run back to back when the pacer is behind
MAX_BURST: Final = 2


class Ticked(Protocol):
    def send_tick(self, deadline: float, skipped: int) -> None:
        """Send this tick's packet, due at ``deadline``, after ``skipped`` ticks given up."""
        ...

    def receive_tick(self, skipped: int) -> None:
        """Play this tick's slot of received audio (and the ``skipped`` ones before)."""
        ...

    def tick_failed(self) -> None:
        """A tick of this member raised: stop it (the others go on)."""
        ...


class Ticker:
    """Drives every registered :class:`Ticked` on one clock's 20 ms grid."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._members: dict[Ticked, None] = {}  # insertion order: first started, first sent
        self._task: asyncio.Task[None] | None = None
        self.wakeups = 0  # for tests and benchmarks: one per tick, whatever the session count

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: Ticked) -> None:
        self._members[member] = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-ticker")

    def discard(self, member: Ticked) -> None:
        self._members.pop(member, None)

    async def _run(self) -> None:
        clock = self.clock
        members = self._members
        start = clock.monotonic()
        k = 0
        while members:
            deadline = start + k * TICK_S
            now = clock.monotonic()
            if now < deadline:
                await clock.sleep(deadline - now)
                now = clock.monotonic()
            self.wakeups += 1
            skipped = 0
            overdue = int((now - deadline) / TICK_S)  # later ticks already due too
            if overdue >= MAX_BURST:  # stalled: skip the oldest, do not burst them
                skipped = overdue - MAX_BURST + 1
                k += skipped
                deadline = start + k * TICK_S
            ticked = list(members)
            # every packet first (cheap, and what the far ends time), then the audio
            # received (decoding, the engine's VAD), so 200 calls' packets leave within
            # a few ms of the deadline instead of being spread over the whole tick
            for member in ticked:
                if member in members:  # not closed meanwhile by another's callback
                    try:
                        member.send_tick(deadline, skipped)
                    except Exception:
                        self._failed(member)
            for member in ticked:
                if member in members:
                    try:
                        member.receive_tick(skipped)
                    except Exception:
                        self._failed(member)
            k += 1

    def _failed(self, member: Ticked) -> None:
        log.exception("a 20 ms tick failed; stopping that call's media")
        self._members.pop(member, None)
        member.tick_failed()


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Clock, Ticker]] = (
    weakref.WeakKeyDictionary()
)


def ticker_for(clock: Clock) -> Ticker:
    """The running loop's ticker for ``clock`` (created on first use): members
    given the same clock object share one task."""
    by_clock = _tickers.setdefault(asyncio.get_running_loop(), {})
    ticker = by_clock.get(clock)
    if ticker is None:
        ticker = by_clock[clock] = Ticker(clock)
    return ticker


__all__ = ["MAX_BURST", "TICK_S", "Ticked", "Ticker", "ticker_for"]
