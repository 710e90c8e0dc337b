"""Vendor API keys: the organization's BYOK key first, else the platform's key from
settings, else none. Checked at ``resolve_key`` and at :meth:`CallRunner.prepare`,
which turns a missing key into a specific ``ended_reason`` before audio flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from flireo.domain.byok import BYOK_PROVIDERS
from flireo.engine import ended_reasons
from flireo.errors import ProviderError
from flireo.providers.llm.base import ChatMessage, TextDelta
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.realtime.xai import XaiRealtimeModel
from flireo.providers.stt.deepgram import DeepgramSTT
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.cartesia import CartesiaTTS
from flireo.providers.tts.elevenlabs import ElevenLabsTTS
from flireo.providers.tts.local_piper import PiperTTS
from flireo.services.call_runner import CallSetupError, PreparedCall
from flireo.services.container import Services
from flireo.services.credentials import PLATFORM_KEY_PROVIDERS, resolve_key
from flireo.settings import Settings
from flireo.store.tables import ByokKey, Secret
from tests.api.conftest import MakeOrg, Org
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.services.test_call_runner import record, runner, stored_call

BYOK_OPENAI = "sk-byok-openai-PLAINTEXT-1001"
PLATFORM_OPENAI = "sk-platform-openai-PLAINTEXT-1002"
OTHER_ORG_OPENAI = "sk-other-org-openai-PLAINTEXT-1003"
HELLO = [ChatMessage(role="user", content="Hello?")]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with no platform vendor key whatever the environment says."""
    for provider in PLATFORM_KEY_PROVIDERS:
        setattr(settings, f"{provider}_api_key", None)
    return settings


async def add_byok(api: httpx.AsyncClient, provider: str, key: str, org: Org | None = None) -> None:
    headers = org.headers if org else None
    r = await api.post("/byok", json={"provider": provider, "api_key": key}, headers=headers)
    assert r.status_code in (200, 201), r.text


async def key_for(
    services: Services, org_id: str, provider: str, settings: Settings | None = None
) -> str | None:
    async with services.db.read() as s:
        return await resolve_key(s, services.vault, settings or services.settings, org_id, provider)


# --- resolve_key ----------------------------------------------------------------------


