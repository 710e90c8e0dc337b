"""Local Whisper speech-to-text on real Piper speech, telephone audio, silence and noise."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from flireo.errors import ProviderError
from flireo.media.frames import FRAME_BYTES
from flireo.providers.stt.base import SpeechToText, Transcript
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model
from tests.providers.local.conftest import APPOINTMENT
from tests.speech import phone_line, speak, words


def padded(pcm: bytes, seconds: float = 0.3) -> bytes:
    gap = bytes(int(16_000 * seconds) * 2)
    return gap + pcm + gap


async def final_of(stt: SpeechToText, pcm: bytes) -> Transcript:
    """Push ``pcm`` in 20 ms frames, finalize, and read the one final."""
    stream = await stt.open(language="en")
    for i in range(0, len(pcm), FRAME_BYTES):
        await stream.push(pcm[i : i + FRAME_BYTES])
    await stream.finalize()
    await stream.aclose()
    results = [t async for t in stream.transcripts()]
    assert len(results) == 1
    assert results[0].is_final
    return results[0]


async def test_whisper_hears_the_piper_sentence(appointment_pcm: bytes) -> None:
    final = await final_of(WhisperSTT(), padded(appointment_pcm))
    assert words(final.text) == words(APPOINTMENT)
    assert final.confidence is not None
    assert final.confidence > 0.5


async def test_whisper_hears_it_through_8khz_ulaw(appointment_pcm: bytes) -> None:
    final = await final_of(WhisperSTT(), phone_line(padded(appointment_pcm)))
    assert words(final.text) == words(APPOINTMENT)


@pytest.mark.parametrize("speech_gate", [True, False], ids=["silero-gate", "whisper-alone"])
async def test_silence_and_noise_give_an_empty_final(speech_gate: bool) -> None:
    stt = WhisperSTT(speech_gate=speech_gate)
    rng = np.random.default_rng(3)
    silence = bytes(16_000 * 2 * 2)
    noise = np.clip(rng.normal(0, 1_000, 16_000 * 2), -32768, 32767).astype("<i2").tobytes()
    assert (await stt.transcribe(silence)).text == ""
    assert (await stt.transcribe(noise)).text == ""


async def test_finals_come_in_order_and_the_stream_ends_after_aclose(
    appointment_pcm: bytes,
) -> None:
    stream = await WhisperSTT().open()
    second = await speak("Yes, please.")
    await stream.push(padded(appointment_pcm))
    await stream.finalize()
    await stream.finalize()  # nothing pushed in between: an empty final
    await stream.push(padded(second))
    await stream.finalize()

    async def read_all() -> list[Transcript]:
        return [t async for t in stream.transcripts()]

    reader = asyncio.create_task(read_all())
    await stream.aclose()
    finals = await asyncio.wait_for(reader, timeout=30)

    assert [words(t.text) for t in finals] == [words(APPOINTMENT), [], ["yes", "please"]]
    assert all(t.is_final for t in finals)
    with pytest.raises(ProviderError, match="closed"):
        await stream.push(b"\x00\x00")


async def test_two_calls_at_once_each_get_their_own_words(appointment_pcm: bytes) -> None:
    other = "Can you transfer me to billing please?"
    stt = WhisperSTT()
    first, second = await asyncio.gather(
        final_of(stt, padded(appointment_pcm)), final_of(stt, padded(await speak(other)))
    )
    assert words(first.text) == words(APPOINTMENT)
    assert words(second.text) == words(other)


async def test_keyterms_teach_whisper_how_to_spell_a_name() -> None:
    pcm = await speak("Please connect me to the Flireo clinic.")
    stream = await WhisperSTT().open(keyterms=["Flireo"])
    await stream.push(padded(pcm))
    await stream.finalize()
    await stream.aclose()
    (final,) = [t async for t in stream.transcripts()]
    assert "flireo" in words(final.text)


async def test_only_english_is_accepted() -> None:
    with pytest.raises(ProviderError, match="English"):
        await WhisperSTT().open(language="de")


async def test_the_model_is_loaded_once_per_process() -> None:
    assert load_whisper_model() is load_whisper_model()
