from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from flireo.bus.base import ControlAck
from flireo.services.container import Services
from flireo.store.tables import Call, Organization
from tests.api.conftest import Org, RecordingDialer


async def _setup_outbound(api: httpx.AsyncClient) -> tuple[str, str]:
    agent = (await api.post("/agents", json={"name": "Sales"})).json()["agent"]
    trunk = (await api.post("/sip-trunks", json={"name": "t", "host": "sip.example.com"})).json()[
        "sip_trunk"
    ]
    number = (
        await api.post(
            "/numbers", json={"phone_number": "+31850835037", "transfer_trunk_id": trunk["id"]}
        )
    ).json()["number"]
    return agent["id"], number["id"]


async def test_outbound_call_is_stored_dialing_and_handed_to_the_dialer(
    api: httpx.AsyncClient, services: Services
) -> None:
    agent_id, number_id = await _setup_outbound(api)
    r = await api.post(
        "/calls/outbound",
        json={"destination": "+31612345678", "agent_id": agent_id, "context": "VIP customer"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["status"] == "dialing"
    assert body["call_id"].startswith("call-outbound-")
    assert body["room_name"].startswith("outbound-")
    dialer = services.dialer
    assert isinstance(dialer, RecordingDialer)
    assert dialer.dialed == [body["call_id"]]
    call = (await api.get(f"/calls/{body['call_id']}")).json()
    assert call["status"] == "dialing"
    assert call["direction"] == "outbound"
    assert call["type"] == "outboundPhoneCall"
    assert call["caller_phone"] == "+31612345678"
    assert call["assistant_phone"] == "+31850835037"
    assert call["number_id"] == number_id
    assert call["messages"] == []


async def test_outbound_call_errors_in_documented_order(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    agent_id, _ = await _setup_outbound(api)
    bad = await api.post("/calls/outbound", json={"destination": "612345678", "agent_id": agent_id})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "destination"
    ghost = await api.post("/calls/outbound", json={"destination": "+31612345678", "agent_id": "x"})
    assert ghost.status_code == 404
    await api.patch(f"/agents/{agent_id}", json={"is_active": False})
    inactive = await api.post(
        "/calls/outbound", json={"destination": "+31612345678", "agent_id": agent_id}
    )
    assert inactive.status_code == 400
    assert inactive.json()["error"]["code"] == "agent_inactive"
    await api.patch(f"/agents/{agent_id}", json={"is_active": True})
    async with services.db.transaction() as s:
        await s.execute(
            update(Organization).where(Organization.id == org.id).values(minutes_balance=0)
        )
    broke = await api.post(
        "/calls/outbound", json={"destination": "+31612345678", "agent_id": agent_id}
    )
    assert broke.status_code == 402
    assert broke.json()["error"]["code"] == "insufficient_credits"
    assert "add credits" in broke.json()["error"]["message"]


async def test_outbound_needs_a_number_with_a_trunk(api: httpx.AsyncClient) -> None:
    agent = (await api.post("/agents", json={"name": "a"})).json()["agent"]
    r = await api.post(
        "/calls/outbound", json={"destination": "+31612345678", "agent_id": agent["id"]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "no_outbound_number"


async def _insert_call(
    services: Services, org: Org, call_id: str, status: str, **extra: Any
) -> None:
    async with services.db.transaction() as s:
        s.add(
            Call(
                id=call_id,
                org_id=org.id,
                direction="inbound",
                status=status,
                caller_phone="+31612345678",
                assistant_phone="+31850835037",
                **extra,
            )
        )


async def test_list_calls_filters_and_paginates(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    for i in range(5):
        await _insert_call(services, org, f"call-_+31612345678_ended{i}", "ended")
    await _insert_call(services, org, "call-_+31612345678_live", "in-progress")
    page = (await api.get("/calls", params={"limit": 2, "offset": 1})).json()
    assert page["pagination"] == {"total": 6, "limit": 2, "offset": 1}
    assert len(page["calls"]) == 2
    live = (await api.get("/calls", params={"status": "in-progress"})).json()
    assert [c["id"] for c in live["calls"]] == ["call-_+31612345678_live"]
    future = (await api.get("/calls", params={"start_date": "2999-01-01T00:00:00Z"})).json()
    assert future["pagination"]["total"] == 0
    assert (await api.get("/calls", params={"limit": 1001})).status_code == 400
    assert (await api.get("/calls", params={"status": "bogus"})).status_code == 400
    got = await api.get("/calls/call-_%2B31612345678_live")
    assert got.status_code == 200
    assert got.json()["id"] == "call-_+31612345678_live"


async def test_control_commands(api: httpx.AsyncClient, services: Services, org: Org) -> None:
    await _insert_call(services, org, "call-live", "in-progress")
    await _insert_call(services, org, "call-done", "ended")
    received: list[dict[str, Any]] = []

    async def handler(command: dict[str, Any]) -> ControlAck:
        received.append(command)
        if len(received) > 2:
            return ControlAck(
                ok=False, code="rate_limit_exceeded", message="slow down", retry_after=42
            )
        return ControlAck(ok=True)

    unknown = await api.post("/calls/nope/control", json={"type": "end-call"})
    assert unknown.status_code == 404
    ended = await api.post("/calls/call-done/control", json={"type": "end-call"})
    assert ended.status_code == 400
    assert ended.json()["error"]["code"] == "call_not_active"
    orphan = await api.post("/calls/call-live/control", json={"type": "end-call"})
    assert orphan.status_code == 400  # in-progress in the store, but no live session owns it
    bad = await api.post("/calls/call-live/control", json={"type": "dance"})
    assert bad.status_code == 400
    incomplete = await api.post("/calls/call-live/control", json={"type": "say", "content": ""})
    assert incomplete.status_code == 400

    registration = await services.bus.register_call("call-live", handler)
    try:
        ok = await api.post(
            "/calls/call-live/control",
            json={"type": "inject-context", "content": "Code: 1234", "trigger_response": True},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"success": True, "message": "Command sent successfully"}
        transfer = await api.post(
            "/calls/call-live/control",
            json={"type": "transfer", "destination": "sip:desk@pbx.example.com"},
        )
        assert transfer.status_code == 200
        limited = await api.post("/calls/call-live/control", json={"type": "say", "content": "Hi"})
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "42"
    finally:
        await registration.close()
    assert received[0] == {
        "type": "inject-context",
        "content": "Code: 1234",
        "trigger_response": True,
    }
    assert received[1]["destination"] == "sip:desk@pbx.example.com"
