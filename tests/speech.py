"""Real speech for tests of every area: Piper says it, Whisper hears it.

- ``await speak("text")``: 16 kHz s16le PCM, cached per text for the whole test
  process. Piper's random variation is switched off, so every run hears the same
  audio and a test that passes once keeps passing.
- ``await transcribe(pcm)``: what local Whisper hears ("" for silence or noise).
- ``words(text)``: lower-case words without punctuation, for comparing.
- ``phone_line(pcm)``: 16 kHz audio degraded the way a G.711 call does.
"""

from __future__ import annotations

import re

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.media.g711 import ulaw_decode, ulaw_encode
from flireo.media.resample import Resampler, resample_all
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS

_spoken: dict[str, bytes] = {}
_tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
_stt = WhisperSTT()
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Whisper writes small numbers either way ("nine" or "9"); compare them as words.
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


async def speak(text: str) -> bytes:
    """``text`` spoken by the local Piper voice, as 16 kHz mono s16le PCM."""
    pcm = _spoken.get(text)
    if pcm is None:
        parts = []
        async for chunk in _tts.synthesize(text):
            parts.append(resample_all(chunk.pcm, chunk.sample_rate, SAMPLE_RATE))
        pcm = b"".join(parts)
        _spoken[text] = pcm
    return pcm


async def transcribe(pcm16k: bytes) -> str:
    """What local Whisper hears in 16 kHz mono s16le PCM ("" for silence or noise)."""
    return (await _stt.transcribe(pcm16k)).text


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: "Hello, World!" → ["hello", "world"].

    Numbers up to twenty become words, so "open 9 to 5" equals "open nine to five".
    """
    return [
        _NUMBER_WORDS[int(w)] if w.isdigit() and int(w) < len(_NUMBER_WORDS) else w
        for w in _WORD.findall(text.lower())
    ]


def phone_line(pcm16k: bytes) -> bytes:
    """16 kHz → 8 kHz → μ-law → PCM → 16 kHz, through the live path's streaming resamplers."""
    down, up = Resampler(SAMPLE_RATE, 8_000), Resampler(8_000, SAMPLE_RATE)
    narrow = b"".join(
        down.process(pcm16k[i : i + FRAME_BYTES]) for i in range(0, len(pcm16k), FRAME_BYTES)
    )
    line = ulaw_decode(ulaw_encode(narrow + down.flush()))
    return up.process(line) + up.flush()
