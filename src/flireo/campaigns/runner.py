"""The campaign dialer: one loop per process that works every ``scheduled`` campaign.

Each pass (:meth:`CampaignRunner.run_once`) is bounded work:

1. settle: record the outcomes of finished calls (from the call records, so it
   does not matter which process ended them) and fail ``dialing`` calls whose
   lease expired with nobody dialing them;
2. for each scheduled campaign whose daily window is open: take tokens from
   its bucket (``calls_per_second``), claim that many due leads in one
   transaction (capacity, calling windows and the do-not-call list are checked
   there) and hand the stored calls to the :class:`~flireo.services.dialer.Dialer`.

The pass returns how long to wait before the next one: the time to the next
token, the next due lead or window opening, the outcome poll interval while
calls are in flight, or ``idle_seconds``. Pausing a campaign stops new dials at
the next claim (claims re-read the status after locking), and a pass never
waits more than ``idle_seconds`` while nothing is due, so a campaign scheduled
or resumed through the API starts within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from flireo.campaigns.calling_window import DEFAULT_HORIZON, campaign_window
from flireo.campaigns.claims import Claim, claim_leads, forget_deferrals, lead_queue
from flireo.campaigns.pacing import TokenBucket
from flireo.campaigns.reconcile import fail_call, settle_leads
from flireo.clock import Clock
from flireo.domain.calls import DialEndedReason
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.calls import set_status
from flireo.services.dialer import Dialer
from flireo.store.db import Database
from flireo.store.tables import Call, Campaign

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Scheduled:
    id: str
    updated_at: datetime
    start: str
    end: str
    zone: str
    calls_per_second: float


class CampaignRunner:
    """Dials the leads of every scheduled campaign in the database.

    ``node_id`` names this process in lead leases and on the calls it stores
    (``Call.owner_node``); several runners (one per node) may share a database.
    ``lifecycle``, when given, ends the calls the runner has to fail (dial
    refused, dial interrupted) with their webhooks.
    """

    def __init__(
        self,
        db: Database,
        dialer: Dialer,
        clock: Clock,
        node_id: str,
        *,
        lifecycle: CallLifecycle | None = None,
        lease_seconds: float = 120.0,
        poll_seconds: float = 1.0,
        idle_seconds: float = 1.0,
        burst_seconds: float = 0.25,
        batch: int = 100,
        horizon: timedelta = DEFAULT_HORIZON,
        stop_timeout: float = 10.0,
    ) -> None:
        self.db, self.dialer, self.clock, self.node_id = db, dialer, clock, node_id
        self.lifecycle = lifecycle
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds, self.idle_seconds = poll_seconds, idle_seconds
        self.burst_seconds, self.batch, self.horizon = burst_seconds, batch, horizon
        self.stop_timeout = stop_timeout
        self._buckets: dict[str, TokenBucket] = {}
        self._seen: dict[str, datetime] = {}
        #: campaign id -> why its last claim could not dial (logged on change)
        self._blocked: dict[str, str | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._resting = asyncio.Event()
        self._resting.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"campaign-runner-{self.node_id}")

    async def stop(self) -> None:
        """Finish the pass in progress (so every claimed call reaches the dialer), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._resting.wait(), self.stop_timeout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _loop(self) -> None:
        while True:
            self._resting.clear()
            try:
                delay = await self.run_once()
            except Exception:  # a database hiccup must not end the dialer
                log.exception("campaign pass failed")
                delay = self.idle_seconds
            self._resting.set()
            await self.clock.sleep(delay)

    async def run_once(self) -> float:
        """One pass; returns the seconds to wait before the next."""
        now = self.clock.now()
        settled = await settle_leads(self.db, now=now, lifecycle=self.lifecycle)
        waits = [self.idle_seconds]
        if settled.in_flight:
            waits.append(self.poll_seconds)
        if settled.more:
            waits.append(0.0)
        campaigns = await self._scheduled()
        scheduled = {c.id for c in campaigns}
        for known in (self._buckets, self._seen, self._blocked):
            for gone in known.keys() - scheduled:
                del known[gone]
        for campaign in campaigns:
            waits.append(await self._work(campaign))
        return max(0.0, min(waits))

    async def _scheduled(self) -> list[_Scheduled]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(
                    Campaign.id,
                    Campaign.updated_at,
                    Campaign.schedule_start_time,
                    Campaign.schedule_end_time,
                    Campaign.timezone,
                    Campaign.calls_per_second,
                ).where(Campaign.status == "scheduled")
            )
            return [_Scheduled(*row) for row in rows.all()]

    async def _work(self, campaign: _Scheduled) -> float:
        """Dial what one campaign may dial now; returns when to look again."""
        if self._seen.get(campaign.id) != campaign.updated_at:
            await forget_deferrals(self.db, campaign.id)  # its window may have changed
            self._seen[campaign.id] = campaign.updated_at
        now = self.clock.now()
        window = campaign_window(start=campaign.start, end=campaign.end, zone=campaign.zone)
        if not window.allows(now):
            opens = window.next_opening(now, self.horizon)
            return (opens - now).total_seconds() if opens else self.idle_seconds
        bucket = self._bucket(campaign)
        want = min(bucket.available(), self.batch)
        if want == 0:
            return bucket.seconds_until(1)
        queue = await lead_queue(self.db, campaign.id, now)
        if not queue.needs_claim:
            if queue.wake_at is None:
                return self.idle_seconds
            return max(0.0, (queue.wake_at - now).total_seconds())
        claim = await claim_leads(
            self.db,
            campaign.id,
            want=want,
            node_id=self.node_id,
            now=now,
            lease=self.lease,
            batch=self.batch,
            horizon=self.horizon,
            settings=self.lifecycle.settings if self.lifecycle is not None else None,
        )
        await self._refuse(claim.refused)
        bucket.take(len(claim.call_ids))
        await self._dial(claim.call_ids)
        if claim.completed:
            log.info("campaign completed", campaign_id=campaign.id)
        if self._blocked.get(campaign.id) != claim.blocked:
            self._blocked[campaign.id] = claim.blocked
            if claim.blocked not in (None, "no-capacity", "not-scheduled"):
                log.warning("campaign cannot dial", campaign_id=campaign.id, reason=claim.blocked)
        return self._next_look(claim, bucket, now)

    def _next_look(self, claim: Claim, bucket: TokenBucket, now: datetime) -> float:
        if claim.blocked == "no-capacity":
            return self.poll_seconds  # until a call ends
        if claim.blocked is not None:
            return self.idle_seconds
        if claim.call_ids or claim.more_due or claim.deferred or claim.suppressed:
            return bucket.seconds_until(1)  # there may be more due leads right away
        if claim.wake_at is not None and claim.wake_at > now:
            return (claim.wake_at - now).total_seconds()
        return self.poll_seconds  # due leads held by another runner's claim, or none left

    def _bucket(self, campaign: _Scheduled) -> TokenBucket:
        rate = campaign.calls_per_second
        # a tenth of a token of slack absorbs each pass's own latency, so the
        # long-run rate is the requested one even at one call a second
        burst = max(1.1, rate * self.burst_seconds)
        bucket = self._buckets.get(campaign.id)
        if bucket is None:
            bucket = self._buckets[campaign.id] = TokenBucket(self.clock, rate, burst)
        elif bucket.rate != rate or bucket.burst != burst:
            bucket.reconfigure(rate, burst)
        return bucket

    async def _refuse(self, refused: list[tuple[str, str, str]]) -> None:
        """End the calls of leads the dial policy refused: ``rejected``, once."""
        for call_id, reason, error in refused:
            log.warning("dial policy refused a campaign lead", call_id=call_id, reason=reason)
            if self.lifecycle is not None:
                completion = CallCompletion(status="rejected", ended_reason=reason, error=error)
                await self.lifecycle.finish(call_id, completion)
                continue
            async with self.db.transaction() as s:
                call = await s.get(Call, call_id, with_for_update=True)
                if call is not None:
                    now = self.clock.now()
                    set_status(call, "rejected", now=now, ended_reason=reason, error=error)

    async def _dial(self, call_ids: list[str]) -> None:
        for call_id in call_ids:
            try:
                await self.dialer.dial(call_id)
            except Exception as exc:
                log.exception("dialer refused campaign call", call_id=call_id)
                await fail_call(
                    self.db,
                    call_id,
                    ended_reason=DialEndedReason.FAILED,
                    error=str(exc) or type(exc).__name__,
                    now=self.clock.now(),
                    lifecycle=self.lifecycle,
                )
