"""``GET /voices``: the local voice always, vendor voices only with a key (the
organization's BYOK key or the platform's), vendor libraries fetched from local
fakes of ElevenLabs and Cartesia at their wire protocols."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flireo.providers.catalog import OPENAI_TTS_VOICES
from flireo.services.container import Services
from tests.api.conftest import MakeOrg, Org
from tests.fakes.cartesia import FakeCartesia
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import serve

JOE = {
    "id": "joe-us",
    "name": "Joe",
    "provider": "piper",
    "language": "en-US",
    "gender": "male",
    "sample_rate": 22_050,
    "kind": "local",
    "set_in": "tts_config.voiceId",
}
VENDORS = ("openai", "elevenlabs", "cartesia", "xai_realtime")


@pytest.fixture
def elevenlabs(services: Services) -> Iterator[FakeElevenLabs]:
    fake = FakeElevenLabs()
    with serve(fake.app()) as srv:
        fake.url = srv.url
        services.settings.elevenlabs_base_url = srv.url
        yield fake


@pytest.fixture
def cartesia(services: Services) -> Iterator[FakeCartesia]:
    fake = FakeCartesia()
    with serve(fake.app()) as srv:
        fake.url = srv.url
        services.settings.cartesia_base_url = srv.url
        yield fake


def ids(body: dict[str, object], provider: str | None = None) -> list[str]:
    voices = body["voices"]
    assert isinstance(voices, list)
    return [v["id"] for v in voices if provider is None or v["provider"] == provider]


async def test_without_vendor_keys_only_the_local_voice_is_listed(api: httpx.AsyncClient) -> None:
    r = await api.get("/voices")

    assert r.status_code == 200
    body = r.json()
    assert body["voices"] == [JOE]
    assert body["by_language"] == {"en-US": ["joe-us"]}
    assert body["pagination"] == {"total": 1, "limit": 100, "offset": 0}
    assert set(body["unavailable"]) == set(VENDORS)
    assert all("no API key" in reason for reason in body["unavailable"].values())


async def test_a_platform_openai_key_adds_the_documented_openai_voices(
    api: httpx.AsyncClient, services: Services
) -> None:
    services.settings.openai_api_key = "sk-platform-0000000000000000"

    body = (await api.get("/voices")).json()

    assert ids(body, "openai") == [v.id for v in OPENAI_TTS_VOICES]
    alloy = next(v for v in body["voices"] if v["id"] == "alloy")
    assert alloy == {
        "id": "alloy",
        "name": "Alloy",
        "provider": "openai",
        "language": None,
        "gender": None,
        "sample_rate": 24_000,
        "kind": "vendor",
        "set_in": "tts_config.voiceId",
    }
    assert body["by_language"]["multilingual"] == [v.id for v in OPENAI_TTS_VOICES]
    assert "openai" not in body["unavailable"]
    assert "sk-platform" not in (await api.get("/voices")).text


async def test_an_xai_byok_key_adds_the_realtime_voices_for_llm_config(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/byok", json={"provider": "xai", "api_key": "xai-byok-0000000000000000"})

    body = (await api.get("/voices", params={"provider": "xai_realtime"})).json()

    assert ids(body) == ["eve", "ara", "rex", "sal", "leo"]
    assert {v["set_in"] for v in body["voices"]} == {"llm_config.voice"}
    assert body["unavailable"] == {}


async def test_a_byok_elevenlabs_key_lists_that_accounts_library(
    api: httpx.AsyncClient, elevenlabs: FakeElevenLabs, make_org: MakeOrg
) -> None:
    assert elevenlabs.api_key
    await api.post("/byok", json={"provider": "elevenlabs", "api_key": elevenlabs.api_key})

    body = (await api.get("/voices", params={"provider": "elevenlabs"})).json()

    assert ids(body) == [v["voice_id"] for v in elevenlabs.voices]
    rachel = body["voices"][0]
    assert rachel == {
        "id": "21m00Tcm4TlvDq8ikWAM",
        "name": "Rachel",
        "provider": "elevenlabs",
        "language": "en",
        "gender": "female",
        "sample_rate": None,
        "kind": "vendor",
        "set_in": "tts_config.voiceId",
    }
    assert body["unavailable"] == {}
    request = elevenlabs.requests_to("/v1/voices")[0]
    assert request.headers["xi-api-key"] == elevenlabs.api_key

    # another organization without a key does not see them
    other = await make_org("Other Corp")
    theirs = (await api.get("/voices", headers=other.headers)).json()
    assert ids(theirs, "elevenlabs") == []
    assert "elevenlabs" in theirs["unavailable"]


async def test_a_platform_cartesia_key_lists_every_page_of_voices(
    api: httpx.AsyncClient, services: Services, cartesia: FakeCartesia
) -> None:
    cartesia.voices += [
        {"id": f"voice-{i:03d}", "name": f"Voice {i}", "language": "de", "gender": "masculine"}
        for i in range(120)
    ]
    services.settings.cartesia_api_key = cartesia.api_key

    body = (await api.get("/voices", params={"provider": "cartesia", "limit": 1000})).json()

    assert body["pagination"]["total"] == 123
    assert ids(body)[:3] == [v["id"] for v in cartesia.voices[:3]]
    assert body["voices"][0]["gender"] == "female"
    assert len(body["by_language"]["de"]) == 120
    assert len(cartesia.requests_to("/voices")) == 2


async def test_a_vendor_that_refuses_the_key_is_reported_not_fatal(
    api: httpx.AsyncClient, elevenlabs: FakeElevenLabs
) -> None:
    await api.post("/byok", json={"provider": "elevenlabs", "api_key": "xi-revoked-00000000"})

    r = await api.get("/voices")

    assert r.status_code == 200
    body = r.json()
    assert ids(body, "elevenlabs") == []
    assert "joe-us" in ids(body)
    assert "HTTP 401: Invalid API key" in body["unavailable"]["elevenlabs"]


async def test_a_vendor_that_is_down_is_reported_and_retried_later(
    api: httpx.AsyncClient, services: Services, cartesia: FakeCartesia
) -> None:
    services.settings.cartesia_api_key = cartesia.api_key
    cartesia.faults.fail_next(503)

    down = (await api.get("/voices", params={"provider": "cartesia"})).json()
    again = (await api.get("/voices", params={"provider": "cartesia"})).json()

    assert "HTTP 503" in down["unavailable"]["cartesia"]
    assert again == down  # the failure is remembered briefly, not re-asked at once
    assert len(cartesia.requests_to("/voices")) == 1


async def test_vendor_libraries_are_cached_per_key(
    api: httpx.AsyncClient, elevenlabs: FakeElevenLabs
) -> None:
    assert elevenlabs.api_key
    await api.post("/byok", json={"provider": "elevenlabs", "api_key": elevenlabs.api_key})

    first = (await api.get("/voices")).json()
    second = (await api.get("/voices")).json()
    assert first == second
    assert len(elevenlabs.requests_to("/v1/voices")) == 1

    # a rotated key is asked again (and here refused)
    await api.post("/byok", json={"provider": "elevenlabs", "api_key": "xi-rotated-0000000"})
    third = (await api.get("/voices")).json()
    assert len(elevenlabs.requests_to("/v1/voices")) == 2
    assert "elevenlabs" in third["unavailable"]


async def test_language_filter_keeps_multilingual_voices(
    api: httpx.AsyncClient, services: Services, cartesia: FakeCartesia
) -> None:
    services.settings.openai_api_key = "sk-platform-0000000000000000"
    services.settings.cartesia_api_key = cartesia.api_key

    dutch = (await api.get("/voices", params={"language": "nl-NL"})).json()
    english = (await api.get("/voices", params={"language": "en"})).json()
    american = (await api.get("/voices", params={"language": "en_us"})).json()

    assert ids(dutch, "cartesia") == ["e07c00bc-4134-4eae-9ea4-1a55fb45746b"]
    assert ids(dutch, "piper") == []
    assert len(ids(dutch, "openai")) == len(OPENAI_TTS_VOICES)
    assert ids(english, "piper") == ["joe-us"]
    assert len(ids(english, "cartesia")) == 2
    assert ids(american, "piper") == ["joe-us"]
    assert set(english["by_language"]) == {"en-US", "en", "multilingual"}


async def test_provider_filter_and_pagination(api: httpx.AsyncClient, services: Services) -> None:
    services.settings.openai_api_key = "sk-platform-0000000000000000"

    local = (await api.get("/voices", params={"provider": "piper"})).json()
    assert local["voices"] == [JOE]
    assert local["unavailable"] == {}

    window = (await api.get("/voices", params={"limit": 3, "offset": 2})).json()
    everything = (await api.get("/voices")).json()
    assert window["pagination"] == {"total": 12, "limit": 3, "offset": 2}
    assert window["voices"] == everything["voices"][2:5]
    assert sum(len(group) for group in window["by_language"].values()) == 3

    past_the_end = (await api.get("/voices", params={"offset": 50})).json()
    assert past_the_end["voices"] == []
    assert past_the_end["pagination"]["total"] == 12


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"provider": "acme"}, "provider"),
        ({"provider": "11labs"}, "provider"),
        ({"language": "english please"}, "language"),
        ({"language": "x" * 40}, "language"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_bad_filters_are_400_with_param(
    api: httpx.AsyncClient, params: dict[str, object], param: str
) -> None:
    r = await api.get("/voices", params=params)

    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


async def test_voices_need_an_api_key(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.get("/voices")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/voices", headers=org.headers)).status_code == 200
