"""ElevenLabs text-to-speech (stream-input websocket and streaming HTTP) and the
voice list, against the local ElevenLabs fake."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.tts.elevenlabs import ElevenLabsTTS, list_voices
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.speech_audio import speech_like_pcm
from tests.providers.speech_vendors.audio_checks import collect, eventually

SENTENCE = "Thanks for calling, how can I help you today?"


def make_tts(fake: FakeElevenLabs, **options: object) -> ElevenLabsTTS:
    values: dict[str, object] = {
        "api_key": fake.api_key,
        "voice_id": fake.voice_id,
        "base_url": fake.url,
        "retry_backoff": 0.01,
    }
    values.update(options)
    return ElevenLabsTTS(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["websocket", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def synthesize(tts: ElevenLabsTTS, text: str = SENTENCE) -> bytes:
    try:
        return b"".join(c.pcm for c in await collect(tts.synthesize(text)))
    finally:
        await tts.aclose()


async def play_into(tts: ElevenLabsTTS, received: list[bytes]) -> None:
    async for chunk in tts.synthesize(SENTENCE):
        received.append(chunk.pcm)


# --- the websocket protocol ---------------------------------------------------------


async def test_websocket_sends_the_documented_handshake_and_messages(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    settings = {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.05}
    tts = make_tts(
        fake_elevenlabs,
        model="eleven_turbo_v2_5",
        voice_settings=settings,
        chunk_length_schedule=[50, 90],
    )

    await synthesize(tts)

    session = fake_elevenlabs.session
    assert session.voice_id == fake_elevenlabs.voice_id
    assert session.query == {"model_id": "eleven_turbo_v2_5", "output_format": "pcm_16000"}
    assert session.headers["xi-api-key"] == fake_elevenlabs.api_key
    assert session.messages == [
        {
            "text": " ",
            "voice_settings": settings,
            "generation_config": {"chunk_length_schedule": [50, 90]},
        },
        {"text": SENTENCE + " ", "flush": True},
        {"text": ""},
    ]
    assert session.generations == [SENTENCE]  # flushed at once, not held for the schedule
    assert session.closed_by == "final"


async def test_the_key_never_rides_in_a_websocket_message(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    await synthesize(make_tts(fake_elevenlabs))

    for message in fake_elevenlabs.session.messages:
        assert fake_elevenlabs.api_key not in str(message)
        assert not {"xi-api-key", "xi_api_key", "authorization"} & set(message)


async def test_websocket_audio_arrives_in_whole_samples_at_the_asked_rate(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    fake_elevenlabs.plan.chunk_bytes = 777  # every message splits a sample
    tts = make_tts(fake_elevenlabs, sample_rate=24_000)

    chunks = await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert fake_elevenlabs.session.query["output_format"] == "pcm_24000"
    assert len(chunks) > 5
    assert all(c.sample_rate == 24_000 for c in chunks)
    assert all(len(c.pcm) % 2 == 0 for c in chunks)
    assert b"".join(c.pcm for c in chunks) == speech_like_pcm(SENTENCE, 24_000)


async def test_first_audio_arrives_before_the_sentence_is_done(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    fake_elevenlabs.plan.chunk_bytes = 3201
    fake_elevenlabs.plan.chunk_delay = 0.02
    tts = make_tts(fake_elevenlabs)

    async with aclosing(tts.synthesize(SENTENCE)) as chunks:
        first = await anext(chunks)
        assert first.pcm
        assert fake_elevenlabs.streams.completed == 0
        rest = [c async for c in chunks]
    await tts.aclose()

    assert rest
    assert fake_elevenlabs.streams.completed == 1


async def test_language_code_goes_only_to_models_that_enforce_a_language(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    flash = make_tts(fake_elevenlabs, transport=transport, language="en-US")
    multilingual = make_tts(
        fake_elevenlabs, transport=transport, language="nl", model="eleven_multilingual_v2"
    )

    assert await synthesize(flash)
    assert await synthesize(multilingual)  # the fake refuses language_code for this model

    if transport == "websocket":
        first, second = (s.query for s in fake_elevenlabs.sessions)
    else:
        first, second = (
            {**dict(r.query), **r.json} for r in fake_elevenlabs.requests_to("/stream")
        )
    assert first["language_code"] == "en"
    assert "language_code" not in second


async def test_an_unknown_voice_is_a_final_error_from_the_socket(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    tts = make_tts(fake_elevenlabs, voice_id="no-such-voice")

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert not caught.value.retryable
    assert "does not exist" in caught.value.message
    assert len(fake_elevenlabs.sessions) == 1
    assert fake_elevenlabs.session.close_code == 1008


async def test_a_policy_close_mid_audio_is_final(fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.close_next(1008, "quota exceeded", after_bytes=3000)
    tts = make_tts(fake_elevenlabs)

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert not caught.value.retryable
    assert "code 1008: quota exceeded" in caught.value.message


async def test_a_server_close_before_any_audio_is_retried(fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.close_next(1011, "internal server error", after_bytes=0)
    tts = make_tts(fake_elevenlabs)

    audio = await synthesize(tts)

    assert audio == speech_like_pcm(SENTENCE, 16_000)
    assert [s.close_code for s in fake_elevenlabs.sessions] == [1011, 1000]


async def test_a_server_close_mid_audio_is_a_retryable_error(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    fake_elevenlabs.close_next(1011, "internal server error", after_bytes=4000)
    tts = make_tts(fake_elevenlabs)
    received: list[bytes] = []

    with pytest.raises(ProviderError) as caught:
        await play_into(tts, received)
    await tts.aclose()

    assert received  # the audio before the close was played: no retry after that
    assert caught.value.retryable
    assert "before the audio ended (code 1011: internal server error)" in caught.value.message
    assert len(fake_elevenlabs.sessions) == 1


# --- both transports: the same failures ---------------------------------------------


async def test_rejected_key_fails_at_once_without_retrying(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    tts = make_tts(fake_elevenlabs, transport=transport, api_key="xi-wrong-key")

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert caught.value.message == "HTTP 401: Invalid API key"
    attempts = fake_elevenlabs.sessions if transport == "websocket" else fake_elevenlabs.requests
    assert len(attempts) == 1


async def test_rate_limit_is_retried_once_before_any_audio(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    busy = {"detail": {"status": "too_many_concurrent_requests", "message": "Too many requests"}}
    fake_elevenlabs.faults.fail_next(429, busy)
    tts = make_tts(fake_elevenlabs, transport=transport)

    audio = await synthesize(tts)

    assert audio == speech_like_pcm(SENTENCE, 16_000)
    attempts = fake_elevenlabs.sessions if transport == "websocket" else fake_elevenlabs.requests
    assert len(attempts) == 2


async def test_server_errors_that_persist_surface_as_retryable(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    fake_elevenlabs.faults.fail_next(500, times=2)
    tts = make_tts(fake_elevenlabs, transport=transport)

    with pytest.raises(ProviderError) as caught:
        await synthesize(tts)

    assert caught.value.status == 500
    assert caught.value.retryable
    assert caught.value.message == "HTTP 500: scripted 500"
    attempts = fake_elevenlabs.sessions if transport == "websocket" else fake_elevenlabs.requests
    assert len(attempts) == 2


async def test_a_stall_mid_audio_times_out(fake_elevenlabs: FakeElevenLabs, transport: str) -> None:
    fake_elevenlabs.faults.stall_next(3.0, after_bytes=3000)
    tts = make_tts(fake_elevenlabs, transport=transport, stall_timeout=0.3)
    received: list[bytes] = []

    with pytest.raises(ProviderError) as caught:
        await play_into(tts, received)
    await tts.aclose()

    assert received
    assert caught.value.retryable
    assert "stalled" in caught.value.message or "timed out" in caught.value.message


async def test_a_connection_dropped_mid_audio_is_a_retryable_error(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    fake_elevenlabs.faults.drop_next(after_bytes=6000)
    tts = make_tts(fake_elevenlabs, transport=transport)
    received: list[bytes] = []

    with pytest.raises(ProviderError) as caught:
        await play_into(tts, received)
    await tts.aclose()

    assert received
    assert caught.value.retryable
    assert fake_elevenlabs.streams.dropped == 1
    if transport == "websocket":
        assert "no close frame" in caught.value.message
    else:
        assert "interrupted" in caught.value.message


async def test_cancelling_the_listener_closes_the_stream(
    fake_elevenlabs: FakeElevenLabs, transport: str
) -> None:
    fake_elevenlabs.plan.chunk_delay = 0.05
    tts = make_tts(fake_elevenlabs, transport=transport)
    first_chunk = asyncio.Event()

    async def play() -> None:
        async for _ in tts.synthesize(SENTENCE * 4):
            first_chunk.set()

    player = asyncio.create_task(play())
    await first_chunk.wait()
    player.cancel()
    with pytest.raises(asyncio.CancelledError):
        await player

    await eventually(lambda: fake_elevenlabs.streams.disconnected == 1)
    assert fake_elevenlabs.streams.completed == 0
    if transport == "websocket":
        await eventually(lambda: fake_elevenlabs.session.closed_by == "client")
    await tts.aclose()


async def test_a_handshake_that_never_completes_times_out() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the upgrade request; never answered
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tts = ElevenLabsTTS(
        api_key="xi-key", voice_id="v", base_url=f"http://127.0.0.1:{port}", connect_timeout=0.3
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await synthesize(tts)
    finally:
        release.set()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0)

    assert caught.value.retryable
    assert "timed out" in caught.value.message


# --- HTTP request shape ---------------------------------------------------------------


async def test_http_transport_posts_the_documented_request(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    settings = {"stability": 0.4, "similarity_boost": 0.7}
    tts = make_tts(
        fake_elevenlabs,
        transport="http",
        sample_rate=22_050,
        voice_settings=settings,
        language="de-DE",
    )

    audio = await synthesize(tts)

    request = fake_elevenlabs.requests_to("/stream")[0]
    assert request.method == "POST"
    assert request.path == f"/v1/text-to-speech/{fake_elevenlabs.voice_id}/stream"
    assert request.query == [("output_format", "pcm_22050")]
    assert request.headers["xi-api-key"] == fake_elevenlabs.api_key
    assert request.json == {
        "text": SENTENCE,
        "model_id": "eleven_flash_v2_5",
        "voice_settings": settings,
        "language_code": "de",
    }
    assert audio == speech_like_pcm(SENTENCE, 22_050)


# --- construction and the voice list ---------------------------------------------------


def test_construction_checks_key_rate_and_transport() -> None:
    with pytest.raises(MissingCredentials):
        ElevenLabsTTS(api_key=None, voice_id="v")
    with pytest.raises(ProviderError, match="not an ElevenLabs PCM rate"):
        ElevenLabsTTS(api_key="k", voice_id="v", sample_rate=11_025)
    with pytest.raises(ProviderError, match="unknown transport"):
        ElevenLabsTTS(api_key="k", voice_id="v", transport="grpc")  # type: ignore[arg-type]


async def test_voice_list_reads_names_languages_and_genders(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    voices = await list_voices(api_key=fake_elevenlabs.api_key, base_url=fake_elevenlabs.url)

    assert [(v.id, v.name, v.language, v.gender) for v in voices] == [
        ("21m00Tcm4TlvDq8ikWAM", "Rachel", "en", "female"),
        ("JBFqnCBsd6RMkjVDRZzb", "George", "en", "male"),
        ("cl0nedVoice000000001", "Front desk (clone)", "nl", None),
    ]
    assert all(v.provider == "elevenlabs" for v in voices)
    request = fake_elevenlabs.requests_to("/v1/voices")[0]
    assert request.headers["xi-api-key"] == fake_elevenlabs.api_key


async def test_voice_list_errors_are_provider_errors(fake_elevenlabs: FakeElevenLabs) -> None:
    with pytest.raises(ProviderError) as caught:
        await list_voices(api_key="xi-wrong", base_url=fake_elevenlabs.url)
    assert caught.value.status == 401

    fake_elevenlabs.faults.fail_next(503)
    with pytest.raises(ProviderError) as busy:
        await list_voices(api_key=fake_elevenlabs.api_key, base_url=fake_elevenlabs.url)
    assert busy.value.status == 503
    assert busy.value.retryable
