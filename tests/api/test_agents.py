from __future__ import annotations

import httpx

from tests.api.conftest import MakeOrg


async def test_create_agent_with_only_a_name_gets_local_defaults(api: httpx.AsyncClient) -> None:
    r = await api.post("/agents", json={"name": "Support"})
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    assert agent["name"] == "Support"
    assert agent["is_active"] is True
    assert agent["stt_config"]["provider"] == "whisper"
    assert agent["tts_config"] == {"provider": "piper", "voiceId": "joe-us"}
    assert agent["llm_config"]["provider"] == "openai"
    assert agent["created_at"].endswith("Z")
    assert len(agent["created_at"]) == 24
    got = await api.get(f"/agents/{agent['id']}")
    assert got.json()["agent"] == agent


async def test_full_agent_round_trip_and_partial_update(api: httpx.AsyncClient) -> None:
    body = {
        "name": "Customer Support Agent",
        "business_name": "Acme Corp",
        "first_message": "Hallo, welkom bij Acme.",
        "webhook_url": "https://hooks.example.com/flireo",
        "webhook_secret": "whsec_c3VwZXJzZWNyZXR2YWx1ZTEyMzQ1e123",  # base64: 24 bytes
        "webhook_events": ["tool-calls", "end-of-call-report"],
        "stt_config": {"provider": "deepgram", "model": "nova-3-general", "language": "nl"},
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "temperature": 0.5,
            "messages": [{"role": "system", "content": "Be brief."}],
            "tools": [
                {"name": "lookup_contact", "description": "Find a contact", "async": False},
                {"type": "endCall"},
            ],
        },
        "tts_config": {"provider": "11labs", "voice_id": "abc", "model": "eleven_flash_v2_5"},
        "analysisPlan": {"structuredDataPlan": {"enabled": True, "schema": {"type": "object"}}},
    }
    r = await api.post("/agents", json=body)
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    assert agent["webhook_secret"] == "whs...e123"
    assert agent["tts_config"] == {
        "provider": "elevenlabs",
        "voiceId": "abc",
        "model": "eleven_flash_v2_5",
    }
    assert agent["llm_config"]["tools"][0]["type"] == "function"
    assert agent["analysis_plan"]["structuredDataPlan"]["schema"] == {"type": "object"}

    r = await api.patch(f"/agents/{agent['id']}", json={"first_message": "Hi!", "is_active": False})
    assert r.status_code == 200, r.text
    updated = r.json()["agent"]
    assert updated["first_message"] == "Hi!"
    assert updated["is_active"] is False
    assert updated["llm_config"] == agent["llm_config"]
    assert updated["webhook_secret"] == "whs...e123"


async def test_unknown_field_and_bad_values_are_400_with_param(api: httpx.AsyncClient) -> None:
    r = await api.post("/agents", json={"name": "x", "colour": "blue"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "colour"
    r = await api.post("/agents", json={})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "missing_field",
        "message": "Missing required field: name",
        "param": "name",
        "type": "invalid_request_error",
    }
    r = await api.post("/agents", json={"name": "x", "llm_config": {"provider": "nope"}})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "llm_config.provider"
    r = await api.post(
        "/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"


async def test_other_organizations_agent_is_not_found(
    api: httpx.AsyncClient, make_org: MakeOrg
) -> None:
    other = await make_org("Other")
    r = await api.post("/agents", json={"name": "mine"})
    agent_id = r.json()["agent"]["id"]
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.request(
            method, f"/agents/{agent_id}", headers=other.headers, json={"name": "stolen"}
        )
        assert r.status_code == 404, (method, r.text)
    assert (await api.get(f"/agents/{agent_id}")).json()["agent"]["name"] == "mine"
    assert (await api.get("/agents", headers=other.headers)).json() == {"agents": []}


async def test_delete_agent(api: httpx.AsyncClient) -> None:
    agent_id = (
        await api.post("/agents", json={"name": "x", "webhook_secret": "s3cret-s3cret"})
    ).json()["agent"]["id"]
    r = await api.delete(f"/agents/{agent_id}")
    assert r.status_code == 204
    assert (await api.get(f"/agents/{agent_id}")).status_code == 404
