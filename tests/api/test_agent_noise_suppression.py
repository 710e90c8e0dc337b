"""``stt_config.noiseSuppression`` (snake_case ``noise_suppression`` accepted): stored and
returned over the API, strict about its type, and turned into the engine's
``Endpointing.noise_suppression`` for the agent's calls (RNNoise before VAD/STT)."""

from __future__ import annotations

from typing import Any

import httpx

from flireo.services.session_config import build_session_config
from flireo.store.tables import Agent, Call


def _engine_setting(stt_config: dict[str, Any]) -> bool:
    agent = Agent(id="a1", org_id="o", name="A", stt_config=stt_config, llm_config={},
                  tts_config={"provider": "piper"}, conversation={})  # fmt: skip
    call = Call(id="c1", org_id="o", direction="inbound", caller_phone="+31611111111",
                assistant_phone="+31850835037")  # fmt: skip
    config = build_session_config(call, agent, number=None, webhook_secret=None)
    return config.endpointing.noise_suppression


async def test_noise_suppression_is_off_unless_asked(api: httpx.AsyncClient) -> None:
    r = await api.post("/agents", json={"name": "Quiet"})
    assert r.status_code == 201, r.text
    stt = r.json()["agent"]["stt_config"]
    assert "noiseSuppression" not in stt or stt["noiseSuppression"] is False
    assert _engine_setting(stt) is False


async def test_noise_suppression_over_the_api(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/agents",
        json={
            "name": "Noisy line",
            "stt_config": {"provider": "whisper", "noiseSuppression": True},
        },
    )
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    assert agent["stt_config"]["noiseSuppression"] is True
    got = (await api.get(f"/agents/{agent['id']}")).json()["agent"]
    assert got["stt_config"]["noiseSuppression"] is True
    assert _engine_setting(got["stt_config"]) is True

    # snake_case alias on update
    r = await api.patch(
        f"/agents/{agent['id']}",
        json={"stt_config": {"provider": "whisper", "noise_suppression": False}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["stt_config"]["noiseSuppression"] is False
    assert _engine_setting(r.json()["agent"]["stt_config"]) is False


async def test_noise_suppression_must_be_a_boolean(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/agents",
        json={"name": "Bad", "stt_config": {"provider": "whisper", "noiseSuppression": "yes"}},
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert "noiseSuppression" in r.text or "noise_suppression" in r.text, body
