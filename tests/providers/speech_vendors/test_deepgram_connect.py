"""Deepgram websocket handshakes that are slow or never complete, against the
local Deepgram fake.

What the client does (``flireo.providers.stt.deepgram``): ``open()`` waits at
most ``connect_timeout`` for the upgrade; past that it raises a retryable
``ProviderError`` ("timed out"); there is no retry inside the client.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from flireo.errors import ProviderError
from flireo.providers.stt.deepgram import DeepgramSTT
from tests.fakes.deepgram import FakeDeepgram
from tests.providers.speech_vendors.audio_checks import eventually, frames, silence, tone

CONNECT_TIMEOUT = 0.3


def make_stt(fake: FakeDeepgram, connect_timeout: float = CONNECT_TIMEOUT) -> DeepgramSTT:
    return DeepgramSTT(
        api_key=fake.api_key,
        url=fake.url,
        connect_timeout=connect_timeout,
        finalize_timeout=1.0,
        settled_finalize_timeout=0.2,
    )


async def test_a_handshake_that_never_completes_times_out_within_connect_timeout(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.stall_next_handshake(10.0)
    stt = make_stt(fake_deepgram)
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        await stt.open(language="en")
    elapsed = time.monotonic() - started

    assert CONNECT_TIMEOUT <= elapsed < 2  # the client's timeout, not the 10 s stall
    error = caught.value
    assert error.provider == "deepgram"
    assert error.retryable
    assert error.status is None
    assert error.message.startswith("timed out")
    assert len(fake_deepgram.sessions) == 1  # the upgrade reached the server once
    assert not fake_deepgram.connected


async def test_after_a_timed_out_handshake_a_new_open_transcribes(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.stall_next_handshake(10.0)
    fake_deepgram.enqueue_utterances("I need a plumber.")
    stt = make_stt(fake_deepgram)

    with pytest.raises(ProviderError):
        await stt.open()
    stream = await stt.open()
    for frame in frames(tone(0.6) + silence(0.2)):
        await stream.push(frame)
    await stream.finalize()
    final = None
    async with asyncio.timeout(3):
        async for transcript in stream.transcripts():
            if transcript.is_final:
                final = transcript
                break
    await stream.aclose()

    assert final is not None
    assert final.text == "I need a plumber."
    assert len(fake_deepgram.sessions) == 2


async def test_a_slow_handshake_inside_connect_timeout_still_opens(
    fake_deepgram: FakeDeepgram,
) -> None:
    fake_deepgram.stall_next_handshake(0.2)
    stt = make_stt(fake_deepgram, connect_timeout=2.0)
    started = time.monotonic()

    stream = await stt.open()
    elapsed = time.monotonic() - started
    await eventually(lambda: fake_deepgram.connected)
    await stream.aclose()

    assert elapsed >= 0.2  # the fake did hold the upgrade back
    await eventually(lambda: not fake_deepgram.connected)
