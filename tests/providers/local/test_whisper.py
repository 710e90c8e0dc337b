"""Local Whisper speech-to-text on real Piper speech, telephone audio, silence and noise."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from flireo.errors import ProviderError
from flireo.media.frames import FRAME_BYTES
from flireo.providers.stt.base import SpeechToText, Transcript
from flireo.providers.stt.local_whisper import (
    ENCODER_SECONDS,
    WhisperSTT,
    load_whisper_model,
    speech_span,
)
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


def engine_feed(pcm: bytes, *, trailing_s: float = 0.5) -> list[bytes]:
    """20 ms frames as TurnTaker gives a per-utterance STT: 0.4 s of pre-roll before
    the onset, the speech, then the end-of-turn silence."""
    audio = bytes(int(16_000 * 0.4) * 2) + pcm + bytes(int(16_000 * trailing_s) * 2)
    return [audio[i : i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)]


async def test_four_calls_at_once_all_get_their_finals_through_the_phone_line(
    appointment_pcm: bytes,
) -> None:
    lines = [
        APPOINTMENT,
        "Can you transfer me to billing?",
        "What time do you open on Saturday?",
        "Is there a pharmacy near the main station?",
    ]
    audio = [phone_line(appointment_pcm)] + [phone_line(await speak(t)) for t in lines[1:]]
    stt = WhisperSTT()

    async def call(pcm: bytes) -> str:
        stream = await stt.open(language="en")
        for frame in engine_feed(pcm):
            await stream.push(frame)
            await asyncio.sleep(0)  # the calls' frames interleave, as on the live loop
        await stream.finalize()
        await stream.aclose()
        (final,) = [t async for t in stream.transcripts()]
        return final.text

    heard = await asyncio.wait_for(asyncio.gather(*(call(pcm) for pcm in audio)), 120)
    assert [words(text) for text in heard] == [words(line) for line in lines]


async def wait_for_runs(stt: WhisperSTT, runs: int) -> None:
    """Until Whisper has run ``runs`` times (the pool does it; nothing to await on)."""
    for _ in range(6_000):
        if stt.decoded >= runs:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"Whisper ran {stt.decoded} times in 60 s, expected {runs}")


async def test_a_speculation_made_in_the_end_of_turn_silence_is_the_final(
    appointment_pcm: bytes,
) -> None:
    stt = WhisperSTT()
    stream = await stt.open(language="en")
    frames = engine_feed(phone_line(appointment_pcm), trailing_s=0.3)
    for frame in frames:
        await stream.push(frame)
    await wait_for_runs(stt, 1)  # 200 ms of quiet started one in the background
    for _ in range(10):  # the rest of the end-of-turn silence
        await stream.push(bytes(FRAME_BYTES))
    await stream.finalize()
    await stream.aclose()
    (final,) = [t async for t in stream.transcripts()]
    assert words(final.text) == words(APPOINTMENT)
    assert stt.speculation_hits == 1
    assert stt.decoded == 1  # Whisper did not run again for the final


async def test_speech_after_a_speculation_is_heard_in_the_final(appointment_pcm: bytes) -> None:
    stt = WhisperSTT()
    stream = await stt.open(language="en")
    for frame in engine_feed(appointment_pcm, trailing_s=0.3):
        await stream.push(frame)
    await wait_for_runs(stt, 1)  # a speculation of the first sentence only
    for frame in engine_feed(await speak("Yes, please.")):  # the caller goes on
        await stream.push(frame)
    await stream.finalize()
    await stream.aclose()
    (final,) = [t async for t in stream.transcripts()]
    assert words(final.text) == [*words(APPOINTMENT), "yes", "please"]
    assert stt.speculation_hits == 0


async def test_without_speculation_whisper_runs_once_per_final(appointment_pcm: bytes) -> None:
    stt = WhisperSTT(speculate=False)
    stream = await stt.open(language="en")
    for frame in engine_feed(appointment_pcm):
        await stream.push(frame)
    await stream.finalize()
    await stream.aclose()
    (final,) = [t async for t in stream.transcripts()]
    assert words(final.text) == words(APPOINTMENT)
    assert (stt.decoded, stt.speculation_hits) == (1, 0)


def test_only_the_speech_and_a_short_pad_go_to_whisper(appointment_pcm: bytes) -> None:
    gap = bytes(16_000 * 2 * 2)  # 2 s of silence either side
    samples = np.frombuffer(gap + appointment_pcm + gap, dtype="<i2").astype(np.float32) / 32768
    span = speech_span(samples)
    assert span is not None
    speech_start, speech_end = 32_000, 32_000 + len(appointment_pcm) // 2
    assert speech_start - 1_600 <= span.start <= speech_start + 3_200
    assert speech_end - 6_400 <= span.end <= speech_end + 3_200
    assert speech_span(np.zeros(16_000, dtype=np.float32)) is None


async def test_an_utterance_longer_than_the_short_window_is_heard_whole() -> None:
    text = (
        "I have been trying to reach someone about my insurance claim for three weeks now, "
        "and nobody has called me back. Could you please look into it today and send me "
        "an email when it is done?"
    )
    pcm = await speak(text)
    assert len(pcm) / 32_000 > ENCODER_SECONDS - 2  # too long for the 10 s window
    final = await WhisperSTT().transcribe(padded(pcm))
    heard = words(final.text)
    errors = sum(a != b for a, b in zip(heard, words(text), strict=False))
    assert abs(len(heard) - len(words(text))) <= 1
    assert errors <= 2
