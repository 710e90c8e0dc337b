"""Inbound admission: which calls are answered, refused or rejected with a message,
against the real store and a real webhook receiver for assistant-request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update

from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.container import Services
from flireo.services.inbound import admit_inbound, number_candidates, trunk_ips
from flireo.store.tables import Call, Organization, WebhookEvent
from tests.api.conftest import Org
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import WebhookReceiver

NUMBER = "+31850835037"


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    r = WebhookReceiver()
    with serve(r.app()) as srv:
        yield r, srv


def lifecycle(services: Services) -> CallLifecycle:
    return CallLifecycle(services.db, services.settings, services.clock)


async def setup_number(
    api: httpx.AsyncClient,
    *,
    agent: dict[str, object] | None = None,
    allowed_ips: list[str] | None = None,
    with_agent: bool = True,
) -> str:
    trunk = await api.post(
        "/sip-trunks",
        json={"name": "carrier", "host": "127.0.0.5", "allowed_ips": allowed_ips or []},
    )
    assert trunk.status_code == 201, trunk.text
    body: dict[str, object] = {
        "phone_number": NUMBER,
        "name": "Main line",
        "transfer_trunk_id": trunk.json()["sip_trunk"]["id"],
    }
    if with_agent:
        r = await api.post("/agents", json={"name": "Desk", **(agent or {})})
        assert r.status_code == 201, r.text
        body["agent_id"] = r.json()["agent"]["id"]
    r = await api.post("/numbers", json=body)
    assert r.status_code == 201, r.text
    return str(body.get("agent_id", ""))


async def stored(services: Services, call_id: str) -> Call:
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        return call


def test_number_spellings() -> None:
    assert number_candidates("31850835037")[:3] == ["31850835037", "+31850835037"]
    assert "+31850835037" in number_candidates("0031850835037")
    assert number_candidates("+31 85 083 5037")[1] == "+31850835037"


async def test_unknown_inactive_and_pinned(
    services: Services, api: httpx.AsyncClient, org: Org
) -> None:
    life = lifecycle(services)
    unknown = await admit_inbound(
        services, life, dialed="+4915100000", caller="+31612345678", source_ip="127.0.0.5"
    )
    assert (unknown.status, unknown.call_id) == (404, None)
    await setup_number(api, with_agent=False, allowed_ips=["127.0.0.5/32"])
    no_agent = await admit_inbound(
        services, life, dialed="31850835037", caller=None, source_ip="127.0.0.5"
    )
    assert no_agent.status == 480
    elsewhere = await admit_inbound(
        services, life, dialed=NUMBER, caller=None, source_ip="127.0.0.77"
    )
    assert elsewhere.status == 403
    assert "127.0.0.5/32" in await trunk_ips(services)
    async with services.db.read() as s:
        assert (await s.execute(select(Call))).scalars().first() is None


async def test_answered_call_is_stored_ringing_with_the_assistant_overrides(
    services: Services,
    api: httpx.AsyncClient,
    org: Org,
    receiver: tuple[WebhookReceiver, ServerThread],
) -> None:
    hook, srv = receiver
    hook.reply = {"assistant": {"firstMessage": "Hi Jan, welcome back."}}
    await setup_number(
        api,
        agent={
            "webhook_url": f"{srv.url}/hook",
            "webhook_events": ["assistant-request", "status-update"],
        },
    )
    admission = await admit_inbound(
        services, lifecycle(services), dialed=NUMBER, caller="+31612345678", source_ip="127.0.0.5"
    )
    assert admission.answer
    assert admission.reject_message is None
    assert admission.call_id is not None
    assert admission.call_id.startswith("call-_+31612345678_")
    call = await stored(services, admission.call_id)
    assert (call.status, call.direction, call.assistant_phone, call.caller_phone) == (
        "ringing",
        "inbound",
        NUMBER,
        "+31612345678",
    )
    assert call.overrides == {"firstMessage": "Hi Jan, welcome back."}
    sent = hook.requests[0].json["message"]
    assert (sent["type"], sent["call"]["status"]) == ("assistant-request", "ringing")
    async with services.db.read() as s:
        events = (
            await s.execute(select(WebhookEvent).where(WebhookEvent.call_id == call.id))
        ).scalars()
        assert [e.event_type for e in events] == ["status-update"]


async def test_assistant_error_and_empty_balance_are_rejected_with_a_message(
    services: Services,
    api: httpx.AsyncClient,
    org: Org,
    receiver: tuple[WebhookReceiver, ServerThread],
) -> None:
    hook, srv = receiver
    hook.reply = {"error": "Sorry, we are closed right now."}
    await setup_number(
        api, agent={"webhook_url": f"{srv.url}/hook", "webhook_events": ["assistant-request"]}
    )
    life = lifecycle(services)
    closed = await admit_inbound(services, life, dialed=NUMBER, caller=None, source_ip="1.2.3.4")
    assert closed.answer
    assert closed.reject_message == "Sorry, we are closed right now."
    assert closed.call_id is not None
    call = await stored(services, closed.call_id)
    assert (call.status, call.ended_reason) == ("rejected", "assistant-request-returned-error")

    async with services.db.transaction() as s:
        await s.execute(update(Organization).values(minutes_balance=0))
    broke = await admit_inbound(services, life, dialed=NUMBER, caller=None, source_ip="1.2.3.4")
    assert broke.answer
    assert broke.reject_message is not None
    assert broke.call_id is not None
    call = await stored(services, broke.call_id)
    assert (call.status, call.ended_reason) == ("rejected", "insufficient-credits")
    assert len(hook.requests) == 1  # no assistant-request for a call that cannot be taken
