"""The phone network as the campaign dialer sees it: a :class:`Dialer` that
records every ``dial()`` with the clock time and the capacity in use, then plays
the far end's scripted answer on the call record (ringing, answered, busy...),
exactly as the SIP dialer will drive it."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.clock import Clock
from flireo.domain.calls import ACTIVE_STATUSES, DialEndedReason
from flireo.services.calls import set_status
from flireo.store.db import Database
from flireo.store.tables import Call, PhoneNumber

#: what the far end does: answer, voicemail, busy, no-answer, fail, lost
Script = dict[str, list[str]]


@dataclass(frozen=True)
class Dial:
    call_id: str
    lead_id: str | None
    campaign_id: str | None
    phone: str
    at: datetime
    attempt: int
    active_in_campaign: int
    active_on_trunk: int
    active_in_org: int


@dataclass
class SimulatedCarrier:
    db: Database
    clock: Clock
    script: Script = field(default_factory=dict)
    default: str = "answer"
    #: how long an answered call (or a voicemail) lasts
    talk_seconds: float = 0.0
    #: how long an unanswered call rings
    ring_seconds: float = 0.0
    dials: list[Dial] = field(default_factory=list)
    _endings: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    _seq: int = 0
    _task: asyncio.Task[None] | None = None

    async def dial(self, call_id: str) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            call = await s.get(Call, call_id)
            assert call is not None, call_id
            assert call.status == "dialing", (call_id, call.status)
            dial = Dial(
                call_id=call_id,
                lead_id=call.lead_id,
                campaign_id=call.campaign_id,
                phone=call.caller_phone or "",
                at=now,
                attempt=await _count(s, Call.lead_id == call.lead_id),
                active_in_campaign=await _count(
                    s, Call.campaign_id == call.campaign_id, Call.status.in_(ACTIVE_STATUSES)
                ),
                active_on_trunk=await _active_on_trunk(s, call),
                active_in_org=await _count(
                    s, Call.org_id == call.org_id, Call.status.in_(ACTIVE_STATUSES)
                ),
            )
            self.dials.append(dial)
            answer = self._answer_for(dial)
            if answer in ("answer", "voicemail"):
                set_status(call, "ringing", now=now)
                set_status(call, "in-progress", now=now)
                reason = "customer-ended-call" if answer == "answer" else "voicemail"
                self._later(self.talk_seconds, call_id, "ended", reason)
            elif answer == "no-answer":
                set_status(call, "ringing", now=now)
                self._later(self.ring_seconds, call_id, "failed", DialEndedReason.NO_ANSWER)
            elif answer == "busy":
                set_status(call, "failed", now=now, ended_reason=DialEndedReason.BUSY)
            elif answer == "fail":
                set_status(call, "failed", now=now, ended_reason=DialEndedReason.FAILED)
            else:
                assert answer == "lost", answer  # the call stays dialing: nobody works on it
        await self.settle()

    def _answer_for(self, dial: Dial) -> str:
        answers = self.script.get(dial.phone, [])
        return answers[dial.attempt - 1] if dial.attempt <= len(answers) else self.default

    def _later(self, seconds: float, call_id: str, status: str, reason: str) -> None:
        self._seq += 1
        at = self.clock.monotonic() + seconds
        heapq.heappush(self._endings, (at, self._seq, call_id, status, reason))

    def next_end_in(self) -> float | None:
        if not self._endings:
            return None
        return max(0.0, self._endings[0][0] - self.clock.monotonic())

    async def settle(self) -> int:
        """End the calls whose time is up; returns how many."""
        due = []
        while self._endings and self._endings[0][0] <= self.clock.monotonic():
            due.append(heapq.heappop(self._endings))
        if not due:
            return 0
        now = self.clock.now()
        async with self.db.transaction() as s:
            for _, _, call_id, status, reason in due:
                call = await s.get(Call, call_id)
                if call is not None:
                    set_status(call, status, now=now, ended_reason=reason)
        return len(due)

    async def start(self) -> None:
        """Run the far end on its own (for tests on a real clock)."""

        async def loop() -> None:
            while True:
                await self.settle()
                await self.clock.sleep(0.005)

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def dials_of(self, lead_id: str) -> list[Dial]:
        return [d for d in self.dials if d.lead_id == lead_id]


async def _count(s: AsyncSession, *where: ColumnElement[bool]) -> int:
    return int(await s.scalar(select(func.count()).select_from(Call).where(*where)) or 0)


async def _active_on_trunk(s: AsyncSession, call: Call) -> int:
    number = await s.get(PhoneNumber, call.number_id)
    assert number is not None
    assert number.transfer_trunk_id is not None
    stmt = (
        select(func.count())
        .select_from(Call)
        .join(PhoneNumber, PhoneNumber.id == Call.number_id)
        .where(
            PhoneNumber.transfer_trunk_id == number.transfer_trunk_id,
            Call.status.in_(ACTIVE_STATUSES),
        )
    )
    return int(await s.scalar(stmt) or 0)
