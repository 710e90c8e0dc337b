"""Cartesia text-to-speech (``/tts/bytes``) and the voice list, against the local
Cartesia fake."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import httpx
import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.tts.cartesia import CARTESIA_VERSION, CartesiaTTS, list_voices
from tests.fakes.cartesia import FakeCartesia
from tests.fakes.speech_audio import speech_like_pcm
from tests.providers.speech_vendors.audio_checks import collect, eventually

SENTENCE = "Thanks for calling, how can I help you today?"


def make_tts(fake: FakeCartesia, **options: object) -> CartesiaTTS:
    values: dict[str, object] = {
        "api_key": fake.api_key,
        "voice_id": fake.voice_id,
        "base_url": fake.url,
        "retry_backoff": 0.01,
    }
    values.update(options)
    return CartesiaTTS(**values)  # type: ignore[arg-type]


async def synthesize(tts: CartesiaTTS, text: str = SENTENCE) -> bytes:
    try:
        return b"".join(c.pcm for c in await collect(tts.synthesize(text)))
    finally:
        await tts.aclose()


async def play_into(tts: CartesiaTTS, received: list[bytes]) -> None:
    async for chunk in tts.synthesize(SENTENCE):
        received.append(chunk.pcm)


async def test_speech_request_is_the_documented_bytes_request(fake_cartesia: FakeCartesia) -> None:
    tts = make_tts(fake_cartesia, model="sonic-turbo", language="nl-NL")

    await synthesize(tts)

    request = fake_cartesia.requests_to("/tts/bytes")[0]
    assert request.method == "POST"
    assert request.headers["cartesia-version"] == CARTESIA_VERSION
    assert request.headers["authorization"] == f"Bearer {fake_cartesia.api_key}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "model_id": "sonic-turbo",
        "transcript": SENTENCE,
        "voice": {"mode": "id", "id": fake_cartesia.voice_id},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16_000},
        "language": "nl",
    }


async def test_audio_streams_in_whole_samples_at_the_asked_rate(
    fake_cartesia: FakeCartesia,
) -> None:
    fake_cartesia.plan.chunk_bytes = 777  # every network chunk splits a sample
    tts = make_tts(fake_cartesia, sample_rate=24_000)

    chunks = await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert fake_cartesia.requests[0].json["output_format"]["sample_rate"] == 24_000
    assert len(chunks) > 5
    assert all(c.sample_rate == 24_000 for c in chunks)
    assert all(len(c.pcm) % 2 == 0 for c in chunks)
    assert b"".join(c.pcm for c in chunks) == speech_like_pcm(SENTENCE, 24_000)


async def test_first_audio_arrives_while_cartesia_is_still_speaking(
    fake_cartesia: FakeCartesia,
) -> None:
    fake_cartesia.plan.chunk_bytes = 3201
    fake_cartesia.plan.chunk_delay = 0.02
    tts = make_tts(fake_cartesia)

    async with aclosing(tts.synthesize(SENTENCE)) as chunks:
        first = await anext(chunks)
        assert first.pcm
        assert fake_cartesia.streams.completed == 0
        rest = [c async for c in chunks]
    await tts.aclose()

    assert rest
    assert fake_cartesia.streams.completed == 1


async def test_language_may_be_left_to_the_voice(fake_cartesia: FakeCartesia) -> None:
    await synthesize(make_tts(fake_cartesia, language=None))

    assert "language" not in fake_cartesia.requests[0].json


async def test_rejected_key_fails_at_once_without_retrying(fake_cartesia: FakeCartesia) -> None:
    tts = make_tts(fake_cartesia, api_key="sk_car_wrong")

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert caught.value.message == "HTTP 401: Unauthorized: Invalid API key."
    assert len(fake_cartesia.requests) == 1


async def test_json_error_bodies_of_newer_versions_are_read(fake_cartesia: FakeCartesia) -> None:
    tts = make_tts(fake_cartesia, api_key="sk_car_wrong", version="2026-03-01")

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.message == "HTTP 401: Invalid API key."


async def test_an_unknown_voice_is_a_final_error(fake_cartesia: FakeCartesia) -> None:
    tts = make_tts(fake_cartesia, voice_id="00000000-0000-0000-0000-000000000000")

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.status == 404
    assert not caught.value.retryable
    assert "Voice not found" in caught.value.message


async def test_rate_limit_is_retried_once_before_any_audio(fake_cartesia: FakeCartesia) -> None:
    fake_cartesia.faults.fail_next(429)
    tts = make_tts(fake_cartesia)

    audio = await synthesize(tts)

    assert audio == speech_like_pcm(SENTENCE, 16_000)
    assert len(fake_cartesia.requests) == 2


async def test_server_errors_that_persist_surface_as_retryable(fake_cartesia: FakeCartesia) -> None:
    fake_cartesia.faults.fail_next(500, times=2)
    tts = make_tts(fake_cartesia)

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.status == 500
    assert caught.value.retryable
    assert caught.value.message == "HTTP 500: Internal Server Error: scripted 500"
    assert len(fake_cartesia.requests) == 2


async def test_a_stall_between_chunks_times_out(fake_cartesia: FakeCartesia) -> None:
    fake_cartesia.faults.stall_next(2.0, after_bytes=3000)
    tts = make_tts(fake_cartesia, stall_timeout=0.2)
    received: list[bytes] = []

    with pytest.raises(ProviderError) as caught:
        await play_into(tts, received)
    await tts.aclose()

    assert received  # audio before the stall was played, so no retry
    assert caught.value.retryable
    assert "timed out" in caught.value.message
    assert len(fake_cartesia.requests) == 1


async def test_a_server_that_never_answers_times_out_before_any_audio(
    fake_cartesia: FakeCartesia,
) -> None:
    fake_cartesia.faults.stall_next(2.0)
    fake_cartesia.faults.stall_next(2.0)
    tts = make_tts(fake_cartesia, stall_timeout=0.2)

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.retryable
    assert "timed out" in caught.value.message
    assert len(fake_cartesia.requests) == 2  # retried once: nothing had been played


async def test_a_connection_dropped_mid_audio_is_a_retryable_error(
    fake_cartesia: FakeCartesia,
) -> None:
    fake_cartesia.faults.drop_next(after_bytes=6000)
    tts = make_tts(fake_cartesia)
    received: list[bytes] = []

    with pytest.raises(ProviderError) as caught:
        await play_into(tts, received)
    await tts.aclose()

    assert received
    assert caught.value.retryable
    assert "interrupted" in caught.value.message
    assert fake_cartesia.streams.dropped == 1


async def test_a_refused_connection_is_a_retryable_error() -> None:
    tts = CartesiaTTS(api_key="k", voice_id="v", base_url="http://127.0.0.1:9", retries=0)

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.retryable
    assert "connection failed" in caught.value.message


async def test_cancelling_the_listener_closes_the_audio_stream(
    fake_cartesia: FakeCartesia,
) -> None:
    fake_cartesia.plan.chunk_delay = 0.05
    tts = make_tts(fake_cartesia)
    first_chunk = asyncio.Event()

    async def play() -> None:
        async for _ in tts.synthesize(SENTENCE * 4):
            first_chunk.set()

    player = asyncio.create_task(play())
    await first_chunk.wait()
    player.cancel()
    with pytest.raises(asyncio.CancelledError):
        await player

    await eventually(lambda: fake_cartesia.streams.disconnected == 1)
    assert fake_cartesia.streams.completed == 0
    await tts.aclose()


def test_construction_checks_key_and_rate() -> None:
    with pytest.raises(MissingCredentials):
        CartesiaTTS(api_key=None, voice_id="v")
    with pytest.raises(ProviderError, match="not a Cartesia rate"):
        CartesiaTTS(api_key="k", voice_id="v", sample_rate=11_025)


# --- voice list -----------------------------------------------------------------------------


async def test_voice_list_follows_every_page(fake_cartesia: FakeCartesia) -> None:
    fake_cartesia.voices += [
        {"id": f"voice-{i:03d}", "name": f"Voice {i}", "language": "en", "gender": "feminine"}
        for i in range(230)
    ]

    voices = await list_voices(api_key=fake_cartesia.api_key, base_url=fake_cartesia.url)

    assert len(voices) == 233
    assert [(v.id, v.language, v.gender) for v in voices[:3]] == [
        ("694f9389-aac1-45b6-b726-9d9369183238", "en", "female"),
        ("a0e99841-438c-4a64-b679-ae501e7d6091", "en", "male"),
        ("e07c00bc-4134-4eae-9ea4-1a55fb45746b", "nl", "gender_neutral"),
    ]
    pages = fake_cartesia.requests_to("/voices")
    assert len(pages) == 3
    assert pages[0].param("limit") == "100"
    assert pages[1].param("starting_after") == "voice-096"
    assert pages[0].headers["authorization"] == f"Bearer {fake_cartesia.api_key}"


async def test_voice_list_reads_the_bare_array_of_2024_06_10(fake_cartesia: FakeCartesia) -> None:
    voices = await list_voices(
        api_key=fake_cartesia.api_key, base_url=fake_cartesia.url, version="2024-06-10"
    )

    assert [v.name for v in voices] == ["Sarah", "Barbershop Man", "Dutch Narrator"]


async def test_voice_list_errors_are_provider_errors(fake_cartesia: FakeCartesia) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderError) as caught:
            await list_voices(api_key="sk_car_wrong", base_url=fake_cartesia.url, http=http)
        assert caught.value.status == 401

        fake_cartesia.faults.fail_next(503)
        with pytest.raises(ProviderError) as busy:
            await list_voices(api_key=fake_cartesia.api_key, base_url=fake_cartesia.url, http=http)
        assert busy.value.retryable
        assert not http.is_closed  # a shared client is left open
