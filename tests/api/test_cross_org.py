"""Organization B's key on every ``{id}`` route of organization A: 404, nothing changes,
and B's lists never show A's rows."""

from __future__ import annotations

import httpx

from flireo.services.container import Services
from flireo.store.tables import Call, WebhookEvent
from tests.api.conftest import MakeOrg, Org


async def _populate(api: httpx.AsyncClient, services: Services, org: Org) -> dict[str, str]:
    agent = (await api.post("/agents", json={"name": "A's agent"})).json()["agent"]["id"]
    tool = (
        await api.post(
            "/tool-templates",
            json={"name": "t", "tool_type": "endCall", "tool_config": {}},
        )
    ).json()["toolTemplate"]["id"]
    analysis = (
        await api.post("/analysis-templates", json={"name": "a", "schema": {"type": "object"}})
    ).json()["analysisTemplate"]["id"]
    trunk = (await api.post("/sip-trunks", json={"name": "t", "host": "h.example"})).json()[
        "sip_trunk"
    ]["id"]
    number = (
        await api.post(
            "/numbers",
            json={"phone_number": "+31850835037", "agent_id": agent, "transfer_trunk_id": trunk},
        )
    ).json()["number"]["id"]
    campaign = (await api.post("/campaigns", json={"name": "c", "agent_id": agent})).json()[
        "campaign"
    ]["id"]
    lead = (
        await api.post(f"/campaigns/{campaign}/leads", json={"phone_number": "+31612345678"})
    ).json()["lead"]["id"]
    byok = await api.post("/byok", json={"provider": "openai", "api_key": "sk-a-0123456789abcdef"})
    assert byok.status_code == 200, byok.text
    async with services.db.transaction() as s:
        s.add(Call(id="call-a", org_id=org.id, direction="inbound", status="in-progress"))
        s.add(
            WebhookEvent(
                id="event-a",
                org_id=org.id,
                call_id="call-a",
                event_type="status-update",
                seq=1,
                url="https://hooks.example.com/a",
                payload={"message": {"type": "status-update"}},
                status="failed",
            )
        )
    return {
        "agent": agent,
        "tool": tool,
        "analysis": analysis,
        "trunk": trunk,
        "number": number,
        "campaign": campaign,
        "lead": lead,
        "call": "call-a",
    }


async def test_foreign_ids_are_not_found_and_untouched(
    api: httpx.AsyncClient, services: Services, org: Org, make_org: MakeOrg
) -> None:
    ids = await _populate(api, services, org)
    intruder = await make_org("Intruder")
    attempts = [
        ("GET", f"/agents/{ids['agent']}", None),
        ("PATCH", f"/agents/{ids['agent']}", {"name": "pwned"}),
        ("DELETE", f"/agents/{ids['agent']}", None),
        ("GET", f"/tool-templates/{ids['tool']}", None),
        ("PATCH", f"/tool-templates/{ids['tool']}", {"name": "pwned"}),
        ("DELETE", f"/tool-templates/{ids['tool']}", None),
        ("GET", f"/analysis-templates/{ids['analysis']}", None),
        ("PATCH", f"/analysis-templates/{ids['analysis']}", {"name": "pwned"}),
        ("DELETE", f"/analysis-templates/{ids['analysis']}", None),
        ("GET", f"/sip-trunks/{ids['trunk']}", None),
        ("DELETE", f"/sip-trunks/{ids['trunk']}", None),
        ("GET", f"/numbers/{ids['number']}", None),
        ("PATCH", f"/numbers/{ids['number']}", {"agent_id": None}),
        ("DELETE", f"/numbers/{ids['number']}", None),
        ("GET", f"/calls/{ids['call']}", None),
        ("POST", f"/calls/{ids['call']}/control", {"type": "end-call"}),
        ("GET", f"/calls/{ids['call']}/webhooks", None),
        ("POST", f"/calls/{ids['call']}/webhooks/event-a/redeliver", None),
        ("GET", f"/campaigns/{ids['campaign']}", None),
        ("PATCH", f"/campaigns/{ids['campaign']}", {"status": "scheduled"}),
        ("DELETE", f"/campaigns/{ids['campaign']}", None),
        ("GET", f"/campaigns/{ids['campaign']}/leads", None),
        ("POST", f"/campaigns/{ids['campaign']}/leads", {"phone_number": "+31611111111"}),
        ("DELETE", f"/campaigns/{ids['campaign']}/leads/{ids['lead']}", None),
        # references to A's rows inside B's own writes
        ("POST", "/numbers", {"phone_number": "+31850000001", "agent_id": ids["agent"]}),
        ("POST", "/numbers", {"phone_number": "+31850000002", "transfer_trunk_id": ids["trunk"]}),
        ("POST", "/agents", {"name": "x", "tool_template_ids": [ids["tool"]]}),
        ("POST", "/agents", {"name": "x", "analysis_template_id": ids["analysis"]}),
        ("POST", "/campaigns", {"name": "x", "agent_id": ids["agent"]}),
        ("POST", "/calls/outbound", {"destination": "+31612345678", "agent_id": ids["agent"]}),
    ]
    for method, path, body in attempts:
        r = await api.request(method, path, json=body, headers=intruder.headers)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "not_found"

    for path, key in [
        ("/agents", "agents"),
        ("/tool-templates", "toolTemplates"),
        ("/analysis-templates", "analysisTemplates"),
        ("/sip-trunks", "trunks"),
        ("/numbers", "numbers"),
        ("/calls", "calls"),
        ("/campaigns", "campaigns"),
        ("/usage", "logs"),
    ]:
        assert (await api.get(path, headers=intruder.headers)).json()[key] == [], path

    # B's own BYOK state knows nothing of A's key, and B removing "its" key leaves A's
    assert (await api.get("/byok", headers=intruder.headers)).json()["byok_keys"][
        "openai_secret_id"
    ] is None
    await api.request("DELETE", "/byok", json={"provider": "openai"}, headers=intruder.headers)
    assert (await api.get("/byok")).json()["byok_keys"]["openai_secret_id"] is not None

    # A's data is exactly as it was
    assert (await api.get(f"/agents/{ids['agent']}")).json()["agent"]["name"] == "A's agent"
    assert (await api.get(f"/numbers/{ids['number']}")).json()["number"]["agent_id"] == ids["agent"]
    assert (await api.get(f"/campaigns/{ids['campaign']}")).json()["campaign"]["status"] == "draft"
    assert (await api.get(f"/campaigns/{ids['campaign']}/leads")).json()["pagination"]["total"] == 1
    for path in (f"/tool-templates/{ids['tool']}", f"/analysis-templates/{ids['analysis']}"):
        assert (await api.get(path)).status_code == 200
    assert (await api.get(f"/sip-trunks/{ids['trunk']}")).status_code == 200
    log = (await api.get(f"/calls/{ids['call']}/webhooks")).json()
    assert [(e["id"], e["status"]) for e in log["webhooks"]] == [("event-a", "failed")]
