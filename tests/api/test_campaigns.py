from __future__ import annotations

import httpx


async def _campaign(api: httpx.AsyncClient, **extra: object) -> dict[str, object]:
    agent = (
        await api.post("/agents", json={"name": "Caller", "first_message": "Hi {{name}}!"})
    ).json()["agent"]
    r = await api.post(
        "/campaigns",
        json={
            "name": "Q4 outreach",
            "agent_id": agent["id"],
            "system_message_template": "You call {{name}} of {{company}}.",
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    campaign: dict[str, object] = r.json()["campaign"]
    return campaign


async def test_campaign_defaults_and_lifecycle(api: httpx.AsyncClient) -> None:
    campaign = await _campaign(api)
    assert campaign["status"] == "draft"
    assert campaign["schedule_start_time"] == "09:00:00"
    assert campaign["schedule_end_time"] == "17:00:00"
    assert campaign["timezone"] == "Europe/Amsterdam"
    assert campaign["max_concurrent_calls"] == 5
    assert campaign["calls_per_second"] == 1.0
    cid = campaign["id"]
    for status in ("scheduled", "paused", "scheduled", "completed"):
        r = await api.patch(f"/campaigns/{cid}", json={"status": status})
        assert r.status_code == 200, r.text
        assert r.json()["campaign"]["status"] == status
    back = await api.patch(f"/campaigns/{cid}", json={"status": "scheduled"})
    assert back.status_code == 400
    assert back.json()["error"]["code"] == "invalid_status"
    assert [c["id"] for c in (await api.get("/campaigns")).json()["campaigns"]] == [cid]
    assert (await api.delete(f"/campaigns/{cid}")).status_code == 204
    assert (await api.get(f"/campaigns/{cid}")).status_code == 404


async def test_campaign_validation(api: httpx.AsyncClient) -> None:
    agent = (await api.post("/agents", json={"name": "a"})).json()["agent"]
    cases = [
        ({"name": "c", "agent_id": agent["id"], "timezone": "Mars/Olympus"}, "timezone"),
        (
            {"name": "c", "agent_id": agent["id"], "schedule_start_time": "25:00"},
            "schedule_start_time",
        ),
        ({"name": "c", "agent_id": agent["id"], "status": "running"}, "status"),
        ({"name": "c"}, "agent_id"),
    ]
    for body, param in cases:
        r = await api.post("/campaigns", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param
    ghost = await api.post("/campaigns", json={"name": "c", "agent_id": "none"})
    assert ghost.status_code == 404
    short = await api.post(
        "/campaigns", json={"name": "c", "agent_id": agent["id"], "schedule_end_time": "18:30"}
    )
    assert short.json()["campaign"]["schedule_end_time"] == "18:30:00"


async def test_leads_report_missing_variables_at_upload(api: httpx.AsyncClient) -> None:
    campaign = await _campaign(api)
    cid = campaign["id"]
    r = await api.post(
        f"/campaigns/{cid}/leads",
        json={"phone_number": "+31612345678", "variables": {"name": "John"}},
    )
    assert r.status_code == 201, r.text
    lead = r.json()["lead"]
    assert lead["status"] == "pending"
    assert lead["attempts"] == 0
    assert lead["missing_variables"] == ["company"]
    bulk = await api.post(
        f"/campaigns/{cid}/leads",
        json={
            "leads": [
                {"phone_number": "+31612345679", "variables": {"name": "A", "company": "X"}},
                {
                    "number": "+31612345680",
                    "variables": {"name": "B", "company": "Y"},
                    "timezone": "Europe/London",
                },
            ]
        },
    )
    assert bulk.status_code == 201, bulk.text
    assert [item["missing_variables"] for item in bulk.json()["leads"]] == [[], []]
    dup = await api.post(f"/campaigns/{cid}/leads", json={"phone_number": "+31612345678"})
    assert dup.status_code == 409
    twice = await api.post(
        f"/campaigns/{cid}/leads",
        json={"leads": [{"phone_number": "+31600000001"}, {"phone_number": "+31600000001"}]},
    )
    assert twice.status_code == 400
    leads = (await api.get(f"/campaigns/{cid}/leads", params={"limit": 2})).json()
    assert leads["pagination"]["total"] == 3
    assert len(leads["leads"]) == 2
    assert (await api.get(f"/campaigns/{cid}")).json()["campaign"]["total_leads"] == 3
    assert (await api.delete(f"/campaigns/{cid}/leads/{lead['id']}")).status_code == 204
    assert (await api.get(f"/campaigns/{cid}")).json()["campaign"]["total_leads"] == 2


async def test_lead_of_another_campaign_is_not_found(api: httpx.AsyncClient) -> None:
    first = await _campaign(api)
    second = await _campaign(api)
    lead = (
        await api.post(f"/campaigns/{first['id']}/leads", json={"phone_number": "+31612345678"})
    ).json()["lead"]
    r = await api.delete(f"/campaigns/{second['id']}/leads/{lead['id']}")
    assert r.status_code == 404
    assert (await api.get(f"/campaigns/{first['id']}/leads")).json()["pagination"]["total"] == 1
