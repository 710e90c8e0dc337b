"""Agent speech out: text → TTS → 16 kHz → transport, and what the caller really heard.

Every piece of text handed to the transport is a :class:`Segment` spanning the
transport's sample positions ``[start, end)``; positions come from
``played_samples + queued_samples`` at the moment the audio is queued, so they
stay right across ``clear()``. After a barge-in, :func:`heard_text` cuts the
transcript to the played part: whole segments before the play position, and
the share of words of the segment being played.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from flireo.clock import Clock
from flireo.engine.ended_reasons import stage
from flireo.engine.metrics import TurnTimer, Usage
from flireo.engine.phrases import PHRASES, PhraseCache, phrase_key
from flireo.engine.transport import AudioTransport
from flireo.media.frames import BYTES_PER_SAMPLE, SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.providers.tts.base import AudioChunk, TextToSpeech


@dataclass(slots=True)
class Segment:
    text: str
    start: int
    end: int


async def _replay(chunks: tuple[AudioChunk, ...]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk


def heard_text(segments: list[Segment], played: int) -> str:
    """The words of ``segments`` the caller heard, given ``played`` samples out."""
    parts: list[str] = []
    for segment in segments:
        if played >= segment.end:
            parts.append(segment.text)
            continue
        if played > segment.start and segment.end > segment.start:
            words = segment.text.split()
            share = (played - segment.start) / (segment.end - segment.start)
            count = int(len(words) * share)
            if count:
                parts.append(" ".join(words[:count]))
        break
    return " ".join(parts)


@dataclass(slots=True)
class Utterance:
    """One thing the agent says (a reply, a filler, a control ``say``), piece by piece."""

    segments: list[Segment] = field(default_factory=list)
    started_at: float | None = None

    @property
    def intended(self) -> str:
        return " ".join(s.text for s in self.segments)

    def heard(self, played: int) -> str:
        return heard_text(self.segments, played)

    def fully_played(self, played: int) -> bool:
        return not self.segments or played >= self.segments[-1].end


class Playout:
    """Speaks sentences through one TTS into one transport."""

    def __init__(
        self,
        tts: TextToSpeech,
        transport: AudioTransport,
        clock: Clock,
        usage: Usage,
        *,
        on_first_audio: Callable[[], None] | None = None,
        phrases: PhraseCache = PHRASES,
    ) -> None:
        self._tts = tts
        self._phrases = phrases
        self._transport = transport
        self._clock = clock
        self._usage = usage
        self._resamplers: dict[int, Resampler] = {}
        self._generation = 0
        self._on_first_audio = on_first_audio

    @property
    def played(self) -> int:
        return self._transport.played_samples

    @property
    def position(self) -> int:
        """Where audio queued now will start playing."""
        return self._transport.played_samples + self._transport.queued_samples

    def hold(self, held: bool) -> None:
        """Hold the queued audio (the caller hears silence) or let it go on."""
        self._transport.pause_output(held)

    def stop(self) -> None:
        """Drop all queued audio now (a hold ends); sentences still being synthesized
        are discarded."""
        self._generation += 1
        self._transport.clear()

    async def speak(
        self,
        text: str,
        utterance: Utterance,
        timer: TurnTimer | None = None,
        *,
        reuse: bool = False,
    ) -> None:
        """Synthesize ``text`` and queue its audio as one segment of ``utterance``.

        ``reuse`` marks a fixed phrase (first message, filler, transfer line):
        its audio comes from the phrase cache when this voice said it before,
        and is kept there once fully synthesized.
        """
        generation = self._generation
        segment: Segment | None = None
        if timer is not None:
            timer.tts_requested(self._clock.monotonic())
        voice = phrase_key(self._tts) if reuse else None
        cached = self._phrases.get(voice, text) if voice else None
        kept: list[AudioChunk] | None = [] if voice and cached is None else None
        if cached is None:
            self._usage.tts_characters += len(text)  # a cached phrase costs the vendor nothing
        with stage("voice"):
            async for chunk in (
                _replay(cached) if cached is not None else self._tts.synthesize(text)
            ):
                if generation != self._generation:
                    return
                if kept is not None:
                    kept.append(chunk)
                if timer is not None:
                    timer.tts_byte(self._clock.monotonic())
                resampler = self._resampler(chunk.sample_rate)
                pcm = resampler.process(chunk.pcm)
                segment = await self._send(pcm, text, segment, utterance, timer)
        if kept and voice:
            self._phrases.put(voice, text, kept)  # only a complete rendition is kept
        if generation != self._generation:
            return
        for resampler in self._resamplers.values():
            tail = resampler.flush()
            if tail:
                segment = await self._send(tail, text, segment, utterance, timer)

    async def _send(
        self,
        pcm: bytes,
        text: str,
        segment: Segment | None,
        utterance: Utterance,
        timer: TurnTimer | None,
    ) -> Segment | None:
        if not pcm:
            return segment
        if timer is not None:
            timer.audio_out(self._clock.monotonic())
        start = self.position
        if segment is None:
            segment = Segment(text, start, start)
            utterance.segments.append(segment)
            if utterance.started_at is None:
                utterance.started_at = self._clock.monotonic()
                if self._on_first_audio is not None:
                    self._on_first_audio()
        await self._transport.send(pcm)
        segment.end = start + len(pcm) // BYTES_PER_SAMPLE
        return segment

    def _resampler(self, rate: int) -> Resampler:
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = Resampler(rate, SAMPLE_RATE)
        return resampler

    async def drained(self, poll_s: float = 0.02) -> None:
        """Wait until everything queued has been played."""
        while (queued := self._transport.queued_samples) > 0:
            await self._clock.sleep(max(poll_s, queued / SAMPLE_RATE - 0.04))