async def test_byok_key_wins_over_the_platform_key(
    services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    services.settings.openai_api_key = PLATFORM_OPENAI
    await add_byok(api, "openai", BYOK_OPENAI)

    assert await key_for(services, org.id, "openai") == BYOK_OPENAI


async def test_platform_key_is_used_when_the_org_has_no_byok_key(
    services: Services, org: Org
) -> None:
    services.settings.openai_api_key = PLATFORM_OPENAI

    assert await key_for(services, org.id, "openai") == PLATFORM_OPENAI
    # only the vendor with a platform key has one
    assert await key_for(services, org.id, "anthropic") is None


async def test_no_key_anywhere_resolves_to_none(services: Services, org: Org) -> None:
    for provider in BYOK_PROVIDERS:
        assert await key_for(services, org.id, provider) is None, provider


async def test_an_empty_platform_key_counts_as_none(services: Services, org: Org) -> None:
    services.settings.deepgram_api_key = ""

    assert await key_for(services, org.id, "deepgram") is None


async def test_platform_keys_come_from_flireo_environment_variables(
    services: Services, org: Org, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLIREO_OPENAI_API_KEY", PLATFORM_OPENAI)
    monkeypatch.setenv("FLIREO_DEEPGRAM_API_KEY", "dg-platform-from-env-1004")
    from_env = Settings(data_dir=tmp_path)

    assert from_env.openai_api_key == PLATFORM_OPENAI
    assert await key_for(services, org.id, "openai", from_env) == PLATFORM_OPENAI
    assert await key_for(services, org.id, "deepgram", from_env) == "dg-platform-from-env-1004"
    assert await key_for(services, org.id, "cartesia", from_env) is None


@pytest.mark.parametrize("provider", PLATFORM_KEY_PROVIDERS)
async def test_every_byok_provider_falls_back_to_its_own_settings_field(
    provider: str, services: Services, org: Org
) -> None:
    """``<provider>_api_key`` exists on Settings for every BYOK provider the platform
    can hold a key for, and is the one used for it (not a neighbour's)."""
    for other in PLATFORM_KEY_PROVIDERS:
        setattr(services.settings, f"{other}_api_key", f"platform-{other}-key-1005")

    assert await key_for(services, org.id, provider) == f"platform-{provider}-key-1005"


async def test_another_organizations_byok_key_is_never_used(
    services: Services, org: Org, make_org: MakeOrg, api: httpx.AsyncClient
) -> None:
    other = await make_org("Other Corp")
    await add_byok(api, "openai", OTHER_ORG_OPENAI, org=other)

    assert await key_for(services, org.id, "openai") is None
    services.settings.openai_api_key = PLATFORM_OPENAI
    assert await key_for(services, org.id, "openai") == PLATFORM_OPENAI
    # the owner still gets its own key
    assert await key_for(services, other.id, "openai") == OTHER_ORG_OPENAI


async def test_a_byok_row_pointing_at_another_organizations_secret_is_not_revealed(
    services: Services, org: Org, make_org: MakeOrg, api: httpx.AsyncClient
) -> None:
    """Defence in depth: even a row of ours naming another organization's vault
    secret does not hand out that organization's key."""
    other = await make_org("Other Corp")
    await add_byok(api, "openai", OTHER_ORG_OPENAI, org=other)
    async with services.db.transaction() as s:
        theirs = await s.get(ByokKey, (other.id, "openai"))
        assert theirs is not None
        secret = await s.get(Secret, theirs.secret_id)
        assert secret is not None
        assert secret.org_id == other.id
        s.add(ByokKey(org_id=org.id, provider="openai", secret_id=theirs.secret_id))
    services.settings.openai_api_key = PLATFORM_OPENAI

    assert await key_for(services, org.id, "openai") == PLATFORM_OPENAI


@pytest.mark.parametrize(
    ("provider", "key_name"),
    [
        ("xai_realtime", "xai"),
        ("xai", "xai"),
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("groq", "groq"),
        ("mistral", "mistral"),
        ("deepgram", "deepgram"),
        ("elevenlabs", "elevenlabs"),
        ("cartesia", "cartesia"),
    ],
)
async def test_pipeline_provider_names_use_their_vendors_key(
    provider: str, key_name: str, services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    setattr(services.settings, f"{key_name}_api_key", f"platform-{key_name}-key-1006")
    assert await key_for(services, org.id, provider) == f"platform-{key_name}-key-1006"

    await add_byok(api, key_name, f"byok-{key_name}-key-1007")
    assert await key_for(services, org.id, provider) == f"byok-{key_name}-key-1007"


@pytest.mark.parametrize(
    "provider", ["whisper", "pocketsphinx", "piper", "ollama", "openai-compatible", "", "nope"]
)
async def test_local_and_unknown_providers_get_no_key(
    provider: str, services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    """Nor does a self-hosted LLM server without its own BYOK key: no platform key,
    no other vendor's key."""
    for name in PLATFORM_KEY_PROVIDERS:
        setattr(services.settings, f"{name}_api_key", f"platform-{name}-key-1008")
    await add_byok(api, "openai", BYOK_OPENAI)

    assert await key_for(services, org.id, provider) is None


@pytest.mark.parametrize("provider", ["ollama", "openai-compatible"])
async def test_a_self_hosted_llm_server_gets_the_orgs_own_key_only(
    provider: str, services: Services, org: Org, make_org: MakeOrg, api: httpx.AsyncClient
) -> None:
    for name in PLATFORM_KEY_PROVIDERS:
        setattr(services.settings, f"{name}_api_key", f"platform-{name}-key-1015")
    other = await make_org("Other Corp")
    await add_byok(api, provider, "other-org-server-key-1016", org=other)
    assert await key_for(services, org.id, provider) is None

    await add_byok(api, provider, "vllm-server-key-1017")
    assert await key_for(services, org.id, provider) == "vllm-server-key-1017"


async def test_deleting_the_byok_key_falls_back_to_the_platform_key_at_once(
    services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    services.settings.openai_api_key = PLATFORM_OPENAI
    await add_byok(api, "openai", BYOK_OPENAI)
    assert await key_for(services, org.id, "openai") == BYOK_OPENAI

    r = await api.request("DELETE", "/byok", json={"provider": "openai"})
    assert r.status_code == 200, r.text

    assert await key_for(services, org.id, "openai") == PLATFORM_OPENAI
    services.settings.openai_api_key = None
    assert await key_for(services, org.id, "openai") is None


async def test_a_rotated_byok_key_is_used_at_once(
    services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    await add_byok(api, "openai", BYOK_OPENAI)
    await add_byok(api, "openai", "sk-byok-openai-rotated-1009")

    assert await key_for(services, org.id, "openai") == "sk-byok-openai-rotated-1009"


# --- CallRunner.prepare ------------------------------------------------------------------

#: an agent that needs no vendor key: local STT and TTS, a local OpenAI-compatible LLM
LOCAL: dict[str, dict[str, Any]] = {
    "stt_config": {"provider": "whisper", "language": "en"},
    "llm_config": {"provider": "ollama", "model": "llama3.2"},
    "tts_config": {"provider": "piper"},
}

#: (the vendor's pipeline slot and config, the BYOK provider, the exact reason, the class)
VENDORS = [
    pytest.param(
        "stt_config",
        {"provider": "deepgram", "model": "nova-3-general", "language": "en"},
        "deepgram",
        "pipeline-error-deepgram-transcriber-missing-api-key",
        DeepgramSTT,
        id="deepgram-stt",
    ),
    pytest.param(
        "tts_config",
        {"provider": "elevenlabs", "voiceId": "21m00Tcm4TlvDq8ikWAM"},
        "elevenlabs",
        "pipeline-error-elevenlabs-voice-missing-api-key",
        ElevenLabsTTS,
        id="elevenlabs-tts",
    ),
    pytest.param(
        "tts_config",
        {"provider": "cartesia", "voiceId": "a0e99841-438c-4a64-b679-ae501e7d6091"},
        "cartesia",
        "pipeline-error-cartesia-voice-missing-api-key",
        CartesiaTTS,
        id="cartesia-tts",
    ),
    pytest.param(
        "llm_config",
        {"provider": "xai_realtime", "voice": "ara"},
        "xai",
        "pipeline-error-xai-realtime-missing-api-key",
        XaiRealtimeModel,
        id="xai-realtime",
    ),
]


async def make_agent(api: httpx.AsyncClient, slot: str, config: dict[str, Any]) -> str:
    body: dict[str, Any] = {"name": "Front desk", "first_message": "Hello.", **LOCAL}
    body[slot] = config
    r = await api.post("/agents", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["agent"]["id"])


def built(prepared: PreparedCall, slot: str) -> object:
    p = prepared.pipeline
    if slot == "stt_config":
        return p.stt
    if slot == "tts_config":
        return p.tts
    return p.realtime


async def test_an_agent_of_local_providers_needs_no_key(
    services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    """The baseline the vendor cases differ from by one slot."""
    agent_id = await make_agent(api, "stt_config", LOCAL["stt_config"])
    call_id = await stored_call(services, org, agent_id)

    prepared = await runner(services).prepare(call_id)

    p = prepared.pipeline
    assert isinstance(p.stt, WhisperSTT)
    assert isinstance(p.llm, OpenAICompatibleLLM)
    assert isinstance(p.tts, PiperTTS)
    assert p.realtime is None


@pytest.mark.parametrize(("slot", "config", "vendor", "reason", "cls"), VENDORS)
async def test_prepare_without_any_key_fails_with_the_stages_missing_key_reason(
    slot: str,
    config: dict[str, Any],
    vendor: str,
    reason: str,
    cls: type,
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
) -> None:
    # a key for another vendor does not help
    await add_byok(api, "openai", BYOK_OPENAI)
    agent_id = await make_agent(api, slot, config)
    call_id = await stored_call(services, org, agent_id)

    with pytest.raises(CallSetupError) as failed:
        await runner(services).prepare(call_id)

    assert failed.value.ended_reason == reason
    assert ended_reasons.is_error(failed.value.ended_reason)
    assert "no API key configured" in failed.value.error
    # prepare only refuses; ending the record is the caller's (run/fail) business
    assert (await record(services, call_id)).status == "ringing"


@pytest.mark.parametrize(("slot", "config", "vendor", "reason", "cls"), VENDORS)
async def test_prepare_builds_the_vendor_with_the_orgs_byok_key(
    slot: str,
    config: dict[str, Any],
    vendor: str,
    reason: str,
    cls: type,
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
) -> None:
    setattr(services.settings, f"{vendor}_api_key", f"platform-{vendor}-key-1010")
    await add_byok(api, vendor, f"byok-{vendor}-key-1011")
    agent_id = await make_agent(api, slot, config)
    call_id = await stored_call(services, org, agent_id)

    prepared = await runner(services).prepare(call_id)

    provider = built(prepared, slot)
    assert isinstance(provider, cls)
    # every vendor client keeps its key as ``_api_key`` (sent as its auth header)
    assert provider._api_key == f"byok-{vendor}-key-1011"  # type: ignore[attr-defined]
    assert prepared.org_id == org.id


@pytest.mark.parametrize(("slot", "config", "vendor", "reason", "cls"), VENDORS)
async def test_prepare_uses_the_platform_key_without_byok(
    slot: str,
    config: dict[str, Any],
    vendor: str,
    reason: str,
    cls: type,
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
) -> None:
    setattr(services.settings, f"{vendor}_api_key", f"platform-{vendor}-key-1012")
    agent_id = await make_agent(api, slot, config)
    call_id = await stored_call(services, org, agent_id)

    provider = built(await runner(services).prepare(call_id), slot)

    assert isinstance(provider, cls)
    assert provider._api_key == f"platform-{vendor}-key-1012"  # type: ignore[attr-defined]


async def test_prepare_never_uses_another_organizations_byok_key(
    services: Services, org: Org, make_org: MakeOrg, api: httpx.AsyncClient
) -> None:
    other = await make_org("Other Corp")
    await add_byok(api, "deepgram", "dg-other-org-key-1013", org=other)
    agent_id = await make_agent(api, "stt_config", {"provider": "deepgram"})
    call_id = await stored_call(services, org, agent_id)

    with pytest.raises(CallSetupError) as failed:
        await runner(services).prepare(call_id)

    assert failed.value.ended_reason == "pipeline-error-deepgram-transcriber-missing-api-key"


async def test_prepare_after_the_byok_key_is_deleted_fails_cleanly(
    services: Services, org: Org, api: httpx.AsyncClient
) -> None:
    await add_byok(api, "elevenlabs", "el-byok-key-1014")
    agent_id = await make_agent(
        api, "tts_config", {"provider": "elevenlabs", "voiceId": "21m00Tcm4TlvDq8ikWAM"}
    )
    call_id = await stored_call(services, org, agent_id)
    run = runner(services)
    assert isinstance((await run.prepare(call_id)).pipeline.tts, ElevenLabsTTS)

    r = await api.request("DELETE", "/byok", json={"provider": "elevenlabs"})
    assert r.status_code == 200, r.text

    with pytest.raises(CallSetupError) as failed:
        await run.prepare(call_id)
    assert failed.value.ended_reason == "pipeline-error-elevenlabs-voice-missing-api-key"


# --- an LLM server the agent names with base_url ------------------------------------


async def llm_agent(api: httpx.AsyncClient, llm_config: dict[str, Any]) -> str:
    return await make_agent(api, "llm_config", llm_config)


async def test_a_self_hosted_server_that_requires_a_key_is_sent_the_orgs_byok_key(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    # fake_openai stands in for a vLLM / llama.cpp server started with --api-key
    assert fake_openai.api_key
    fake_openai.enqueue(Reply.say("Hello from your own server."))
    config = {"provider": "openai-compatible", "base_url": fake_openai.url, "model": "llama3.2"}
    call_id = await stored_call(services, org, await llm_agent(api, config))
    assert (await runner(services).prepare(call_id)).pipeline.llm._api_key is None  # type: ignore[union-attr]

    await add_byok(api, "openai-compatible", fake_openai.api_key)
    llm = (await runner(services).prepare(call_id)).pipeline.llm
    assert isinstance(llm, OpenAICompatibleLLM)
    said = [e.text async for e in llm.stream(HELLO) if isinstance(e, TextDelta)]

    assert "".join(said) == "Hello from your own server."
    [request] = fake_openai.requests
    assert request["model"] == "llama3.2"


async def test_the_platforms_key_is_not_sent_to_an_agents_base_url(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    services.settings.openai_api_key = PLATFORM_OPENAI
    proxied = {"provider": "openai", "base_url": fake_openai.url, "model": "gpt-4o-mini"}
    call_id = await stored_call(services, org, await llm_agent(api, proxied))

    # called without a key (issue 14: a self-hosted server may need none); the
    # server at the agent's address never sees the platform's key
    llm = (await runner(services).prepare(call_id)).pipeline.llm
    assert isinstance(llm, OpenAICompatibleLLM)
    with pytest.raises(ProviderError) as refused:
        [e async for e in llm.stream(HELLO)]
    assert refused.value.status == 401
    assert "POST /byok" in refused.value.message
    assert "authorization" not in fake_openai.headers[0]

    # the organization's own key may go where its agent points
    await add_byok(api, "openai", BYOK_OPENAI)
    llm = (await runner(services).prepare(call_id)).pipeline.llm
    assert llm._api_key == BYOK_OPENAI  # type: ignore[union-attr]
    # and the platform's key still serves the vendor's own address
    direct = {"provider": "openai", "model": "gpt-4o-mini"}
    other_call = await stored_call(services, org, await llm_agent(api, direct))
    r = await api.request("DELETE", "/byok", json={"provider": "openai"})
    assert r.status_code == 200, r.text
    llm = (await runner(services).prepare(other_call)).pipeline.llm
    assert llm._api_key == PLATFORM_OPENAI  # type: ignore[union-attr]
