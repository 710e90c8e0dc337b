"""OpenAI transcription failures against the local OpenAI audio fake: rate
limits, a server that stalls past the client's timeout, a connection dropped
in the middle of the answer.

What the client documents (``flireo.providers.stt.openai_stt``): a retryable
failure (429, 5xx, timeout, dropped connection) is retried once after
``retry_backoff`` (``Retry-After`` is not waited for, only carried in the
error); a failure that remains is raised from ``transcripts()`` as a retryable
``ProviderError``, which then ends. A 429 for an account out of credit
(``insufficient_quota``) is not a passing limit: it is raised at once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from flireo.clock import SystemClock
from flireo.errors import ProviderError
from flireo.providers.stt.openai_stt import OpenAITranscriptionStream, OpenAITranscriptionSTT
from tests.fakes.openai_audio import FakeOpenAIAudio
from tests.fakes.openai_chat import QUOTA_MESSAGE, error_body, quota_error_body
from tests.providers.speech_vendors.audio_checks import eventually, tone

BACKOFF = 0.01
TIMEOUT = 0.3
RATE_LIMIT_MESSAGE = (
    "Rate limit reached for gpt-4o-mini-transcribe in organization org-fake on "
    "requests per min (RPM): Limit 50, Used 50, Requested 1."
)


class RecordingClock(SystemClock):
    """The real clock, noting every retry wait the client asks for."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def make_stt(fake: FakeOpenAIAudio, clock: RecordingClock | None = None) -> OpenAITranscriptionSTT:
    return OpenAITranscriptionSTT(
        api_key=fake.api_key,
        base_url=fake.url,
        timeout=TIMEOUT,
        connect_timeout=TIMEOUT,
        retry_backoff=BACKOFF,
        clock=clock,
    )


async def say_one_utterance(stream: OpenAITranscriptionStream) -> None:
    await stream.push(tone(0.3))
    await stream.finalize()


async def first_transcript_text(stream: OpenAITranscriptionStream) -> str:
    async with asyncio.timeout(5):
        return (await anext(stream.transcripts())).text


async def first_failure(stream: OpenAITranscriptionStream) -> ProviderError:
    transcripts = stream.transcripts()
    with pytest.raises(ProviderError) as caught:
        async with asyncio.timeout(5):
            await anext(transcripts)
    with pytest.raises(StopAsyncIteration):  # the transcripts end after the error
        await anext(stream.transcripts())
    return caught.value


async def transcribe_once(
    fake: FakeOpenAIAudio, clock: RecordingClock | None = None
) -> tuple[str, float]:
    """One utterance through a new stream: its first transcript and the seconds it took."""
    stt = make_stt(fake, clock)
    stream = await stt.open()
    started = time.monotonic()
    try:
        await say_one_utterance(stream)
        return await first_transcript_text(stream), time.monotonic() - started
    finally:
        await stream.aclose()
        await stt.aclose()


async def fail_once(fake: FakeOpenAIAudio) -> tuple[ProviderError, float]:
    """One utterance through a new stream: the error it ends with and the seconds it took."""
    stt = make_stt(fake)
    stream = await stt.open()
    started = time.monotonic()
    try:
        await say_one_utterance(stream)
        return await first_failure(stream), time.monotonic() - started
    finally:
        await stream.aclose()
        await stt.aclose()


# --- 429 rate limit ----------------------------------------------------------------


