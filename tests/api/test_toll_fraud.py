"""Toll-fraud guards on ``POST /calls/outbound`` (issue 14 item 8): the countries
of the organization's own numbers by default, premium-rate / shared-cost /
personal numbers refused, a daily outbound minutes cap and a concurrency cap.
Each refusal is a 403 with its code and a ``rejected`` call record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select

from flireo.services.container import Services
from flireo.services.dialer import DisabledDialer
from flireo.store.tables import Call, PhoneNumber, UsageLog, WebhookEvent
from tests.api.conftest import Org

OWN_NUMBER = "+31850835037"  # NL
NL_MOBILE = "+31612345678"
DE_MOBILE = "+4915123456789"
DE_PREMIUM = "+499001234567"
DE_SHARED_COST = "+4918012345"
DE_PERSONAL = "+4970012345678"


async def outbound_agent(api: httpx.AsyncClient) -> str:
    r = await api.post("/agents", json={"name": "Caller"})
    assert r.status_code == 201, r.text
    agent_id = str(r.json()["agent"]["id"])
    r = await api.post("/sip-trunks", json={"name": "carrier", "host": "sip.example.com"})
    assert r.status_code == 201, r.text
    trunk_id = r.json()["sip_trunk"]["id"]
    r = await api.post("/numbers", json={"phone_number": OWN_NUMBER, "transfer_trunk_id": trunk_id})
    assert r.status_code == 201, r.text
    return agent_id


async def dial(api: httpx.AsyncClient, agent_id: str, destination: str) -> httpx.Response:
    return await api.post(
        "/calls/outbound", json={"agent_id": agent_id, "destination": destination}
    )


async def rejected_calls(services: Services) -> list[Call]:
    async with services.db.read() as s:
        rows = (await s.execute(select(Call).where(Call.status == "rejected"))).scalars()
        return list(rows)


async def test_only_the_countries_of_its_own_numbers_by_default(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    agent_id = await outbound_agent(api)
    policy = (await api.get("/account/dial-policy")).json()
    assert policy["outbound_countries"] == ["NL"]
    assert policy["outbound_countries_source"] == "numbers"
    assert policy["allow_premium_destinations"] is False

    assert (await dial(api, agent_id, NL_MOBILE)).status_code == 200
    r = await dial(api, agent_id, DE_MOBILE)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "destination_country_not_allowed",
        "permission_error",
        "destination",
    )
    assert "NL" in error["message"]
    # the refusal is in the call record, ended once (status, reason, usage)
    [refused] = await rejected_calls(services)
    assert refused.caller_phone == DE_MOBILE
    assert refused.ended_reason == "call-start-error-destination-country-not-allowed"
    assert refused.id in error["message"]
    detail = (await api.get(f"/calls/{refused.id}")).json()
    assert (detail["status"], detail["ended_reason"]) == (
        "rejected",
        "call-start-error-destination-country-not-allowed",
    )
    async with services.db.read() as s:
        logs = (await s.execute(select(UsageLog).where(UsageLog.call_id == refused.id))).all()
    assert len(logs) == 1

    r = await api.patch("/account/dial-policy", json={"outbound_countries": ["nl", "DE"]})
    assert r.status_code == 200, r.text
    assert r.json()["outbound_countries"] == ["DE", "NL"]
    assert r.json()["outbound_countries_source"] == "organization"
    assert (await dial(api, agent_id, DE_MOBILE)).status_code == 200
    # back to the default
    r = await api.patch("/account/dial-policy", json={"outbound_countries": None})
    assert r.json()["outbound_countries"] == ["NL"]
    assert (await dial(api, agent_id, DE_MOBILE)).status_code == 403


async def test_premium_shared_cost_and_personal_numbers_are_refused_by_default(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    agent_id = await outbound_agent(api)
    await api.patch("/account/dial-policy", json={"outbound_countries": ["NL", "DE"]})
    for number in (DE_PREMIUM, DE_SHARED_COST, DE_PERSONAL):
        r = await dial(api, agent_id, number)
        assert r.status_code == 403, (number, r.text)
        assert r.json()["error"]["code"] == "premium_destination_not_allowed"
    reasons = {c.ended_reason for c in await rejected_calls(services)}
    assert reasons == {"call-start-error-premium-destination-not-allowed"}
    r = await api.patch("/account/dial-policy", json={"allow_premium_destinations": True})
    assert r.json()["allow_premium_destinations"] is True
    assert (await dial(api, agent_id, DE_PREMIUM)).status_code == 200


async def test_daily_outbound_minutes_cap(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    agent_id = await outbound_agent(api)
    r = await api.patch("/account/dial-policy", json={"daily_outbound_minutes": 5})
    assert r.json()["daily_outbound_minutes"] == 5
    now = datetime.now(UTC)
    async with services.db.transaction() as s:
        for i, (minutes, when, direction) in enumerate(
            [
                (3, now, "outbound"),
                (30, now - timedelta(days=1, hours=1), "outbound"),  # yesterday
                (30, now, "inbound"),  # inbound minutes do not count
            ]
        ):
            s.add(
                UsageLog(
                    org_id=org.id,
                    call_id=f"old-{i}",
                    direction=direction,
                    duration_seconds=minutes * 60,
                    minutes_used=minutes,
                    cost=Decimal("0.1"),
                    created_at=when,
                )
            )
    assert (await api.get("/account/dial-policy")).json()["outbound_minutes_today"] == 3
    assert (await dial(api, agent_id, NL_MOBILE)).status_code == 200
    async with services.db.transaction() as s:
        s.add(
            UsageLog(
                org_id=org.id,
                call_id="old-today",
                direction="outbound",
                duration_seconds=120,
                minutes_used=2,
                cost=Decimal("0.1"),
                created_at=now,
            )
        )
    r = await dial(api, agent_id, NL_MOBILE)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "daily_outbound_minutes_exceeded"
    [refused] = await rejected_calls(services)
    assert refused.ended_reason == "call-start-error-outbound-daily-limit"


async def test_concurrent_outbound_calls_cap(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    agent_id = await outbound_agent(api)
    policy = (await api.get("/account/dial-policy")).json()
    assert policy["max_outbound_calls"] == services.settings.default_max_outbound_calls
    await api.patch("/account/dial-policy", json={"max_outbound_calls": 2})
    for _ in range(2):  # the recording dialer leaves them ``dialing``
        assert (await dial(api, agent_id, NL_MOBILE)).status_code == 200
    assert (await api.get("/account/dial-policy")).json()["active_outbound_calls"] == 2
    r = await dial(api, agent_id, NL_MOBILE)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "outbound_concurrency_limit_reached"
    [refused] = await rejected_calls(services)
    assert refused.ended_reason == "call-start-error-outbound-concurrency-limit"
    # a finished call frees its slot
    async with services.db.transaction() as s:
        first = (
            await s.execute(select(Call).where(Call.status == "dialing").limit(1))
        ).scalar_one()
        first.status = "ended"
    assert (await dial(api, agent_id, NL_MOBILE)).status_code == 200


async def test_policy_updates_are_validated(api: httpx.AsyncClient, org: Org) -> None:
    for body, param in (
        ({"outbound_countries": ["XX"]}, "outbound_countries"),
        ({"outbound_countries": ["NLD"]}, "outbound_countries.0"),
        ({"daily_outbound_minutes": -1}, "daily_outbound_minutes"),
        ({"max_outbound_calls": "3"}, "max_outbound_calls"),
        ({"unknown": 1}, "unknown"),
    ):
        r = await api.patch("/account/dial-policy", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.json())


async def test_a_transfer_that_cannot_work_or_is_not_allowed_is_refused_at_once(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    await outbound_agent(api)
    r = await api.post("/numbers", json={"phone_number": "+31201234567"})  # no trunk
    assert r.status_code == 201, r.text
    no_trunk = r.json()["number"]["id"]
    async with services.db.read() as s:
        with_trunk = (
            await s.execute(select(PhoneNumber.id).where(PhoneNumber.phone_number == OWN_NUMBER))
        ).scalar_one()
    async with services.db.transaction() as s:
        s.add(
            Call(
                id="live-no-trunk",
                org_id=org.id,
                direction="inbound",
                status="in-progress",
                number_id=no_trunk,
            )
        )
        s.add(
            Call(
                id="live-trunk",
                org_id=org.id,
                direction="inbound",
                status="in-progress",
                number_id=with_trunk,
            )
        )

    async def transfer(call_id: str, destination: str) -> httpx.Response:
        return await api.post(
            f"/calls/{call_id}/control", json={"type": "transfer", "destination": destination}
        )

    r = await transfer("live-no-trunk", NL_MOBILE)
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "transfer_unavailable",
        "destination",
    )
    r = await transfer("live-trunk", DE_MOBILE)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "destination_country_not_allowed"
    r = await transfer("live-trunk", "+31906123456")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "premium_destination_not_allowed"
    # allowed: it goes on to the call (not running on any node here)
    r = await transfer("live-trunk", NL_MOBILE)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "call_not_active"


async def test_a_call_the_dialer_cannot_place_still_ends_with_its_report_and_usage(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    """Issue 14 item 5 (outbound side): a server without SIP fails the call through
    the lifecycle — status, end-of-call report, usage — not with a bare status."""
    agent_id = await outbound_agent(api)
    r = await api.patch(
        f"/agents/{agent_id}",
        json={
            "webhook_url": "https://hooks.example.com/flireo",
            "webhook_events": ["status-update", "end-of-call-report"],
        },
    )
    assert r.status_code == 200, r.text
    services.dialer = DisabledDialer(services.db, services.clock, services.settings)
    r = await dial(api, agent_id, NL_MOBILE)
    assert r.status_code == 200, r.text
    call_id = r.json()["call_id"]
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        assert (call.status, call.ended_reason) == ("failed", "outbound-calling-disabled")
        events = (
            await s.execute(
                select(WebhookEvent.event_type)
                .where(WebhookEvent.call_id == call_id)
                .order_by(WebhookEvent.seq)
            )
        ).scalars()
        assert list(events) == ["status-update", "end-of-call-report"]
        logs = (await s.execute(select(UsageLog).where(UsageLog.call_id == call_id))).all()
        assert len(logs) == 1
