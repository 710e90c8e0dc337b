"""Signed, ordered, retried webhooks from the outbox, delivered to a real receiver."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from flireo import __version__
from flireo.clock import ManualClock
from flireo.domain.usage import VendorUsage
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.container import Services
from flireo.services.usage import account
from flireo.store.tables import Agent, Call, Organization, UsageLog, WebhookEvent
from flireo.webhooks.delivery import WebhookDeliverer, next_delay
from flireo.webhooks.signing import verify_flireo_signature
from tests.api.conftest import Org
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
MESSAGES = [
    {"role": "assistant", "content": "Hello, Acme here."},
    {"role": "user", "content": "When are you open?"},
    {"role": "assistant", "content": "From nine to five."},
]


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    r = WebhookReceiver()
    with serve(r.app()) as srv:
        yield r, srv


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


def lifecycle(services: Services, clock: ManualClock) -> CallLifecycle:
    return CallLifecycle(services.db, services.settings, clock)


def deliverer(services: Services, clock: ManualClock) -> WebhookDeliverer:
    return WebhookDeliverer(
        services.db, services.http, services.vault, services.settings, clock, node_id="test"
    )


async def make_call(
    services: Services,
    org: Org,
    url: str,
    *,
    events: list[str] | None = None,
    analysis_plan: dict[str, object] | None = None,
    call_id: str | None = None,
) -> str:
    call_id = call_id or f"call-_+31612345678_{secrets.token_hex(4)}"
    async with services.db.transaction() as s:
        agent = Agent(
            org_id=org.id,
            name="Support",
            webhook_url=url,
            webhook_events=events or [],
            analysis_plan=analysis_plan,
        )
        s.add(agent)
        await s.flush()
        secret = await services.vault.put(s, org.id, "webhook_secret", SECRET)
        agent.webhook_secret_id = secret.id
        s.add(
            Call(
                id=call_id,
                org_id=org.id,
                agent_id=agent.id,
                direction="inbound",
                status="connecting",
                caller_phone="+31612345678",
                assistant_phone="+31850835037",
            )
        )
    return call_id


async def deliver_all(d: WebhookDeliverer, clock: ManualClock, *, step: float = 1.0) -> None:
    for _ in range(50):
        if not await d.run_once():
            pending = await pending_events(d)
            if not pending:
                return
            await clock.advance(step)


async def pending_events(d: WebhookDeliverer) -> int:
    async with d.db.read() as s:
        rows = await s.execute(
            select(WebhookEvent).where(WebhookEvent.status.in_(("pending", "held")))
        )
        return len(rows.scalars().all())


async def test_call_lifecycle_webhooks_are_signed_both_ways(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    call_id = await make_call(services, org, srv.url + "/hook")
    life = lifecycle(services, clock)
    assert await life.transition(call_id, "in-progress")
    await clock.advance(84)
    done = CallCompletion(
        status="ended",
        ended_reason="customer-ended-call",
        messages=MESSAGES,
        transcript="AI: Hello, Acme here.\nUser: When are you open?\nAI: From nine to five.",
        usage=VendorUsage(stt_seconds=3.5, llm_prompt_tokens=120, tts_characters=40),
    )
    assert await life.finish(call_id, done)
    assert not await life.finish(call_id, done)  # a call ends exactly once
    await deliver_all(deliverer(services, clock), clock)

    got = r.delivered()
    types = [(x.json["message"]["type"], x.json["message"]["call"]["status"]) for x in got]
    assert types == [
        ("status-update", "in-progress"),
        ("status-update", "ended"),
        ("end-of-call-report", "ended"),
    ]
    report = got[-1].json["message"]
    assert report["call"] == {
        "id": call_id,
        "type": "inboundPhoneCall",
        "status": "ended",
        "pipeline": "standard",
    }
    assert report["phoneNumber"]["number"] == "+31850835037"
    assert report["customer"] == {"number": "+31612345678"}
    assert report["durationSeconds"] == 84
    assert report["endedReason"] == "customer-ended-call"
    assert report["messages"] == MESSAGES
    assert report["cost"] == 0.14
    assert report["timestamp"].endswith("Z")

    now = time.time()
    for x in got:
        h = x.headers
        assert h["user-agent"] == f"Flireo/{__version__}"
        assert h["x-webhook-event"] == x.json["message"]["type"]
        assert verify_flireo_signature(
            SECRET, h["x-webhook-timestamp"], x.body, h["x-webhook-signature"], now=now
        )
        assert Webhook(SECRET).verify(x.body, h) == x.json
        # tampering, a wrong secret and an old timestamp are all caught
        assert not verify_flireo_signature(
            SECRET, h["x-webhook-timestamp"], x.body + b" ", h["x-webhook-signature"], now=now
        )
        assert not verify_flireo_signature(
            "other", h["x-webhook-timestamp"], x.body, h["x-webhook-signature"], now=now
        )
        assert not verify_flireo_signature(
            SECRET, h["x-webhook-timestamp"], x.body, h["x-webhook-signature"], now=now + 3600
        )
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(x.body.replace(b"+31612345678", b"+31612345679"), h)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(x.body, h)
        stale = {**h, "webhook-timestamp": str(int(now) - 3600)}
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(x.body, stale)
    assert len({x.webhook_id for x in got}) == 3

    async with services.db.read() as s:
        log = (await s.execute(select(UsageLog).where(UsageLog.call_id == call_id))).scalar_one()
        org_row = await s.get(Organization, org.id)
    assert (log.duration_seconds, log.minutes_used, log.cost) == (84, 2, Decimal("0.1400"))
    assert (log.stt_seconds, log.llm_prompt_tokens, log.tts_characters) == (3.5, 120, 40)
    assert org_row is not None
    assert org_row.minutes_balance == 100 - 2


async def test_retries_keep_the_webhook_id_and_the_order_per_call(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    r.script(503, 503, 500)
    call_id = await make_call(services, org, srv.url + "/hook")
    life = lifecycle(services, clock)
    await life.transition(call_id, "in-progress")
    await life.finish(call_id, CallCompletion(status="ended", ended_reason="customer-ended-call"))
    d = deliverer(services, clock)
    assert await d.run_once() == 1  # only the first event of the call is due: order per call
    assert r.requests[-1].status == 503
    first_id = r.requests[-1].webhook_id
    assert await d.run_once() == 0  # not due yet (5 s ± 10 %)
    await clock.advance(6)
    assert await d.run_once() == 1
    await clock.advance(400)  # the third attempt waits ~5 minutes
    assert await d.run_once() == 1
    await clock.advance(1000)
    assert await d.run_once() == 0  # the fourth waits ~30 minutes
    await clock.advance(1000)
    await deliver_all(d, clock)
    assert [x.webhook_id for x in r.requests[:4]] == [first_id] * 4
    assert [x.status for x in r.requests[:4]] == [503, 503, 500, 200]
    kinds = [x.json["message"]["type"] for x in r.delivered()]
    assert kinds == ["status-update", "status-update", "end-of-call-report"]

    api = await services_api(services, org)
    async with api:
        log = (await api.get(f"/calls/{call_id}/webhooks")).json()["webhooks"]
        assert [e["status"] for e in log] == ["delivered"] * 3
        assert [d["status_code"] for d in log[0]["deliveries"]] == [503, 503, 500, 200]
        again = await api.post(f"/calls/{call_id}/webhooks/{log[2]['id']}/redeliver")
        assert again.status_code == 200
        assert again.json()["status"] == "pending"
        await d.run_once()
        assert r.requests[-1].webhook_id == log[2]["id"]
        missing = await api.post(f"/calls/{call_id}/webhooks/nope/redeliver")
        assert missing.status_code == 404


async def services_api(services: Services, org: Org) -> httpx.AsyncClient:
    from flireo.api.app import create_app

    app = create_app(services, manage_lifecycle=False)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test/api/v1",
        headers=org.headers,
    )


async def test_gone_disables_the_endpoint_and_retry_after_is_honoured(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    r.script((429, {"Retry-After": "120"}))
    call_id = await make_call(services, org, srv.url + "/hook")
    life = lifecycle(services, clock)
    await life.transition(call_id, "in-progress")
    d = deliverer(services, clock)
    await d.run_once()
    async with services.db.read() as s:
        event = (await s.execute(select(WebhookEvent))).scalars().one()
    assert 119 <= (event.next_attempt_at - clock.now()).total_seconds() <= 121
    r.script(410)
    await clock.advance(121)
    await d.run_once()
    await life.finish(call_id, CallCompletion(status="ended", ended_reason="customer-ended-call"))
    await clock.advance(1)
    assert await d.run_once() == 0
    async with services.db.read() as s:
        agent = (await s.execute(select(Agent))).scalars().one()
        statuses = [e.status for e in (await s.execute(select(WebhookEvent))).scalars()]
    assert agent.webhook_disabled_at is not None
    assert statuses == ["disabled"]  # nothing new is queued for a disabled endpoint


async def test_private_targets_are_refused_unless_allowed(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    services.settings.allow_private_webhooks = False
    call_id = await make_call(services, org, srv.url + "/hook")
    await lifecycle(services, clock).transition(call_id, "in-progress")
    await deliverer(services, clock).run_once()
    assert r.requests == []
    async with services.db.read() as s:
        event = (await s.execute(select(WebhookEvent))).scalars().one()
    assert event.status == "failed"
    assert event.last_error is not None
    assert "non-public" in event.last_error


async def test_events_are_filtered_by_the_agent_selection(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    call_id = await make_call(services, org, srv.url + "/hook", events=["end-of-call-report"])
    life = lifecycle(services, clock)
    await life.transition(call_id, "in-progress")
    await life.finish(call_id, CallCompletion(status="ended", ended_reason="customer-ended-call"))
    await deliver_all(deliverer(services, clock), clock)
    assert [x.json["message"]["type"] for x in r.delivered()] == ["end-of-call-report"]


async def test_report_waits_for_analysis_at_most_the_configured_time(
    services: Services, org: Org, receiver: tuple[WebhookReceiver, ServerThread], clock: ManualClock
) -> None:
    r, srv = receiver
    services.settings.analysis_max_wait_seconds = 30
    plan = {"structuredDataPlan": {"enabled": True, "schema": {"type": "object"}}}
    call_id = await make_call(services, org, srv.url + "/hook", analysis_plan=plan)
    life = lifecycle(services, clock)
    await life.transition(call_id, "in-progress")
    await life.finish(
        call_id,
        CallCompletion(status="ended", ended_reason="customer-ended-call", messages=MESSAGES),
    )
    d = deliverer(services, clock)
    await deliver_all(d, clock, step=0.5)  # stops when only the held report is left
    assert [x.json["message"]["type"] for x in r.delivered()] == ["status-update", "status-update"]
    await clock.advance(31)
    await d.run_once()
    report = r.delivered()[-1].json["message"]
    assert report["type"] == "end-of-call-report"
    assert "analysis" not in report  # sent without it; the call record gets it later
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
    assert call is not None
    assert call.analysis_status == "pending"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_call_endings_bill_exactly(
    services: Services, org: Org, clock: ManualClock
) -> None:
    """100 calls ending at once: balance = initial - sum of billed minutes, exactly."""
    async with services.db.transaction() as s:
        org_row = await s.get(Organization, org.id)
        assert org_row is not None
        org_row.minutes_balance = 10_000
        started = clock.now() - timedelta(seconds=1)
        for i in range(100):
            s.add(
                Call(
                    id=f"bill-{i}",
                    org_id=org.id,
                    direction="inbound",
                    status="in-progress",
                    started_at=started - timedelta(seconds=i * 7),
                )
            )
    life = lifecycle(services, clock)
    done = CallCompletion(status="ended", ended_reason="customer-ended-call")
    results = await asyncio.gather(
        *(life.finish(f"bill-{i}", done) for i in range(100)),
        *(life.finish(f"bill-{i}", done) for i in range(0, 100, 10)),  # duplicate endings
    )
    assert sum(results) == 100
    async with services.db.read() as s:
        logs = (await s.execute(select(UsageLog))).scalars().all()
        org_row = await s.get(Organization, org.id)
    assert len(logs) == 100
    assert org_row is not None
    assert org_row.minutes_balance == 10_000 - sum(log.minutes_used for log in logs)
    assert sum(log.minutes_used for log in logs) == sum(-(-(1 + i * 7) // 60) for i in range(100))
    # and /account tells the same story
    async with services.db.read() as s:
        shown = await account(s, org.id, services.settings, datetime.now(UTC))
    assert shown.minutes_balance == org_row.minutes_balance
    assert shown.monthly_usage_minutes == sum(log.minutes_used for log in logs)


def test_retry_schedule_has_jitter_and_ends() -> None:
    import random

    rng = random.Random(1)
    delays = [next_delay(n, rng=rng) for n in range(9)]
    assert delays[0] == 0
    bases = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for got, base in zip(delays[1:8], bases, strict=True):
        assert got is not None
        assert 0.9 * base <= got <= 1.1 * base
    assert delays[8] is None
    assert json.dumps(delays[:8])  # plain numbers
