"""Deepgram live transcription against the local Deepgram websocket fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.stt.base import Transcript
from flireo.providers.stt.deepgram import DeepgramStream, DeepgramSTT
from tests.fakes.deepgram import FakeDeepgram
from tests.providers.speech_vendors.audio_checks import frames, silence, tone

REQUEST = "I need a plumber tomorrow morning please"


def make_stt(fake: FakeDeepgram, **options: object) -> DeepgramSTT:
    settings: dict[str, object] = {"finalize_timeout": 1.0, "settled_finalize_timeout": 0.2}
    settings.update(options)
    return DeepgramSTT(api_key=fake.api_key, url=fake.url, **settings)  # type: ignore[arg-type]


async def speak(stream: DeepgramStream, pcm: bytes) -> None:
    for frame in frames(pcm):
        await stream.push(frame)


async def until_final(
    transcripts: AsyncIterator[Transcript], within: float = 3.0
) -> tuple[list[str], Transcript]:
    """The partials' texts and the next final."""
    partials: list[str] = []
    async with asyncio.timeout(within):
        async for transcript in transcripts:
            if transcript.is_final:
                return partials, transcript
            partials.append(transcript.text)
    raise AssertionError("transcripts ended without a final")


async def test_listen_request_carries_the_documented_query_and_token(
    fake_deepgram: FakeDeepgram,
) -> None:
    stt = make_stt(fake_deepgram)
    stream = await stt.open(language="en-US", keyterms=["Flireo", "Acme Dental"])
    await stream.aclose()

    session = fake_deepgram.session
    assert session.headers["authorization"] == f"Token {fake_deepgram.api_key}"
    assert session.query == [
        ("model", "nova-3"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("punctuate", "true"),
        ("smart_format", "true"),
        ("endpointing", "300"),
        ("language", "en-US"),
        ("keyterm", "Flireo"),
        ("keyterm", "Acme Dental"),
    ]


async def test_older_models_pass_through_and_boost_keywords_instead(
    fake_deepgram: FakeDeepgram,
) -> None:
    stt = make_stt(fake_deepgram, model="nova-2-phonecall", endpointing_ms=None)
    stream = await stt.open(keyterms=["Acme Dental", "Acme"])
    await stream.aclose()

    session = fake_deepgram.session
    assert session.param("model") == "nova-2-phonecall"
    assert session.param("endpointing") == "false"
    assert session.params("keyterm") == []
    assert session.params("keywords") == ["Acme", "Dental"]


async def test_caller_speech_gives_growing_partials_then_one_final_on_finalize(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.enqueue_utterances(REQUEST)
    stt = make_stt(fake_deepgram)
    stream = await stt.open(language="en")
    speech = tone(1.0)

    await speak(stream, speech)
    await stream.finalize()
    partials, final = await until_final(stream.transcripts())
    await stream.aclose()

    assert len(partials) >= 3
    assert partials[0] == "I"
    assert all(REQUEST.startswith(p) for p in partials)
    assert len(partials[-1]) > len(partials[0])
    assert final == Transcript(REQUEST, is_final=True, confidence=0.98, language="en")
    session = fake_deepgram.session
    assert bytes(session.audio) == speech
    assert session.controls == ["Finalize", "CloseStream"]
    assert session.closed_by == "close_stream"


async def test_final_joins_the_segments_deepgram_fixed_on_the_way(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.final_every_words = 2
    fake_deepgram.enqueue_utterances(REQUEST)
    stt = make_stt(fake_deepgram)
    stream = await stt.open()

    await speak(stream, tone(1.0))
    await stream.finalize()
    partials, final = await until_final(stream.transcripts())
    await stream.aclose()

    fixed = [m for m in fake_deepgram.session.sent if m.get("is_final")]
    assert len(fixed) >= 3  # several is_final segments, the last from Finalize
    assert fixed[-1]["from_finalize"]
    assert final.text == REQUEST
    assert all(REQUEST.startswith(p) for p in partials)


async def test_endpointing_alone_does_not_end_the_callers_turn(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.enqueue_utterances(REQUEST)
    stt = make_stt(fake_deepgram, endpointing_ms=200)
    stream = await stt.open()
    transcripts = stream.transcripts()

    await speak(stream, tone(0.5) + silence(0.4))
    await fake_deepgram.wait_for(
        lambda: any(m.get("speech_final") for m in fake_deepgram.session.sent)
    )
    await speak(stream, tone(0.5))
    await stream.finalize()
    partials, final = await until_final(transcripts)
    await stream.aclose()

    assert final.text == REQUEST  # one final for the whole turn, after finalize()
    assert sum(1 for p in partials if p == REQUEST) <= 1


async def test_two_turns_give_two_finals_in_order(fake_deepgram: FakeDeepgram) -> None:
    fake_deepgram.enqueue_utterances("Hello there.", "Book me for Tuesday.")
    stt = make_stt(fake_deepgram)
    stream = await stt.open()
    transcripts = stream.transcripts()

    await speak(stream, tone(0.4))
    await stream.finalize()
    _, first = await until_final(transcripts)
    await speak(stream, silence(0.2) + tone(0.4))
    await stream.finalize()
    _, second = await until_final(transcripts)
    await stream.aclose()

    assert (first.text, second.text) == ("Hello there.", "Book me for Tuesday.")


async def test_a_finalize_deepgram_never_answers_still_ends_the_turn(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.ignore_finalize = True
    fake_deepgram.final_every_words = 3
    fake_deepgram.enqueue_utterances(REQUEST)
    stt = make_stt(fake_deepgram, finalize_timeout=0.3)
    stream = await stt.open()

    await speak(stream, tone(1.0))
    await stream.finalize()
    _, final = await until_final(stream.transcripts())
    fixed = " ".join(
        m["channel"]["alternatives"][0]["transcript"]
        for m in fake_deepgram.session.sent
        if m.get("is_final")
    )
    await stream.aclose()

    assert final.text == fixed == "I need a"


async def test_finalize_with_nothing_said_gives_an_empty_final(
    fake_deepgram: FakeDeepgram,
) -> None:
    stt = make_stt(fake_deepgram)
    stream = await stt.open()

    await stream.finalize()  # no audio: Deepgram does not answer, the client settles
    _, final = await until_final(stream.transcripts())
    await stream.aclose()

    assert final == Transcript("", is_final=True)


async def test_keepalive_holds_an_idle_connection_open(fake_deepgram: FakeDeepgram) -> None:
    fake_deepgram.idle_timeout = 0.3
    stt = make_stt(fake_deepgram, keepalive_interval=0.05)
    stream = await stt.open()

    await asyncio.sleep(0.6)  # twice the server's idle timeout
    session = fake_deepgram.session
    assert session.closed_by is None
    idle_keepalives = session.keepalives
    assert idle_keepalives >= 5
    for frame in frames(tone(0.3)):  # while audio flows no KeepAlive is needed
        await stream.push(frame)
        await asyncio.sleep(0.02)
    assert session.keepalives <= idle_keepalives + 1
    await stream.aclose()
    assert session.closed_by == "close_stream"


async def test_an_idle_connection_without_keepalive_is_dropped_and_reported(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.idle_timeout = 0.2
    stt = make_stt(fake_deepgram, keepalive_interval=30.0)
    stream = await stt.open()

    with pytest.raises(ProviderError) as caught:
        await until_final(stream.transcripts())
    await stream.push(tone(0.1))  # after the drop, pushes are dropped quietly
    await stream.aclose()

    assert caught.value.retryable
    assert "1011" in caught.value.message
    assert "NET-0001" in caught.value.message or "net0001" in caught.value.message


async def test_a_socket_dropped_mid_call_surfaces_from_transcripts(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.enqueue_utterances(REQUEST)
    fake_deepgram.drop_after_audio(0.5)
    stt = make_stt(fake_deepgram)
    stream = await stt.open()
    received: list[Transcript] = []

    async def listen() -> None:
        async for transcript in stream.transcripts():
            received.append(transcript)

    listener = asyncio.create_task(listen())
    await speak(stream, tone(1.0))
    with pytest.raises(ProviderError) as caught:
        await asyncio.wait_for(listener, 3.0)
    await stream.aclose()

    assert caught.value.retryable
    assert "dropped" in caught.value.message
    assert received  # partials before the drop were delivered
    assert fake_deepgram.session.closed_by == "server"


async def test_a_deepgram_error_message_ends_the_stream(fake_deepgram: FakeDeepgram) -> None:
    stt = make_stt(fake_deepgram)
    stream = await stt.open()
    await fake_deepgram.wait_for(lambda: fake_deepgram.connected)

    fake_deepgram.send(
        {"type": "Error", "variant": "DATA-0000", "description": "Failed to process audio"}
    )
    with pytest.raises(ProviderError) as caught:
        await until_final(stream.transcripts())
    await stream.aclose()

    assert "DATA-0000" in caught.value.message
    assert "Failed to process audio" in caught.value.message


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (429, True), (500, True)])
async def test_a_refused_handshake_is_a_provider_error(
    fake_deepgram: FakeDeepgram, status: int, retryable: bool
) -> None:
    fake_deepgram.reject_next(status)
    stt = make_stt(fake_deepgram)

    with pytest.raises(ProviderError) as caught:
        await stt.open()

    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert caught.value.retry_after is None  # Deepgram named no wait


async def test_a_429_handshake_carries_deepgrams_retry_after(fake_deepgram: FakeDeepgram) -> None:
    fake_deepgram.reject_next(429, "Too many requests.", headers={"Retry-After": "3"})
    stt = make_stt(fake_deepgram)

    with pytest.raises(ProviderError) as caught:
        await stt.open()

    error = caught.value
    assert (error.status, error.retryable, error.retry_after) == (429, True, 3.0)
    assert len(fake_deepgram.sessions) == 1  # reported, not waited out and retried


async def test_a_wrong_key_is_refused_with_401(fake_deepgram: FakeDeepgram) -> None:
    stt = DeepgramSTT(api_key="wrong", url=fake_deepgram.url)

    with pytest.raises(ProviderError) as caught:
        await stt.open()

    assert caught.value.status == 401
    assert "INVALID_AUTH" in caught.value.message


def test_deepgram_needs_a_key() -> None:
    with pytest.raises(MissingCredentials):
        DeepgramSTT(api_key=None)
    assert DeepgramSTT(api_key="k").utterance_based is False
