"""Vendor keys inside pipeline configs are refused (issue 14, item 4): they
would be stored and returned in plain text; the key belongs in ``POST /byok``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from flireo.services.container import Services
from flireo.store.tables import Agent


@pytest.mark.parametrize(
    ("body", "option"),
    [
        ({"llm_config": {"provider": "openai", "api_key": "sk-live-123456"}}, "api_key"),
        ({"llm_config": {"provider": "openai", "apiKey": "sk-live-123456"}}, "apiKey"),
        (
            {"tts_config": {"provider": "elevenlabs", "voiceId": "v", "xi-api-key": "k"}},
            "xi-api-key",
        ),
        ({"stt_config": {"provider": "deepgram", "token": "dg-123"}}, "token"),
        (
            {
                "llm_config": {
                    "provider": "openai-compatible",
                    "base_url": "http://127.0.0.1:9/v1",
                    "headers": {"Authorization": "Bearer sk-x"},
                }
            },
            "headers.Authorization",
        ),
    ],
)
async def test_keys_in_vendor_configs_are_refused_with_a_pointer_to_byok(
    api: httpx.AsyncClient, body: dict[str, Any], option: str
) -> None:
    r = await api.post("/agents", json={"name": "a", **body})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "POST /byok" in error["message"]
    assert repr(option) in error["message"]
    assert error["param"] == next(iter(body))
    # nothing stored, and the key is not echoed back
    assert "sk-live" not in r.text
    assert (await api.get("/agents")).json()["agents"] == []


async def test_update_refuses_keys_too(api: httpx.AsyncClient) -> None:
    agent_id = (await api.post("/agents", json={"name": "a"})).json()["agent"]["id"]
    r = await api.patch(
        f"/agents/{agent_id}", json={"llm_config": {"provider": "groq", "api_key": "gsk_123"}}
    )
    assert r.status_code == 400
    assert "POST /byok" in r.json()["error"]["message"]


async def test_tool_parameters_named_like_secrets_are_fine(api: httpx.AsyncClient) -> None:
    tool = {
        "name": "reset",
        "description": "reset a password",
        "parameters": {"type": "object", "properties": {"password": {"type": "string"}}},
    }
    r = await api.post(
        "/agents", json={"name": "a", "llm_config": {"provider": "openai", "tools": [tool]}}
    )
    assert r.status_code == 201, r.text


async def test_a_key_stored_before_the_rule_is_never_returned(
    api: httpx.AsyncClient, services: Services
) -> None:
    agent_id = (await api.post("/agents", json={"name": "a"})).json()["agent"]["id"]
    async with services.db.transaction() as s:
        await s.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(
                llm_config={
                    "provider": "openai",
                    "api_key": "sk-legacy-999",
                    "extra": {"apiKey": "sk-legacy-888", "keep": 1},
                }
            )
        )
    r = await api.get(f"/agents/{agent_id}")
    assert r.status_code == 200
    assert "sk-legacy" not in r.text
    assert r.json()["agent"]["llm_config"]["extra"] == {"keep": 1}
