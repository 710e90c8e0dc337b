"""A campaign worked by two real ``flireo serve`` workers on one PostgreSQL and one
Redis, dialing a sipp carrier directly; worker B is SIGKILLed mid-way.

Both workers' campaign runners claim leads (leases, ``FOR UPDATE SKIP LOCKED``);
B's calls left behind are ended ``worker-died`` by A's reaper, and those leads are
final: never dialed again, whatever ``max_attempts`` says (the INVITE may have
reached the callee). From sipp's message trace (distinct Call-IDs of the INVITEs
per number) and the database:

* both workers dialed; at least one call ended ``worker-died``;
* no number got more INVITEs than its lead has call records, and no INVITE
  reached a number after its ``worker-died`` call;
* the campaign completes on A alone; every lead is final.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from flireo.domain.campaigns import FINAL_LEAD_STATUSES
from flireo.store.db import Database
from flireo.store.tables import Call, CampaignLead
from tests.cluster.workers import cluster, log_tail
from tests.live.test_campaign_sipp import (
    CampaignHarness,
    invites_received,
    start_carrier,
    stop_carrier,
)
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

LEADS = 150
KILL_AT = 40  # final leads when B is killed


async def test_campaign_with_a_sigkilled_worker_dials_no_lead_twice(
    tmp_path: Path,
    sipp: Sipp,  # noqa: F811 - the fixture imported above
) -> None:
    carrier = await start_carrier(sipp)
    env = {"FLIREO_INITIAL_MINUTES_BALANCE": "100000", "FLIREO_SIP_RING_TIMEOUT_SECONDS": "15"}
    try:
        async with cluster(tmp_path, 2, provision=False, env=env) as (workers, _hooks, db_url):
            a, b = workers.workers
            harness = CampaignHarness(a, carrier, workers.llm, workers.llm_url)
            try:
                run = await harness.create_campaign(
                    LEADS, concurrency=12, rate=12.0, max_attempts=3, retry_delay_seconds=1
                )
                await harness.set_status(run.campaign_id, "scheduled")
                deadline = time.monotonic() + 120
                killed = False
                campaign: dict[str, object] = {}
                while time.monotonic() < deadline:
                    campaign = await harness.campaign(run.campaign_id) or {}
                    if campaign.get("status") == "completed":
                        break
                    if not killed and int(str(campaign.get("completed_leads", 0))) >= KILL_AT:
                        b.kill()
                        killed = True
                    await asyncio.sleep(0.2)
                assert killed, campaign
                assert campaign.get("status") == "completed", (campaign, *log_tail(workers))
            finally:
                await harness.aclose()
            await stop_carrier(carrier)

            db = Database(db_url)
            try:
                async with db.read() as s:
                    leads = list(
                        (
                            await s.execute(
                                select(CampaignLead).where(
                                    CampaignLead.campaign_id == run.campaign_id
                                )
                            )
                        ).scalars()
                    )
                    calls = list(
                        (
                            await s.execute(
                                select(Call)
                                .where(Call.campaign_id == run.campaign_id)
                                .order_by(Call.created_at)
                            )
                        ).scalars()
                    )
            finally:
                await db.dispose()
    finally:
        await stop_carrier(carrier)

    assert len(leads) == LEADS
    assert all(lead.status in FINAL_LEAD_STATUSES for lead in leads)
    owners = Counter(call.owner_node for call in calls)
    assert owners[workers.node_id(0)] > 0, owners
    assert owners[workers.node_id(1)] > 0, owners
    died = [call for call in calls if call.ended_reason == "worker-died"]
    assert died, Counter(call.ended_reason for call in calls)
    assert {call.owner_node for call in died} == {workers.node_id(1)}

    calls_of: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        calls_of[call.caller_phone or ""].append(call)
    invites: dict[str, set[str]] = defaultdict(set)
    for invite in invites_received(carrier):
        invites[invite.number].add(invite.call_id)
    for lead in leads:
        mine = calls_of[lead.phone_number]
        got = invites.get(lead.phone_number, set())
        # one INVITE (Call-ID) per attempt at most
        assert len(got) <= len(mine), (lead.phone_number, len(got), mine)
        assert lead.attempts == len(mine)
        reaped = [c for c in mine if c.ended_reason == "worker-died"]
        if reaped:  # the worker-died call was the lead's last attempt
            assert mine[-1] is reaped[-1], [c.ended_reason for c in mine]
            assert lead.next_attempt_at is None
    print(
        f"campaign: {len(calls)} calls, {len(died)} worker-died, "
        f"per worker {dict(owners)}, INVITEs {sum(len(v) for v in invites.values())}"
    )
