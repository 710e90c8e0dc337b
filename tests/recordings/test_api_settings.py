"""Recording settings: the agent's ``recording_enabled``/``recording_format``, the
organization's ``recording_retention_days`` (``GET/PATCH /account``), a campaign's
and an outbound call's ``recording_enabled``, and an assistant-request override."""

from __future__ import annotations

import httpx

from flireo.recordings.service import recording_format_for
from flireo.services.assistant_request import decide
from flireo.services.container import Services
from flireo.store.tables import Agent, Call
from flireo.webhooks.sync import SyncReply
from tests.api.conftest import (
    _drop_pg_schema,
    api,
    backend,
    client,
    keyring,
    make_org,
    org,
    services,
    settings,
)
from tests.api.test_calls import _setup_outbound

__all__ = [
    "_drop_pg_schema",
    "api",
    "backend",
    "client",
    "keyring",
    "make_org",
    "org",
    "services",
    "settings",
]


async def test_agent_recording_settings(api: httpx.AsyncClient) -> None:
    r = await api.post("/agents", json={"name": "Default"})
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    assert (agent["recording_enabled"], agent["recording_format"]) == (True, "wav")

    r = await api.post(
        "/agents", json={"name": "Quiet", "recordingEnabled": False, "recordingFormat": "ogg"}
    )
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    assert (agent["recording_enabled"], agent["recording_format"]) == (False, "ogg")

    r = await api.patch(f"/agents/{agent['id']}", json={"recording_enabled": True})
    assert r.status_code == 200, r.text
    assert (r.json()["agent"]["recording_enabled"], r.json()["agent"]["recording_format"]) == (
        True,
        "ogg",
    )
    r = await api.patch(f"/agents/{agent['id']}", json={"recording_format": "wav"})
    assert r.json()["agent"]["recording_format"] == "wav"
    read = (await api.get(f"/agents/{agent['id']}")).json()["agent"]
    assert (read["recording_enabled"], read["recording_format"]) == (True, "wav")


async def test_unknown_recording_format_is_400_naming_the_field(api: httpx.AsyncClient) -> None:
    for body in (
        {"name": "X", "recording_format": "mp3"},
        {"name": "X", "recordingFormat": "flac"},
    ):
        r = await api.post("/agents", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] in ("recording_format", "recordingFormat")
    agent_id = (await api.post("/agents", json={"name": "Y"})).json()["agent"]["id"]
    r = await api.patch(f"/agents/{agent_id}", json={"recording_format": "mp3"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "recording_format"
    r = await api.patch(f"/agents/{agent_id}", json={"recording_enabled": "yes"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "recording_enabled"


async def test_organization_retention_setting(api: httpx.AsyncClient) -> None:
    assert (await api.get("/account")).json()["recording_retention_days"] == 30
    r = await api.patch("/account", json={"recording_retention_days": 0})
    assert r.status_code == 200, r.text
    assert r.json()["recording_retention_days"] == 0
    r = await api.patch("/account", json={"recordingRetentionDays": 90})
    assert r.json()["recording_retention_days"] == 90
    assert (await api.get("/account")).json()["recording_retention_days"] == 90
    for bad in ({"recording_retention_days": -1}, {"recording_retention_days": "30"}, {"x": 1}):
        r = await api.patch("/account", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["param"] in ("recording_retention_days", "x")
    assert (await api.get("/account")).json()["recording_retention_days"] == 90


async def test_campaign_can_turn_recording_off(api: httpx.AsyncClient) -> None:
    agent_id = (await api.post("/agents", json={"name": "Dialer"})).json()["agent"]["id"]
    r = await api.post("/campaigns", json={"name": "C", "agent_id": agent_id})
    assert r.status_code in (200, 201), r.text
    campaign = r.json().get("campaign", r.json())
    assert campaign["recording_enabled"] is True
    r = await api.patch(f"/campaigns/{campaign['id']}", json={"recordingEnabled": False})
    assert r.status_code == 200, r.text
    assert r.json().get("campaign", r.json())["recording_enabled"] is False


def agent(**fields: object) -> Agent:
    values: dict[str, object] = {"recording_enabled": True, "recording_format": "wav", **fields}
    return Agent(name="A", org_id="o", **values)


def test_per_call_override_wins_over_the_agent() -> None:
    on, ogg, off = agent(), agent(recording_format="ogg"), agent(recording_enabled=False)
    plain = Call(id="c", overrides=None)
    assert recording_format_for(plain, on) == "wav"
    assert recording_format_for(plain, ogg) == "ogg"
    assert recording_format_for(plain, off) is None
    assert recording_format_for(Call(id="c", overrides={"recordingEnabled": False}), on) is None
    assert recording_format_for(Call(id="c", overrides={"recordingEnabled": True}), off) == "wav"
    assert recording_format_for(plain, None) is None


def reply(body: object) -> SyncReply:
    return SyncReply(ok=True, status=200, body=body, error=None, seconds=0.1)


def test_assistant_request_can_turn_recording_off() -> None:
    for assistant in (
        {"recordingEnabled": False},
        {"artifactPlan": {"recordingEnabled": False}},
    ):
        decision = decide(reply({"assistant": assistant}))
        assert decision.overrides == {"recordingEnabled": False}
    decision = decide(reply({"assistant": {"firstMessage": "Hi"}}))
    assert "recordingEnabled" not in decision.overrides


async def test_outbound_call_can_turn_recording_off(
    api: httpx.AsyncClient, services: Services
) -> None:
    agent_id, number_id = await _setup_outbound(api)
    r = await api.post(
        "/calls/outbound",
        json={
            "destination": "+31612345678",
            "agent_id": agent_id,
            "number_id": number_id,
            "recording_enabled": False,
        },
    )
    assert r.status_code == 200, r.text
    async with services.db.read() as s:
        call = await s.get(Call, r.json()["call_id"])
        assert call is not None
        assert (call.overrides or {}).get("recordingEnabled") is False
