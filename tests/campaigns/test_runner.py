"""The campaign runner against a simulated phone network, in simulated time."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from flireo.campaigns.do_not_call import add_to_do_not_call
from flireo.campaigns.runner import CampaignRunner
from flireo.clock import ManualClock
from flireo.store.db import Database
from flireo.store.tables import Call, CampaignLead, DoNotCall
from tests.campaigns.carrier import SimulatedCarrier
from tests.campaigns.sim import drive
from tests.campaigns.world import make_world

#: Monday 4 May 2026, 10:00 in Amsterdam: inside every Dutch lead's window
MONDAY_MORNING = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def numbers(n: int, prefix: str = "+316000") -> list[dict[str, Any]]:
    return [{"phone_number": f"{prefix}{i:05d}", "variables": {"name": f"L{i}"}} for i in range(n)]


def runner_for(db: Database, carrier: SimulatedCarrier, clock: ManualClock) -> CampaignRunner:
    return CampaignRunner(db, carrier, clock, "node-a", poll_seconds=5.0, idle_seconds=60.0)


async def test_every_lead_is_called_once_with_its_own_prompt_and_the_campaign_completes(
    db: Database,
) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    leads: list[dict[str, Any]] = [
        {"phone_number": "+31612345678", "variables": {"name": "John", "company": "Acme Corp"}},
        {"phone_number": "+31612345679", "variables": {"name": "Mia", "company": "Globex"}},
        {"phone_number": "+31612345680", "variables": {"name": "Ann"}},
    ]
    cid = await world.campaign(
        leads, system_message_template="You call {{name}} of {{company}}.", calls_per_second=5
    )
    carrier = SimulatedCarrier(db, clock, talk_seconds=45)
    await drive(runner_for(db, carrier, clock), clock, 120, carrier)

    assert sorted(d.phone for d in carrier.dials) == sorted(x["phone_number"] for x in leads)
    calls = {c.caller_phone: c for c in await world.calls(cid)}
    john = calls["+31612345678"]
    assert john.overrides is not None
    assert john.overrides["system_message"] == "You call John of Acme Corp."
    assert john.overrides["firstMessage"] == john.first_message == "Hi John!"
    assert john.campaign_id == cid
    assert john.direction == "outbound"
    assert calls["+31612345680"].overrides["system_message"] == "You call Ann of {{company}}."  # type: ignore[index]
    assert {c.status for c in calls.values()} == {"ended"}
    by_phone = await world.leads(cid)
    assert {(x.status, x.outcome, x.attempts) for x in by_phone.values()} == {
        ("completed", "completed", 1)
    }
    assert by_phone["+31612345678"].call_id == john.id
    assert by_phone["+31612345678"].last_attempt_at == john.created_at
    assert await world.campaign_status(cid) == "completed"


async def test_retries_follow_the_outcome_until_max_attempts(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    script = {
        "+31600000001": ["busy", "busy", "answer"],
        "+31600000002": ["no-answer", "no-answer", "no-answer"],
        "+31600000003": ["voicemail", "answer"],
        "+31600000004": ["fail", "fail", "fail"],
        "+31600000005": ["answer"],
    }
    cid = await world.campaign(
        [{"phone_number": p} for p in script],
        max_attempts=3,
        retry_delay_seconds=600,
        calls_per_second=10,
    )
    carrier = SimulatedCarrier(db, clock, script=script, talk_seconds=60, ring_seconds=30)
    await drive(runner_for(db, carrier, clock), clock, 3 * 3600, carrier)

    dialed = Counter(d.phone for d in carrier.dials)
    assert dialed == {
        "+31600000001": 3,
        "+31600000002": 3,
        "+31600000003": 2,
        "+31600000004": 3,
        "+31600000005": 1,
    }
    leads = await world.leads(cid)
    assert {p: (x.status, x.outcome, x.attempts) for p, x in leads.items()} == {
        "+31600000001": ("completed", "completed", 3),
        "+31600000002": ("no-answer", "no-answer", 3),
        "+31600000003": ("completed", "completed", 2),
        "+31600000004": ("failed", "failed", 3),
        "+31600000005": ("completed", "completed", 1),
    }
    calls = await world.calls(cid)
    for phone in script:
        mine = [c for c in calls if c.caller_phone == phone]
        for before, after in itertools.pairwise(mine):
            assert before.ended_at is not None
            wait = after.created_at - before.ended_at
            assert timedelta(seconds=600) <= wait < timedelta(seconds=605), (phone, wait)
        assert leads[phone].call_id == mine[-1].id
        assert leads[phone].last_attempt_at == mine[-1].created_at
    assert await world.campaign_status(cid) == "completed"


async def test_do_not_call_numbers_are_never_dialed(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    assert await add_to_do_not_call(db, world.org_id, "+31600000001", "asked by mail", "api")
    assert not await add_to_do_not_call(db, world.org_id, "+31600000001", "again", "api")
    script = {"+31600000002": ["busy", "answer"]}
    cid = await world.campaign(
        [{"phone_number": f"+3160000000{i}"} for i in (1, 2, 3)],
        retry_delay_seconds=600,
        calls_per_second=10,
    )
    carrier = SimulatedCarrier(db, clock, script=script)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 60, carrier)
    # the caller of ...02 asks to be left alone (e.g. on an inbound call) before the retry
    added = await add_to_do_not_call(
        db, world.org_id, "+31 6 0000 0002", "said: stop calling me", "caller-request"
    )
    assert added
    await drive(runner, clock, 1200, carrier)

    assert Counter(d.phone for d in carrier.dials) == {"+31600000002": 1, "+31600000003": 1}
    leads = await world.leads(cid)
    assert (leads["+31600000001"].status, leads["+31600000001"].attempts) == ("do-not-call", 0)
    assert leads["+31600000001"].call_id is None
    assert (leads["+31600000002"].status, leads["+31600000002"].attempts) == ("do-not-call", 1)
    assert leads["+31600000003"].status == "completed"
    async with db.read() as s:
        entry = await s.get(DoNotCall, (world.org_id, "+31600000002"))
    assert entry is not None
    assert entry.source == "caller-request"
    assert await world.campaign_status(cid) == "completed"


async def test_pause_stops_new_dials_within_a_second_and_resume_continues(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    cid = await world.campaign(numbers(30), calls_per_second=1, max_concurrent_calls=50)
    carrier = SimulatedCarrier(db, clock, talk_seconds=20)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 10.5, carrier)
    before = len(carrier.dials)
    assert 9 <= before <= 12

    await world.set_status(cid, "paused")
    paused_at = clock.now()
    await drive(runner, clock, 300, carrier)
    assert [d.at for d in carrier.dials if d.at > paused_at + timedelta(seconds=1)] == []
    assert len(carrier.dials) == before
    leads = await world.leads(cid)
    # calls in progress at the pause went on and were recorded
    assert Counter(x.status for x in leads.values()) == {
        "completed": before,
        "pending": 30 - before,
    }

    await world.set_status(cid, "scheduled")
    await drive(runner, clock, 60, carrier)
    assert sorted(d.phone for d in carrier.dials) == sorted(x["phone_number"] for x in numbers(30))
    assert await world.campaign_status(cid) == "completed"


async def test_leads_added_and_removed_while_running(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    cid = await world.campaign(numbers(3), calls_per_second=10)
    carrier = SimulatedCarrier(db, clock, talk_seconds=100)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 5, carrier)
    assert len(carrier.dials) == 3

    removed = carrier.dials[0]
    async with db.transaction() as s:  # DELETE /campaigns/{id}/leads/{leadId}
        lead = await s.get(CampaignLead, removed.lead_id)
        await s.delete(lead)
    await world.add_leads(cid, numbers(2, prefix="+316100"))
    await drive(runner, clock, 300, carrier)

    assert len(carrier.dials) == 5
    calls = {c.id: c for c in await world.calls(cid)}
    cut = calls[removed.call_id]
    assert (cut.status, cut.ended_reason) == ("ended", "customer-ended-call")
    assert cut.duration_seconds == 100  # the call in progress went on to its end
    leads = await world.leads(cid)
    assert len(leads) == 4
    assert {x.status for x in leads.values()} == {"completed"}
    assert await world.campaign_status(cid) == "completed"


async def test_campaign_concurrency_cap(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    await world.campaign(numbers(20), calls_per_second=10, max_concurrent_calls=3)
    carrier = SimulatedCarrier(db, clock, talk_seconds=30)
    await drive(runner_for(db, carrier, clock), clock, 600, carrier)
    assert len(carrier.dials) == 20
    assert max(d.active_in_campaign for d in carrier.dials) == 3


async def test_trunk_cap_is_shared_by_the_campaigns_on_its_numbers(db: Database) -> None:
    world = await make_world(db, trunk_max=4)
    second = await world.add_number("+31850835038")
    clock = ManualClock(MONDAY_MORNING)
    await world.campaign(numbers(12), calls_per_second=10, max_concurrent_calls=10)
    await world.campaign(
        numbers(12, prefix="+316100"),
        number_id=second,
        calls_per_second=10,
        max_concurrent_calls=10,
    )
    carrier = SimulatedCarrier(db, clock, talk_seconds=30)
    await drive(runner_for(db, carrier, clock), clock, 900, carrier)
    assert len(carrier.dials) == 24
    assert max(d.active_on_trunk for d in carrier.dials) == 4


async def test_org_cap_counts_inbound_calls_and_keeps_the_inbound_reserve(db: Database) -> None:
    world = await make_world(db, org_max=6, reserved_inbound=2, trunk_max=100)
    clock = ManualClock(MONDAY_MORNING)
    await world.inbound_call("call-_+31201111111_inbound", clock.now())
    await world.campaign(numbers(15), calls_per_second=10, max_concurrent_calls=10)
    carrier = SimulatedCarrier(db, clock, talk_seconds=30)
    await drive(runner_for(db, carrier, clock), clock, 900, carrier)
    assert len(carrier.dials) == 15
    # 6 allowed, 2 kept for inbound, 1 inbound call in progress → 3 campaign calls
    assert max(d.active_in_campaign for d in carrier.dials) == 3
    assert max(d.active_in_org for d in carrier.dials) == 4


async def test_trunk_cap_keeps_the_inbound_reserve_too(db: Database) -> None:
    world = await make_world(db, reserved_inbound=1, trunk_max=3)
    clock = ManualClock(MONDAY_MORNING)
    await world.campaign(numbers(8), calls_per_second=10, max_concurrent_calls=10)
    carrier = SimulatedCarrier(db, clock, talk_seconds=30)
    await drive(runner_for(db, carrier, clock), clock, 600, carrier)
    assert len(carrier.dials) == 8
    assert max(d.active_on_trunk for d in carrier.dials) == 2


async def test_requested_and_achieved_calls_per_second(db: Database) -> None:
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    await world.campaign(numbers(30), calls_per_second=2.5, max_concurrent_calls=1000)
    await world.campaign(
        numbers(80, prefix="+316100"), calls_per_second=20, max_concurrent_calls=1000
    )
    carrier = SimulatedCarrier(db, clock)
    await drive(runner_for(db, carrier, clock), clock, 15, carrier)
    assert len(carrier.dials) == 110
    for prefix, rate in (("+316000", 2.5), ("+316100", 20.0)):
        times = sorted(d.at for d in carrier.dials if d.phone.startswith(prefix))
        achieved = (len(times) - 1) / (times[-1] - times[0]).total_seconds()
        assert abs(achieved - rate) / rate < 0.02, (rate, achieved)
        busiest = max(sum(1 for u in times if t <= u < t + timedelta(seconds=1)) for t in times)
        assert busiest <= rate + max(1.0, rate * 0.25), (rate, busiest)


async def test_nothing_is_dialed_without_minutes_or_an_active_agent(db: Database) -> None:
    world = await make_world(db, minutes=0)
    clock = ManualClock(MONDAY_MORNING)
    cid = await world.campaign(numbers(3), calls_per_second=10)
    carrier = SimulatedCarrier(db, clock)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 30, carrier)
    assert carrier.dials == []
    async with db.transaction() as s:
        from flireo.store.tables import Agent, Organization

        org = await s.get(Organization, world.org_id)
        agent = await s.get(Agent, world.agent_id)
        assert org is not None
        assert agent is not None
        org.minutes_balance = 50
        agent.is_active = False
    await drive(runner, clock, 30, carrier)
    assert carrier.dials == []
    async with db.transaction() as s:
        agent = await s.get(Agent, world.agent_id)
        assert agent is not None
        agent.is_active = True
    await drive(runner, clock, 30, carrier)
    assert len(carrier.dials) == 3
    async with db.read() as s:
        pending = await s.scalar(
            select(CampaignLead.id).where(
                CampaignLead.campaign_id == cid, CampaignLead.status != "completed"
            )
        )
    assert pending is None


async def test_leads_wait_for_their_window_and_a_new_schedule_is_picked_up(db: Database) -> None:
    world = await make_world(db, outbound_countries=["NL", "US"])  # a lead in New York
    clock = ManualClock(MONDAY_MORNING)  # 08:00 UTC
    cid = await world.campaign(
        numbers(2),
        schedule_start_time="09:00",
        schedule_end_time="10:00",
        timezone="UTC",
        calls_per_second=10,
    )
    other = await world.campaign(
        [{"phone_number": "+12125550123"}],
        calls_per_second=10,  # New York: 04:00 there
    )
    carrier = SimulatedCarrier(db, clock)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 600, carrier)
    assert carrier.dials == []
    deferred = (await world.leads(other))["+12125550123"]
    assert deferred.status == "pending"
    assert deferred.next_attempt_at == datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # 08:00 EDT

    async with db.transaction() as s:  # PATCH /campaigns/{id} with a window open now
        from flireo.domain.campaigns import CampaignUpdate
        from flireo.services.campaigns import update_campaign

        await update_campaign(
            s,
            world.org_id,
            cid,
            CampaignUpdate.model_validate({"schedule_start_time": "08:00"}),
        )
    await drive(runner, clock, 5, carrier)
    assert len(carrier.dials) == 2
    await drive(runner, clock, 4 * 3600, carrier)
    assert [d.at for d in carrier.dials if d.phone == "+12125550123"] == [
        datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    ]


async def test_the_dial_policy_refuses_leads_once_without_dialing(db: Database) -> None:
    """Toll fraud (issue 14): a lead abroad (the organization's numbers are Dutch) or on
    a premium-rate line is never dialed; its call is recorded ``rejected`` once and the
    lead is final (no retry); the allowed lead is dialed."""
    world = await make_world(db)
    clock = ManualClock(MONDAY_MORNING)
    cid = await world.campaign(
        [
            {"phone_number": "+31612345678"},
            {"phone_number": "+4915123456789"},  # Germany: not a country of its numbers
            {"phone_number": "+319061234"},  # Dutch premium rate
        ],
        calls_per_second=10,
        max_attempts=3,
    )
    carrier = SimulatedCarrier(db, clock)
    runner = runner_for(db, carrier, clock)
    await drive(runner, clock, 600, carrier)
    assert [d.phone for d in carrier.dials] == ["+31612345678"]
    leads = await world.leads(cid)
    for number, reason in (
        ("+4915123456789", "call-start-error-destination-country-not-allowed"),
        ("+319061234", "call-start-error-premium-destination-not-allowed"),
    ):
        lead = leads[number]
        assert (lead.status, lead.attempts, lead.next_attempt_at) == ("failed", 1, None)
        async with db.read() as s:
            call = await s.get(Call, lead.call_id)
        assert call is not None
        assert (call.status, call.ended_reason) == ("rejected", reason)
