"""Turn-taking: caller audio → VAD → STT → utterances with a final transcript.

Endpointing decisions are pure functions (:func:`ends_mid_phrase`,
:func:`end_of_turn_wait`); :class:`TurnTaker` applies them to the live stream:

- the VAD (Silero gated by webrtcvad) reports speech start and end; the end
  comes after ``Endpointing.silence_s`` of silence;
- with a streaming STT every frame is pushed, and when the latest partial ends
  mid-phrase ("I would like to", "and", a comma) the turn waits up to
  ``max_extension_s`` longer: speech resuming in that window continues the same
  utterance;
- with a per-utterance STT (Whisper) only speech is pushed (plus
  ``preroll_ms`` before the detected onset) and the STT is finalized at the end
  of speech.

The listener is called synchronously on the audio path (keep it cheap).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from flireo.clock import Clock
from flireo.engine.config import Endpointing
from flireo.engine.metrics import Usage
from flireo.media.frames import BYTES_PER_SAMPLE, FRAME_MS, SAMPLE_RATE
from flireo.media.vad import SpeechEnded, SpeechStarted, VoiceActivityDetector
from flireo.providers.stt.base import SpeechToTextStream

#: a phrase ending in one of these words is not finished (English, Dutch)
MID_PHRASE_WORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "so", "because", "if", "then", "that", "which",
        "who", "to", "of", "for", "with", "in", "on", "at", "by", "from", "about", "as",
        "than", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were",
        "am", "be", "i", "we", "you", "they", "he", "she", "it's", "i'm", "um", "uh", "er",
        "like", "would", "could", "should", "can", "will", "want", "need", "have", "has",
        "de", "het", "een", "en", "maar", "dus", "omdat", "dat", "die", "met", "naar",
        "voor", "van", "op", "aan", "ik", "je", "mijn", "uw", "ben", "eh", "ehm",
    }
)  # fmt: skip
_LAST_WORD = re.compile(r"([^\W\d_]+(?:'[^\W\d_]+)?)\W*$", re.UNICODE)


def ends_mid_phrase(text: str) -> bool:
    """True when a partial transcript sounds unfinished."""
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped[-1] in ".?!…":
        return False
    if stripped[-1] in ",;:-–":
        return True
    match = _LAST_WORD.search(stripped)
    return match is not None and match.group(1).lower() in MID_PHRASE_WORDS


def end_of_turn_wait(partial: str | None, endpointing: Endpointing) -> float:
    """Seconds to wait after the VAD's end of speech before the turn is over."""
    if partial and endpointing.max_extension_s > 0 and ends_mid_phrase(partial):
        return endpointing.max_extension_s
    return 0.0


@dataclass(slots=True)
class Utterance:
    """One stretch of caller speech, from VAD onset to final transcript."""

    index: int
    #: clock time the VAD reported the start (already ~0.1-0.2 s after the onset)
    started_at: float
    voiced_ms: int = 0
    #: latest streaming partial (None with a per-utterance STT)
    partial: str | None = None
    #: clock time of the end-of-turn decision
    ended_at: float | None = None
    #: silence waited before that decision (endpointing + extension)
    end_wait_s: float = 0.0
    final_at: float | None = None
    text: str = ""
    #: set by the listener: the agent was busy when this utterance was heard
    over_agent: bool = False
    #: set by the listener: this utterance made the agent stop
    interrupted_agent: bool = False


class TurnListener(Protocol):
    def speech_started(self, utterance: Utterance) -> None: ...

    def speech_continues(self, utterance: Utterance) -> None:
        """Every frame while the caller speaks (voiced time and partials updated)."""
        ...

    def turn_ended(self, utterance: Utterance) -> None:
        """The end of the turn was decided; the final transcript follows."""
        ...

    def turn_final(self, utterance: Utterance) -> None:
        """``utterance.text`` holds the final transcript ("" when nothing was heard)."""
        ...


