"""Fixed phrases (first message, fillers, transfer lines) are synthesized once per
voice and replayed from the phrase cache on later calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flireo.clock import SystemClock
from flireo.engine.metrics import Usage
from flireo.engine.phrases import PhraseCache
from flireo.engine.speech import Playout, Utterance
from flireo.providers.tts.base import AudioChunk
from flireo.providers.tts.local_piper import PiperTTS


class QueueTransport:
    """Just enough of an AudioTransport for Playout: keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, pcm: bytes) -> None:
        self.sent.append(pcm)

    def clear(self) -> None:
        self.sent.clear()

    @property
    def played_samples(self) -> int:
        return 0

    @property
    def queued_samples(self) -> int:
        return sum(len(p) for p in self.sent) // 2

    def audio_bytes(self) -> bytes:
        return b"".join(self.sent)


class CountingTTS:
    """A TTS that makes a new tone each time (so a replay is told from a re-synthesis)."""

    provider = "counting"
    voice = "v1"

    def __init__(self, *, phrase_key: str | None = "counting:v1", chunks: int = 3) -> None:
        if phrase_key is not None:
            self.phrase_key = phrase_key
        self.calls: list[str] = []
        self.chunks = chunks
        self.gate: asyncio.Event | None = None

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        self.calls.append(text)
        n = len(self.calls)
        for i in range(self.chunks):
            if i and self.gate is not None:
                await self.gate.wait()
            yield AudioChunk(pcm=bytes([n, i]) * 1600, sample_rate=16_000)

    async def aclose(self) -> None:
        return None


def playout(tts: object, cache: PhraseCache) -> tuple[Playout, QueueTransport, Usage]:
    transport, usage = QueueTransport(), Usage()
    return Playout(tts, transport, SystemClock(), usage, phrases=cache), transport, usage  # type: ignore[arg-type]


async def test_a_fixed_phrase_is_synthesized_once_and_replayed() -> None:
    cache = PhraseCache()
    tts = CountingTTS()
    first, out1, usage1 = playout(tts, cache)
    await first.speak("Hello, this is Anna.", Utterance(), reuse=True)
    second, out2, usage2 = playout(tts, cache)
    await second.speak("Hello, this is Anna.", Utterance(), reuse=True)

    assert tts.calls == ["Hello, this is Anna."]
    assert out2.audio_bytes() == out1.audio_bytes()
    assert out1.audio_bytes()
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    # the vendor was asked once: only that call counts the characters
    assert usage1.tts_characters == len("Hello, this is Anna.")
    assert usage2.tts_characters == 0


async def test_llm_text_and_unnamed_voices_are_not_kept() -> None:
    cache = PhraseCache()
    tts = CountingTTS()
    p, _, _ = playout(tts, cache)
    await p.speak("We open at nine.", Utterance())
    await p.speak("We open at nine.", Utterance())
    assert tts.calls == ["We open at nine."] * 2
    assert len(cache) == 0

    anonymous = CountingTTS(phrase_key=None)
    p, _, _ = playout(anonymous, cache)
    await p.speak("Hello.", Utterance(), reuse=True)
    await p.speak("Hello.", Utterance(), reuse=True)
    assert anonymous.calls == ["Hello."] * 2
    assert len(cache) == 0


async def test_other_settings_of_the_voice_are_another_rendition() -> None:
    cache = PhraseCache()
    slow, fast = CountingTTS(phrase_key="counting:v1:slow"), CountingTTS(phrase_key="counting:v1")
    for tts in (slow, fast, slow):
        p, _, _ = playout(tts, cache)
        await p.speak("Hello.", Utterance(), reuse=True)
    assert (len(slow.calls), len(fast.calls), len(cache)) == (1, 1, 2)


async def test_a_phrase_cut_off_by_barge_in_is_not_kept() -> None:
    cache = PhraseCache()
    tts = CountingTTS()
    tts.gate = asyncio.Event()
    p, _, _ = playout(tts, cache)
    speaking = asyncio.create_task(p.speak("Hello, this is Anna.", Utterance(), reuse=True))
    await asyncio.sleep(0.01)  # the first chunk is out, the rest waits
    p.stop()  # barge-in
    tts.gate.set()
    await speaking
    assert len(cache) == 0
    p, out, _ = playout(tts, cache)
    await p.speak("Hello, this is Anna.", Utterance(), reuse=True)
    assert len(tts.calls) == 2
    assert len(out.sent) == 3
    assert len(cache) == 1


def test_the_cache_keeps_to_its_byte_budget_least_recently_used_out() -> None:
    cache = PhraseCache(budget_bytes=10_000)
    chunk = AudioChunk(pcm=bytes(4_000), sample_rate=16_000)
    cache.put("v", "a", [chunk])
    cache.put("v", "b", [chunk])
    assert cache.get("v", "a") is not None  # a is now the most recent
    cache.put("v", "c", [chunk])  # 12,000 bytes: b goes
    assert cache.get("v", "b") is None
    assert cache.get("v", "a") is not None
    assert cache.get("v", "c") is not None
    assert cache.size_bytes == 8_000
    cache.put("v", "huge", [AudioChunk(pcm=bytes(20_000), sample_rate=16_000)])
    assert cache.get("v", "huge") is None
    assert len(cache) == 2
    cache.put("v", "a", [AudioChunk(pcm=bytes(1_000), sample_rate=16_000)])  # replaced
    assert cache.size_bytes == 5_000


@pytest.mark.slow
async def test_piper_greeting_is_replayed_not_resynthesized() -> None:
    """Piper with its default noise gives a slightly different rendition each time:
    equal bytes show the second greeting is the first one, replayed."""
    cache = PhraseCache()
    tts = PiperTTS()
    greeting = "Hello, thanks for calling Acme."
    p, fresh, _ = playout(tts, cache)
    await p.speak(greeting, Utterance(), reuse=True)
    p, again, _ = playout(tts, cache)
    await p.speak(greeting, Utterance(), reuse=True)
    p, uncached, _ = playout(tts, cache)
    await p.speak(greeting, Utterance())

    assert len(fresh.audio_bytes()) > 16_000  # over half a second of 16 kHz speech
    assert again.audio_bytes() == fresh.audio_bytes()
    assert uncached.audio_bytes() != fresh.audio_bytes()
    assert PiperTTS(speed=1.2).phrase_key != tts.phrase_key