async def test_a_rate_limit_is_retried_once_after_the_backoff(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.fail_next(429, body=error_body(429, RATE_LIMIT_MESSAGE))
    fake_openai_audio.enqueue_transcripts("Table for two, please.")
    clock = RecordingClock()
    text, _ = await transcribe_once(fake_openai_audio, clock)

    assert text == "Table for two, please."
    assert clock.sleeps == [BACKOFF]
    requests = fake_openai_audio.requests_to("/audio/transcriptions")
    assert len(requests) == 2
    assert requests[0].files["file"] == requests[1].files["file"]  # the same utterance again


async def test_a_rate_limit_with_retry_after_is_retried_after_the_client_backoff(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    # The client documents a fixed backoff; a long Retry-After must not hold a
    # live call for 20 s.
    fake_openai_audio.faults.fail_next(
        429, body=error_body(429, RATE_LIMIT_MESSAGE), headers={"Retry-After": "20"}
    )
    fake_openai_audio.enqueue_transcripts("Table for two, please.")
    clock = RecordingClock()
    text, elapsed = await transcribe_once(fake_openai_audio, clock)

    assert text == "Table for two, please."
    assert clock.sleeps == [BACKOFF]
    assert elapsed < 3
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2


@pytest.mark.parametrize("retry_after", [None, "1"])
async def test_a_rate_limit_that_persists_ends_the_transcripts_with_a_retryable_429(
    fake_openai_audio: FakeOpenAIAudio, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    fake_openai_audio.faults.fail_next(
        429, body=error_body(429, RATE_LIMIT_MESSAGE), times=2, headers=headers
    )
    stt = make_stt(fake_openai_audio)
    stream = await stt.open()

    await say_one_utterance(stream)
    error = await first_failure(stream)
    await say_one_utterance(stream)  # ignored: the stream has failed
    await stream.aclose()
    await stt.aclose()

    assert error.provider == "openai"
    assert error.status == 429
    assert error.retryable
    assert error.retry_after == (float(retry_after) if retry_after else None)
    assert error.message.startswith("HTTP 429: Rate limit reached")
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2


async def test_a_429_for_an_exhausted_quota_is_not_retried(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.fail_next(429, body=quota_error_body())
    fake_openai_audio.enqueue_transcripts("Never asked for again.")
    clock = RecordingClock()
    stt = make_stt(fake_openai_audio, clock)
    stream = await stt.open()

    await say_one_utterance(stream)
    error = await first_failure(stream)
    await stream.aclose()
    await stt.aclose()

    assert (error.status, error.retryable) == (429, False)
    assert error.message == f"HTTP 429: {QUOTA_MESSAGE}"
    assert clock.sleeps == []
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 1


# --- a server that stalls past the timeout --------------------------------------------


@pytest.mark.parametrize("after_bytes", [0, 5], ids=["before-the-answer", "mid-answer"])
async def test_a_stall_past_the_timeout_is_retried_and_the_retry_answers(
    fake_openai_audio: FakeOpenAIAudio, after_bytes: int
) -> None:
    fake_openai_audio.faults.stall_next(10.0, after_bytes=after_bytes)
    fake_openai_audio.enqueue_transcripts("First try stalled.", "Second try answered.")
    text, elapsed = await transcribe_once(fake_openai_audio)

    assert text == "Second try answered."
    assert TIMEOUT <= elapsed < 3  # waited for the client timeout, not the 10 s stall
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2


async def test_a_stall_that_persists_is_a_retryable_timeout_error(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.stall_next(10.0, times=2)
    error, elapsed = await fail_once(fake_openai_audio)

    assert error.retryable
    assert error.status is None
    assert error.message == "timed out (ReadTimeout)"
    assert 2 * TIMEOUT <= elapsed < 3
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2


async def test_closing_the_stream_during_a_stall_returns_at_once_and_ends_the_transcripts(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.stall_next(10.0)
    stt = OpenAITranscriptionSTT(api_key=fake_openai_audio.api_key, base_url=fake_openai_audio.url)
    stream = await stt.open()

    await say_one_utterance(stream)
    await eventually(lambda: len(fake_openai_audio.requests) == 1)
    async with asyncio.timeout(2):
        await stream.aclose()
        transcripts = [t async for t in stream.transcripts()]
    await stt.aclose()

    assert transcripts == []
    assert len(fake_openai_audio.requests) == 1


# --- a connection dropped mid-answer --------------------------------------------------


async def test_a_connection_dropped_mid_answer_is_retried(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.drop_next(after_bytes=5)
    fake_openai_audio.enqueue_transcripts("Cut off.", "Heard you the second time.")
    text, _ = await transcribe_once(fake_openai_audio)

    assert text == "Heard you the second time."
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2


async def test_a_connection_dropped_twice_is_a_retryable_connection_error(
    fake_openai_audio: FakeOpenAIAudio,
) -> None:
    fake_openai_audio.faults.drop_next(after_bytes=5, times=2)
    error, _ = await fail_once(fake_openai_audio)

    assert error.retryable
    assert error.status is None
    assert error.message.startswith("connection failed: RemoteProtocolError(")
    assert len(fake_openai_audio.requests_to("/audio/transcriptions")) == 2
