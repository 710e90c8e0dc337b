"""Local Piper text-to-speech: real synthesis with the voice from its wheel."""

from __future__ import annotations

import numpy as np
import pytest

from flireo.errors import ProviderError
from flireo.media.resample import resample_all
from flireo.providers.tts.base import AudioChunk, TextToSpeech
from flireo.providers.tts.local_piper import PIPER_VOICES, PiperTTS, load_piper_voice
from tests.speech import transcribe, words


async def collect(tts: TextToSpeech, text: str) -> list[AudioChunk]:
    return [chunk async for chunk in tts.synthesize(text)]


async def test_each_sentence_arrives_as_its_own_chunk_at_the_voice_rate() -> None:
    tts: TextToSpeech = PiperTTS()
    chunks = await collect(tts, "Thanks for calling. How can I help you today?")
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.sample_rate == 22_050
        pcm = np.frombuffer(chunk.pcm, dtype="<i2")
        assert 0.5 < pcm.size / 22_050 < 4.0
        assert np.abs(pcm).max() > 10_000  # real, normalised speech, not silence


async def test_synthesized_speech_says_the_text() -> None:
    text = "What time do you close on Saturday?"
    chunks = await collect(PiperTTS(), text)
    pcm16k = b"".join(resample_all(c.pcm, c.sample_rate, 16_000) for c in chunks)
    assert words(await transcribe(pcm16k)) == words(text)


async def test_a_higher_speed_gives_shorter_speech() -> None:
    text = "Please hold while I check the calendar."
    normal = sum(len(c.pcm) for c in await collect(PiperTTS(), text))
    fast = sum(len(c.pcm) for c in await collect(PiperTTS(speed=2.0), text))
    slow = sum(len(c.pcm) for c in await collect(PiperTTS(length_scale=1.6), text))
    assert fast < normal * 0.8
    assert slow > normal * 1.2


async def test_blank_text_gives_no_audio() -> None:
    assert await collect(PiperTTS(), "   ") == []


def test_an_unknown_voice_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="unknown voice"):
        PiperTTS("nobody")


def test_speed_and_length_scale_are_alternatives() -> None:
    with pytest.raises(ValueError, match="not both"):
        PiperTTS(speed=1.2, length_scale=0.8)


async def test_without_noise_the_same_text_gives_the_same_audio() -> None:
    steady = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    text = "Your appointment is confirmed."
    first = b"".join(c.pcm for c in await collect(steady, text))
    second = b"".join(c.pcm for c in await collect(steady, text))
    assert first == second


def test_the_voice_is_loaded_once_per_process() -> None:
    assert load_piper_voice("joe-us") is load_piper_voice("joe-us")


def test_the_voice_list_describes_the_local_voice() -> None:
    assert PIPER_VOICES == [
        {
            "id": "joe-us",
            "name": "Joe",
            "language": "en-US",
            "gender": "male",
            "provider": "piper",
            "sample_rate": 22_050,
            "kind": "local",
        }
    ]
