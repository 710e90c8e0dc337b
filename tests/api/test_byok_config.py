"""``GET /byok/config``: the providers a key can be stored for, their models, and
where this organization's key for each comes from — never a key itself."""

from __future__ import annotations

import httpx

from flireo.domain.byok import BYOK_PROVIDERS
from flireo.services.container import Services
from tests.api.conftest import MakeOrg, Org

OPENAI_KEY = "sk-byok-openai-PLAINTEXT-0001"
PLATFORM_DEEPGRAM = "dg-platform-PLAINTEXT-0002"


async def test_every_byok_provider_is_described_in_the_documented_shape(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/byok/config")

    assert r.status_code == 200
    providers = r.json()["providers"]
    assert [p["id"] for p in providers] == list(BYOK_PROVIDERS)
    assert [p["id"] for p in providers[:5]] == ["deepgram", "openai", "elevenlabs", "xai", "resend"]
    deepgram = providers[0]
    assert deepgram["name"] == "Deepgram"
    assert deepgram["category"] == "stt"
    assert deepgram["docsUrl"].startswith("https://")
    assert deepgram["models"][0] == {
        "id": "nova-3-general",
        "name": "Nova 3 General",
        "default": True,
        "category": "stt",
    }
    openai = providers[1]
    assert openai["category"] == "llm"
    assert openai["categories"] == ["llm", "stt", "tts"]
    llm = [m for m in openai["models"] if m["category"] == "llm"]
    assert llm[:2] == [
        {"id": "gpt-4o-mini", "name": "GPT-4o Mini", "default": True, "category": "llm"},
        {"id": "gpt-4o", "name": "GPT-4o", "default": False, "category": "llm"},
    ]
    elevenlabs = providers[2]
    assert elevenlabs["category"] == "tts"
    assert "eleven_flash_v2_5" in [m["id"] for m in elevenlabs["models"]]
    assert providers[4]["category"] == "email"
    assert providers[4]["models"] == []


async def test_each_provider_has_one_default_model_per_category(api: httpx.AsyncClient) -> None:
    for provider in (await api.get("/byok/config")).json()["providers"]:
        categories = {m["category"] for m in provider["models"]}
        assert categories <= set(provider["categories"]), provider["id"]
        for category in categories:
            defaults = [
                m["id"] for m in provider["models"] if m["category"] == category and m["default"]
            ]
            assert len(defaults) == 1, (provider["id"], category, defaults)


async def test_key_state_follows_byok_entries_and_platform_keys_without_revealing_them(
    api: httpx.AsyncClient, services: Services
) -> None:
    services.settings.deepgram_api_key = PLATFORM_DEEPGRAM
    await api.post("/byok", json={"provider": "openai", "api_key": OPENAI_KEY})

    r = await api.get("/byok/config")

    state = {p["id"]: (p["configured"], p["key_source"]) for p in r.json()["providers"]}
    assert state["openai"] == (True, "byok")
    assert state["deepgram"] == (False, "platform")
    assert state["elevenlabs"] == (False, None)
    assert OPENAI_KEY not in r.text
    assert PLATFORM_DEEPGRAM not in r.text
    assert OPENAI_KEY[-4:] + '"' not in r.text  # not even a masked tail

    await api.request("DELETE", "/byok", json={"provider": "openai"})
    after = {p["id"]: p["key_source"] for p in (await api.get("/byok/config")).json()["providers"]}
    assert after["openai"] is None


async def test_another_organizations_keys_do_not_count(
    api: httpx.AsyncClient, make_org: MakeOrg
) -> None:
    await api.post("/byok", json={"provider": "cartesia", "api_key": "sk_car_byok_00000001"})
    other = await make_org("Other Corp")

    theirs = (await api.get("/byok/config", headers=other.headers)).json()["providers"]

    assert next(p for p in theirs if p["id"] == "cartesia")["configured"] is False


async def test_byok_config_needs_an_api_key(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.get("/byok/config")
    assert r.status_code == 401
    assert (await client.get("/byok/config", headers=org.headers)).status_code == 200


async def test_byok_config_is_read_only(api: httpx.AsyncClient) -> None:
    r = await api.put("/byok/config", json={"providers": []})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