class TurnTaker:
    def __init__(
        self,
        stream: SpeechToTextStream,
        *,
        utterance_based: bool,
        endpointing: Endpointing,
        clock: Clock,
        listener: TurnListener,
        usage: Usage,
    ) -> None:
        self._stream = stream
        self._per_utterance = utterance_based
        self._endpointing = endpointing
        self._clock = clock
        self._listener = listener
        self._usage = usage
        self.vad = VoiceActivityDetector(
            threshold=endpointing.vad_threshold,
            min_silence_ms=round(endpointing.silence_s * 1000),
        )
        self._preroll: deque[bytes] = deque(maxlen=max(1, endpointing.preroll_ms // FRAME_MS))
        self._current: Utterance | None = None
        self._extension_until_ms: int | None = None  # stream time the extension ends
        self._awaiting: deque[Utterance] = deque()  # finalized, final transcript pending
        self._finals: list[str] = []  # streaming finals of the utterance in progress
        self._count = 0

    @property
    def current(self) -> Utterance | None:
        """The utterance being spoken (or waiting out an end-of-turn extension)."""
        return self._current

    async def consume_audio(self, frames: AsyncIterator[bytes]) -> None:
        async for frame in frames:
            await self.feed(frame)

    async def feed(self, frame: bytes) -> None:
        vad = self.vad
        event = vad.process(frame)
        if not self._per_utterance or self._current is not None:
            await self._push(frame)
        else:
            self._preroll.append(frame)

        if isinstance(event, SpeechStarted):
            await self._speech_started()
        elif isinstance(event, SpeechEnded):
            await self._speech_ended()
        elif self._current is not None and vad.speaking:
            if vad.last_probability >= vad.threshold:
                self._current.voiced_ms += len(frame) * 1000 // (SAMPLE_RATE * BYTES_PER_SAMPLE)
            self._listener.speech_continues(self._current)

        if self._extension_until_ms is not None and vad.position_ms >= self._extension_until_ms:
            await self._end_turn()

    async def _speech_started(self) -> None:
        if self._current is not None and self._extension_until_ms is not None:
            self._extension_until_ms = None  # the caller went on: same utterance
            self._listener.speech_continues(self._current)
            return
        self._count += 1
        self._current = Utterance(index=self._count, started_at=self._clock.monotonic())
        if self._per_utterance:
            while self._preroll:
                await self._push(self._preroll.popleft())
        self._listener.speech_started(self._current)

    async def _speech_ended(self) -> None:
        if self._current is None:
            return
        wait = (
            0.0
            if self._per_utterance
            else end_of_turn_wait(self._current.partial, self._endpointing)
        )
        if wait <= 0:
            await self._end_turn()
        else:
            self._extension_until_ms = self.vad.position_ms + round(wait * 1000)
            self._current.end_wait_s = wait

    async def _end_turn(self) -> None:
        utterance = self._current
        self._extension_until_ms = None
        if utterance is None:
            return
        self._current = None
        utterance.ended_at = self._clock.monotonic()
        utterance.end_wait_s += self._endpointing.silence_s
        self._awaiting.append(utterance)
        await self._stream.finalize()
        self._listener.turn_ended(utterance)

    async def _push(self, frame: bytes) -> None:
        self._usage.stt_seconds += len(frame) / (SAMPLE_RATE * BYTES_PER_SAMPLE)
        await self._stream.push(frame)

    async def consume_transcripts(self) -> None:
        async for transcript in self._stream.transcripts():
            text = transcript.text.strip()
            if not transcript.is_final:
                target = self._current
                if target is not None:
                    target.partial = " ".join([*self._finals, text]).strip()
                    self._listener.speech_continues(target)
                continue
            if self._awaiting:
                utterance = self._awaiting.popleft()
                utterance.text = " ".join(p for p in [*self._finals, text] if p)
                utterance.final_at = self._clock.monotonic()
                self._finals.clear()
                self._listener.turn_final(utterance)
            elif text:  # a streaming STT's own final in the middle of an utterance
                self._finals.append(text)
                if self._current is not None:
                    self._current.partial = " ".join(self._finals)
