"""A self-hosted LLM named by ``llm_config.base_url`` (issue 14, friction): called
without a key when the organization stored none; a 401 from it ends the call with
``pipeline-error-<provider>-llm-unauthorized`` and a pointer to ``POST /byok``.
Agent create/update answer ``warnings`` for configurations that cannot work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flireo.clock import SystemClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.providers.llm.base import ChatMessage, TextDelta
from flireo.services.container import Services
from flireo.services.credentials import PLATFORM_KEY_PROVIDERS
from flireo.settings import Settings
from tests.api.conftest import Org
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.services.test_call_runner import record, runner, silence, stored_call
from tests.speech import speak


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No platform vendor key, whatever the environment says."""
    for provider in PLATFORM_KEY_PROVIDERS:
        setattr(settings, f"{provider}_api_key", None)
    return settings


def _serve(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        yield fake


@pytest.fixture
def open_server() -> Iterator[FakeOpenAI]:
    """A vLLM/Ollama-like server started without ``--api-key``."""
    yield from _serve(FakeOpenAI(api_key=None))


@pytest.fixture
def locked_server() -> Iterator[FakeOpenAI]:
    """A server started with ``--api-key``: anonymous requests get a 401."""
    yield from _serve(FakeOpenAI(api_key="server-key-1234"))


async def make_agent(api: httpx.AsyncClient, llm: dict[str, Any]) -> httpx.Response:
    return await api.post(
        "/agents",
        json={
            "name": "Front desk",
            "stt_config": {"provider": "whisper", "language": "en"},
            "llm_config": llm,
            "tts_config": {"provider": "piper"},
        },
    )


@pytest.mark.parametrize("provider", ["openai", "openai-compatible", "ollama"])
async def test_a_self_hosted_server_is_called_without_a_key_when_none_is_set(
    provider: str,
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    open_server: FakeOpenAI,
) -> None:
    r = await make_agent(
        api, {"provider": provider, "model": "llama3.2", "base_url": open_server.url}
    )
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == []
    call_id = await stored_call(services, org, r.json()["agent"]["id"])

    prepared = await runner(services).prepare(call_id)  # no missing-api-key refusal
    assert prepared.pipeline.llm is not None
    text = [
        e.text
        async for e in prepared.pipeline.llm.stream([ChatMessage(role="user", content="Hi?")])
        if isinstance(e, TextDelta)
    ]
    assert "".join(text)
    assert "authorization" not in open_server.headers[0]


@pytest.mark.parametrize("backend", ["sqlite"])  # a whole call: one store is enough
async def test_a_401_from_the_server_ends_the_call_with_a_specific_reason(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    locked_server: FakeOpenAI,
) -> None:
    r = await make_agent(
        api, {"provider": "openai", "model": "llama3.2", "base_url": locked_server.url}
    )
    assert r.status_code == 201, r.text
    call_id = await stored_call(services, org, r.json()["agent"]["id"])
    transport = MemoryTransport(SystemClock())
    task = asyncio.create_task(runner(services).run(call_id, transport))
    await asyncio.sleep(0.5)
    await transport.caller_says(await speak("Hello, are you open today?") + silence(0.8))
    await asyncio.wait_for(task, 30)

    call = await record(services, call_id)
    assert call.status == "ended"
    assert call.ended_reason == "pipeline-error-openai-llm-unauthorized"
    assert call.error is not None
    assert "POST /byok" in call.error
    assert locked_server.headers  # it was asked, without a key
    assert "authorization" not in locked_server.headers[0]


async def test_warnings_name_what_cannot_work(api: httpx.AsyncClient) -> None:
    r = await make_agent(api, {"provider": "groq", "model": "llama-3.1-8b-instant"})
    assert r.status_code == 201, r.text
    warnings = r.json()["warnings"]
    assert [(w["code"], w["param"]) for w in warnings] == [
        ("missing_api_key", "llm_config.provider")
    ]
    assert "POST /byok" in warnings[0]["message"]
    agent_id = r.json()["agent"]["id"]

    r = await api.post("/byok", json={"provider": "groq", "api_key": "gsk_test_123456"})
    assert r.status_code in (200, 201), r.text
    r = await api.patch(
        f"/agents/{agent_id}",
        json={
            "tts_config": {"provider": "elevenlabs", "voiceId": "21m00Tcm4TlvDq8ikWAM"},
            "webhook_events": ["end-of-call-report"],
        },
    )
    assert r.status_code == 200, r.text
    assert [(w["code"], w["param"]) for w in r.json()["warnings"]] == [
        ("missing_api_key", "tts_config.provider"),
        ("webhook_url_missing", "webhook_url"),
    ]
    # GET answers the agent alone
    assert set((await api.get(f"/agents/{agent_id}")).json()) == {"agent"}


async def test_a_platform_key_counts(api: httpx.AsyncClient, services: Services) -> None:
    services.settings.deepgram_api_key = "dg-platform-key"
    r = await api.post(
        "/agents",
        json={
            "name": "a",
            "stt_config": {"provider": "deepgram"},
            "llm_config": {"provider": "ollama"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == []
