"""Exactly-once dialing: two runners on one database, and a runner killed mid-pass."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from flireo.campaigns.runner import CampaignRunner
from flireo.clock import ManualClock, SystemClock
from flireo.services.call_lifecycle import CallLifecycle
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import CampaignLead
from tests.campaigns.carrier import SimulatedCarrier
from tests.campaigns.sim import drive
from tests.campaigns.test_runner import MONDAY_MORNING, numbers
from tests.campaigns.world import make_world


async def same_database_elsewhere(db: Database) -> Database:
    """The same database as another process would open it (own engine and pool)."""
    if db.dialect != "postgresql":
        return Database(db.url)
    async with db.engine.connect() as conn:
        schema = (await conn.execute(text("SHOW search_path"))).scalar_one()
    return Database(db.url, connect_args={"server_settings": {"search_path": schema}})


async def open_leads(db: Database, campaign_id: str) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(CampaignLead)
                .where(
                    CampaignLead.campaign_id == campaign_id,
                    CampaignLead.status.in_(("pending", "calling")),
                )
            )
            or 0
        )


def zone_where_it_is_midday(now: datetime) -> str:
    """A fixed-offset zone where it is now about 13:00 (real-clock tests must not
    depend on the hour they run at)."""
    offset = (13 - now.hour + 12) % 24 - 12  # hours east of UTC, -12..+11
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


async def test_two_runners_on_one_database_never_dial_a_lead_twice(db: Database) -> None:
    world = await make_world(db)
    clock = SystemClock()
    zone = zone_where_it_is_midday(clock.now())
    leads = [{**lead, "timezone": zone} for lead in numbers(80)]
    cid = await world.campaign(leads, timezone=zone, calls_per_second=40, max_concurrent_calls=12)
    other_db = await same_database_elsewhere(db)
    nodes = []
    for node_id, node_db in (("node-a", db), ("node-b", other_db)):
        carrier = SimulatedCarrier(node_db, clock, talk_seconds=0.05)
        runner = CampaignRunner(
            node_db, carrier, clock, node_id, poll_seconds=0.02, idle_seconds=0.05
        )
        nodes.append((runner, carrier))
    try:
        for runner, carrier in nodes:
            await carrier.start()
            await runner.start()
        deadline = time.monotonic() + 30
        while await open_leads(db, cid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        for runner, carrier in nodes:
            await runner.stop()
            await carrier.stop()
        await other_db.dispose()

    dials = [d for _, carrier in nodes for d in carrier.dials]
    per_lead = Counter(d.lead_id for d in dials)
    assert len(per_lead) == 80
    assert set(per_lead.values()) == {1}
    assert all(carrier.dials for _, carrier in nodes)  # both runners did dial
    assert max(d.active_in_campaign for d in dials) <= 12
    assert await world.campaign_status(cid) == "completed"


class DyingProcess:
    """Process A's telephony: it dials, until the process dies in the middle of
    handing the ``die_on``-th call over (the call stays ``dialing``)."""

    def __init__(self, carrier: SimulatedCarrier, die_on: int) -> None:
        self.carrier, self.die_on = carrier, die_on
        self.handed = 0
        self.dying = asyncio.Event()

    async def dial(self, call_id: str) -> None:
        self.handed += 1
        if self.handed == self.die_on:
            self.dying.set()
            await asyncio.Event().wait()  # the process is gone; nothing more happens
        await self.carrier.dial(call_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_killed_runner_is_reconciled_from_call_records_without_redialing(
    db: Database, tmp_path: Path
) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    cid = await world.campaign(
        numbers(10),
        calls_per_second=5,
        max_concurrent_calls=20,
        max_attempts=2,
        retry_delay_seconds=600,
    )
    phone_a = SimulatedCarrier(db, clock, talk_seconds=300)
    dying = DyingProcess(phone_a, die_on=3)
    runner_a = CampaignRunner(db, dying, clock, "node-a", burst_seconds=1.0, lease_seconds=120)
    await runner_a.run_once()  # lead 0
    await clock.advance(1)
    killed = asyncio.create_task(runner_a.run_once())  # claims leads 1-5, dies handing over 2
    await asyncio.wait_for(dying.dying.wait(), 10)
    killed.cancel()  # no cleanup: leases and dialing calls stay behind
    leads = await world.leads(cid)
    in_a = {p for p, x in leads.items() if x.status == "calling"}
    assert len(in_a) == 6
    assert all(leads[p].lease_owner == "node-a" for p in in_a)
    dialed_by_a = {d.phone for d in phone_a.dials}
    assert len(dialed_by_a) == 2  # answered, in progress

    phone_b = SimulatedCarrier(db, clock)
    lifecycle = CallLifecycle(db, Settings(data_dir=tmp_path), clock)
    runner_b = CampaignRunner(
        db, phone_b, clock, "node-b", lifecycle=lifecycle, poll_seconds=5, idle_seconds=30
    )
    await drive(runner_b, clock, 100, phone_a, phone_b)
    # B dials the untouched leads only; A's leads wait for their calls or leases
    assert {d.phone for d in phone_b.dials} == set(leads) - in_a

    await drive(runner_b, clock, 250, phone_a, phone_b)
    leads = await world.leads(cid)
    calls = {c.id: c for c in await world.calls(cid)}
    for phone in dialed_by_a:  # their calls ended in A's telephony: outcome recorded
        assert (leads[phone].status, leads[phone].attempts) == ("completed", 1)
    lost = in_a - dialed_by_a
    assert len(lost) == 4
    for phone in lost:
        lead = leads[phone]
        assert (lead.status, lead.outcome, lead.attempts) == ("pending", "failed", 1)
        call = calls[lead.call_id or ""]
        assert (call.status, call.ended_reason) == ("failed", "dial-interrupted")
        assert call.ended_at is not None
        assert call.ended_at >= MONDAY_MORNING + timedelta(seconds=121)
    assert not any(d.phone in in_a for d in phone_b.dials)

    await drive(runner_b, clock, 700, phone_a, phone_b)
    again = Counter(d.phone for d in phone_b.dials if d.phone in in_a)
    assert again == dict.fromkeys(lost, 1)  # the counted attempt is retried once, after the delay
    leads = await world.leads(cid)
    assert {x.status for x in leads.values()} == {"completed"}
    assert {p: x.attempts for p, x in leads.items() if p in lost} == dict.fromkeys(lost, 2)
    assert await world.campaign_status(cid) == "completed"


async def test_stop_hands_every_claimed_call_to_the_dialer(db: Database) -> None:
    world = await make_world(db)
    clock = SystemClock()
    zone = zone_where_it_is_midday(clock.now())
    leads = [{**lead, "timezone": zone} for lead in numbers(300)]
    cid = await world.campaign(leads, timezone=zone, calls_per_second=100)
    carrier = SimulatedCarrier(db, clock)
    runner = CampaignRunner(db, carrier, clock, "node-a", idle_seconds=0.05)
    await runner.start()
    deadline = time.monotonic() + 30
    while len(carrier.dials) < 30 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await runner.stop()
    assert len(carrier.dials) >= 30
    calls = await world.calls(cid)
    assert {c.id for c in calls} == {d.call_id for d in carrier.dials}
    assert await open_leads(db, cid) > 0  # stopped mid-campaign
    assert {c.status for c in calls} == {"ended"}
