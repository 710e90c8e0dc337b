"""Local pocketsphinx: streaming partials while audio arrives, then a final."""

from __future__ import annotations

import asyncio

import pytest

from flireo.errors import ProviderError
from flireo.media.frames import FRAME_BYTES
from flireo.providers.stt.base import SpeechToText, Transcript
from flireo.providers.stt.local_pocketsphinx import PocketsphinxStream, PocketsphinxSTT

KEY_WORDS = {"book", "appointment", "tomorrow", "morning"}


async def test_partials_grow_while_speaking_then_a_final_with_the_key_words(
    appointment_pcm: bytes,
) -> None:
    stt: SpeechToText = PocketsphinxSTT()
    assert not stt.utterance_based
    stream = await stt.open(language="en-US")
    received: list[Transcript] = []
    first_partial = asyncio.Event()

    async def read() -> None:
        async for transcript in stream.transcripts():
            received.append(transcript)
            first_partial.set()

    reader = asyncio.create_task(read())
    for i in range(0, len(appointment_pcm), FRAME_BYTES):
        await stream.push(appointment_pcm[i : i + FRAME_BYTES])
        await asyncio.sleep(0.002)  # decoding overlaps with the audio, as on a call
    await asyncio.wait_for(first_partial.wait(), timeout=10)  # before any finalize()
    await stream.finalize()
    await stream.aclose()
    await asyncio.wait_for(reader, timeout=30)

    partials = [t for t in received if not t.is_final]
    finals = [t for t in received if t.is_final]
    assert len(partials) >= 2
    assert len(finals) == 1
    assert received[-1] is finals[0]
    heard = set(finals[0].text.split())
    assert len(KEY_WORDS & heard) >= 2, finals[0].text


async def test_frames_that_pile_up_are_decoded_in_batches(appointment_pcm: bytes) -> None:
    stream = await PocketsphinxSTT().open()
    assert isinstance(stream, PocketsphinxStream)
    frames = range(0, len(appointment_pcm), FRAME_BYTES)
    for i in frames:  # no await that yields: all frames queue up before decoding starts
        await stream.push(appointment_pcm[i : i + FRAME_BYTES])
    await stream.finalize()
    await stream.aclose()
    received = [t async for t in stream.transcripts()]
    assert stream.batches < len(frames) // 4
    assert received[-1].is_final
    assert len(KEY_WORDS & set(received[-1].text.split())) >= 2


async def test_each_finalize_gives_one_final_even_without_speech() -> None:
    stream = await PocketsphinxSTT().open()
    await stream.push(bytes(16_000))
    await stream.finalize()
    await stream.finalize()
    await stream.aclose()
    finals = [t async for t in stream.transcripts() if t.is_final]
    assert len(finals) == 2


async def test_a_closed_stream_refuses_audio() -> None:
    stream = await PocketsphinxSTT().open()
    await stream.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await stream.push(bytes(FRAME_BYTES))
    assert [t async for t in stream.transcripts()] == []


async def test_other_languages_are_refused() -> None:
    with pytest.raises(ProviderError, match="English"):
        await PocketsphinxSTT().open(language="fr")
