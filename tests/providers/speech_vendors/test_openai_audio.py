"""OpenAI text-to-speech and transcription against the local OpenAI audio fake."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.stt.openai_stt import OpenAITranscriptionSTT
from flireo.providers.tts.openai_tts import OpenAITTS
from tests.fakes.openai_audio import SPEECH_RATE, FakeOpenAIAudio
from tests.fakes.speech_audio import speech_like_pcm
from tests.providers.speech_vendors.audio_checks import collect, eventually, frames, tone

SENTENCE = "Thanks for calling, how can I help you today?"


def make_tts(fake: FakeOpenAIAudio, **options: object) -> OpenAITTS:
    return OpenAITTS(api_key=fake.api_key, base_url=fake.url, retry_backoff=0.01, **options)  # type: ignore[arg-type]


def make_stt(fake: FakeOpenAIAudio, **options: object) -> OpenAITranscriptionSTT:
    return OpenAITranscriptionSTT(
        api_key=fake.api_key,
        base_url=fake.url,
        retry_backoff=0.01,
        **options,  # type: ignore[arg-type]
    )


# --- text to speech -----------------------------------------------------------------


async def test_speech_request_is_the_documented_pcm_request(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    tts = make_tts(fake_openai_audio, voice="coral", instructions="Speak warmly.", speed=1.1)

    await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    request = fake_openai_audio.requests_to("/audio/speech")[0]
    assert request.method == "POST"
    assert request.path == "/v1/audio/speech"
    assert request.headers["authorization"] == f"Bearer {fake_openai_audio.api_key}"
    assert request.json == {
        "model": "gpt-4o-mini-tts",
        "input": SENTENCE,
        "voice": "coral",
        "response_format": "pcm",
        "instructions": "Speak warmly.",
        "speed": 1.1,
    }


async def test_tts_1_is_never_sent_instructions(fake_openai_audio: FakeOpenAIAudio) -> None:
    tts = make_tts(fake_openai_audio, model="tts-1", instructions="Speak warmly.")

    chunks = await collect(tts.synthesize("Hello."))
    await tts.aclose()

    assert chunks
    assert "instructions" not in fake_openai_audio.requests_to("/audio/speech")[0].json


async def test_speech_streams_24khz_audio_in_whole_samples(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.plan.chunk_bytes = 777  # every network chunk splits a sample
    tts = make_tts(fake_openai_audio)

    chunks = await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert len(chunks) > 5
    assert all(c.sample_rate == SPEECH_RATE for c in chunks)
    assert all(len(c.pcm) % 2 == 0 for c in chunks)
    assert b"".join(c.pcm for c in chunks) == speech_like_pcm(SENTENCE, SPEECH_RATE)


async def test_first_audio_arrives_while_the_vendor_is_still_speaking(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.plan.chunk_bytes = 4801
    fake_openai_audio.plan.chunk_delay = 0.02
    tts = make_tts(fake_openai_audio)

    async with aclosing(tts.synthesize(SENTENCE)) as chunks:
        first = await anext(chunks)
        assert first.pcm
        assert fake_openai_audio.streams.completed == 0
        rest = [c async for c in chunks]
    await tts.aclose()

    assert rest
    assert fake_openai_audio.streams.completed == 1


async def test_rejected_key_fails_at_once_without_retrying(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    tts = OpenAITTS(api_key="sk-wrong", base_url=fake_openai_audio.url)

    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert "Incorrect API key" in caught.value.message
    assert len(fake_openai_audio.requests) == 1


async def test_rate_limit_is_retried_once_before_any_audio(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.fail_next(429)
    tts = make_tts(fake_openai_audio)

    chunks = await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert b"".join(c.pcm for c in chunks) == speech_like_pcm(SENTENCE, SPEECH_RATE)
    assert len(fake_openai_audio.requests) == 2


async def test_server_errors_that_persist_surface_as_retryable(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.fail_next(500, times=2)
    tts = make_tts(fake_openai_audio)

    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert caught.value.status == 500
    assert caught.value.retryable
    assert len(fake_openai_audio.requests) == 2


async def test_a_stall_between_chunks_times_out(fake_openai_audio: FakeOpenAIAudio) -> None:
    fake_openai_audio.faults.stall_next(2.0, after_bytes=3000)
    tts = make_tts(fake_openai_audio, stall_timeout=0.2)

    received: list[bytes] = []

    async def play() -> None:
        async for chunk in tts.synthesize(SENTENCE):
            received.append(chunk.pcm)

    with pytest.raises(ProviderError) as caught:
        await play()
    await tts.aclose()

    assert received  # audio before the stall was played, so no retry
    assert caught.value.retryable
    assert "timed out" in caught.value.message
    assert len(fake_openai_audio.requests) == 1


async def test_a_connection_dropped_mid_audio_is_a_retryable_error(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.drop_next(after_bytes=6000)
    tts = make_tts(fake_openai_audio)

    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(SENTENCE))
    await tts.aclose()

    assert caught.value.retryable
    assert fake_openai_audio.streams.dropped == 1


async def test_cancelling_the_listener_closes_the_audio_stream(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.plan.chunk_delay = 0.05
    tts = make_tts(fake_openai_audio)
    first_chunk = asyncio.Event()

    async def play() -> None:
        async for _ in tts.synthesize(SENTENCE * 4):
            first_chunk.set()

    player = asyncio.create_task(play())
    await first_chunk.wait()
    player.cancel()
    with pytest.raises(asyncio.CancelledError):
        await player

    await eventually(lambda: fake_openai_audio.streams.disconnected == 1)
    assert fake_openai_audio.streams.completed == 0
    await tts.aclose()


def test_speech_needs_a_key() -> None:
    with pytest.raises(MissingCredentials):
        OpenAITTS(api_key=None)
    with pytest.raises(MissingCredentials):
        OpenAITranscriptionSTT(api_key="")


# --- transcription -------------------------------------------------------------------------


async def test_each_finalized_utterance_is_sent_as_a_wav_and_comes_back_final(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.enqueue_transcripts("I'd like to book a table.")
    stt = make_stt(fake_openai_audio)
    assert stt.utterance_based
    stream = await stt.open(language="en-US", keyterms=["Flireo", "Deepgram"])
    utterance = tone(0.6)

    for frame in frames(utterance):
        await stream.push(frame)
    await stream.finalize()
    transcripts = stream.transcripts()
    final = await anext(transcripts)
    await stream.aclose()
    await stt.aclose()

    assert final.is_final
    assert final.text == "I'd like to book a table."
    request = fake_openai_audio.requests_to("/audio/transcriptions")[0]
    assert request.headers["authorization"] == f"Bearer {fake_openai_audio.api_key}"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert request.form == {
        "model": "gpt-4o-mini-transcribe",
        "response_format": "json",
        "language": "en",
        "prompt": "Vocabulary: Flireo, Deepgram.",
    }
    filename, content_type, _ = request.files["file"]
    assert (filename, content_type) == ("utterance.wav", "audio/wav")
    assert fake_openai_audio.transcribed_pcm() == (utterance, 16_000)


async def test_utterances_come_back_in_order(fake_openai_audio: FakeOpenAIAudio) -> None:
    fake_openai_audio.enqueue_transcripts("First.", "Second.")
    stt = make_stt(fake_openai_audio, model="whisper-1")
    stream = await stt.open()

    await stream.push(tone(0.3))
    await stream.finalize()
    await stream.push(tone(0.5))
    await stream.finalize()
    transcripts = stream.transcripts()
    texts = [(await anext(transcripts)).text for _ in range(2)]
    await stream.aclose()
    await stt.aclose()

    assert texts == ["First.", "Second."]
    requests = fake_openai_audio.requests_to("/audio/transcriptions")
    assert [r.form["model"] for r in requests] == ["whisper-1", "whisper-1"]
    assert "language" not in requests[0].form
    assert "prompt" not in requests[0].form
    assert len(fake_openai_audio.transcribed_pcm(1)[0]) == len(tone(0.5))


async def test_a_too_short_utterance_is_an_empty_final_without_a_request(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    stt = make_stt(fake_openai_audio)
    stream = await stt.open()

    await stream.push(tone(0.04))
    await stream.finalize()
    final = await anext(stream.transcripts())
    await stream.aclose()
    await stt.aclose()

    assert final.is_final
    assert final.text == ""
    assert fake_openai_audio.requests == []


async def test_transcription_retries_a_server_error_once(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.fail_next(503)
    fake_openai_audio.enqueue_transcripts("Still here.")
    stt = make_stt(fake_openai_audio)
    stream = await stt.open()

    await stream.push(tone(0.3))
    await stream.finalize()
    final = await anext(stream.transcripts())
    await stream.aclose()
    await stt.aclose()

    assert final.text == "Still here."
    assert len(fake_openai_audio.requests) == 2


async def test_a_rejected_key_ends_the_transcripts_with_the_error(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    stt = OpenAITranscriptionSTT(api_key="sk-wrong", base_url=fake_openai_audio.url)
    stream = await stt.open()

    await stream.push(tone(0.3))
    await stream.finalize()
    with pytest.raises(ProviderError) as caught:
        await anext(stream.transcripts())
    await stream.aclose()
    await stt.aclose()

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert len(fake_openai_audio.requests) == 1
