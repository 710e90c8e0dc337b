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
  of speech;
- with ``Endpointing.turn_model`` the VAD's end of speech comes sooner
  (``turn_model_silence_s``) and is only a candidate: the Smart Turn model
  (:mod:`flireo.media.smart_turn`, on its own thread, never on the loop) hears
  the utterance's audio (preroll included, the last 8 s). "Complete" (and, with
  a streaming STT, a partial that does not end mid-phrase) ends the turn at once;
  "incomplete" waits up to ``turn_model_max_wait_s`` of silence for the caller to
  go on, and speech in that window continues the same utterance (the model runs
  again at its next end). While the verdict is pending the frames go on being
  handled; a model failure ends the turn as the silence-only policy would.
  A per-utterance STT has no text when the model answers, so its final
  transcript is checked when it lands: one that ends mid-phrase ("My name is.",
  "The problem is that.": Whisper ends every sentence with a full stop, a
  question mark is believed) is held until the same ``turn_model_max_wait_s``
  cap; speech before then continues the turn (the held text prefixes the next
  final, nothing reaches the listener twice), else the held final goes out at
  the cap. An utterance over the agent is never held (a barge-in decides on it).

With ``Endpointing.noise_suppression`` every caller frame goes through RNNoise
(:mod:`flireo.media.denoise`) first, on a one-thread pool of its own, a batch of
the frames that arrived meanwhile at a time, in order; the VAD, the STT and the
turn model hear the cleaned audio.

The listener is called synchronously on the audio path (keep it cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from flireo.clock import Clock
from flireo.engine.config import Endpointing
from flireo.engine.metrics import Usage
from flireo.engine.transport import AudioTransport
from flireo.media.denoise import Denoiser
from flireo.media.frames import BYTES_PER_SAMPLE, FRAME_MS, SAMPLE_RATE
from flireo.media.smart_turn import MAX_SAMPLES, TurnVerdict, predict_async
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
#: caller frames (5 s) queued for the engine's task before the oldest are dropped
MAX_BACKLOG_FRAMES = 250
#: utterance audio kept for the turn model (its 8 s window)
_TURN_AUDIO_BYTES = MAX_SAMPLES * BYTES_PER_SAMPLE
log = logging.getLogger(__name__)
_denoise_pool: ThreadPoolExecutor | None = None


def _denoise_executor() -> ThreadPoolExecutor:
    """One thread for every call's noise suppression (a frame is ~1 ms of CPU)."""
    global _denoise_pool
    if _denoise_pool is None:
        _denoise_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flireo-denoise")
    return _denoise_pool


def _denoise_all(denoiser: Denoiser, frames: list[bytes]) -> list[bytes]:
    return [denoiser.process(f) for f in frames]


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


def final_ends_mid_phrase(text: str) -> bool:
    """A per-utterance STT's final that sounds unfinished (its full stop ignored)."""
    stripped = text.rstrip()
    if stripped.endswith(("?", "!")):
        return False
    return ends_mid_phrase(stripped.rstrip(".…"))


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
    #: set by the listener: the agent's speech was held while this utterance was judged
    held_agent: bool = False
    #: turn-model verdicts on this utterance's end-of-speech candidates (probabilities)
    turn_probabilities: list[float] = field(default_factory=list)
    #: CPU seconds the turn model spent on this utterance
    turn_model_cpu_s: float = 0.0
    #: stream time (ms) the turn model's silence cap would have ended this turn
    cap_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Heard:
    """A caller frame and what the VAD said of it when it arrived."""

    frame: bytes
    event: SpeechStarted | SpeechEnded | None
    speaking: bool
    probability: float
    position_ms: int


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
        self._model = endpointing.turn_model
        candidate_s = endpointing.turn_model_silence_s if self._model else endpointing.silence_s
        self._candidate_s = candidate_s
        self.vad = VoiceActivityDetector(
            threshold=endpointing.vad_threshold,
            min_silence_ms=round(candidate_s * 1000),
        )
        #: audio of the utterance in progress, for the turn model (last 8 s)
        self._audio = bytearray()
        self._verdict: asyncio.Task[TurnVerdict] | None = None
        self._candidate_ms = 0  # stream time of the end-of-speech candidate
        self.denoiser = Denoiser() if endpointing.noise_suppression else None
        self._raw: list[bytes] = []  # caller frames waiting for the denoiser
        self._denoising = False
        self._preroll: deque[bytes] = deque(maxlen=max(1, endpointing.preroll_ms // FRAME_MS))
        self._current: Utterance | None = None
        self._extension_until_ms: int | None = None  # stream time the extension ends
        self._awaiting: deque[Utterance] = deque()  # finalized, final transcript pending
        self._backlog: deque[_Heard] = deque()  # frames waiting for consume()
        self._handling = False  # consume() is between taking a frame and finishing it
        self._wake: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        #: frames done in the sink / queued for the engine's task / dropped from a full queue
        self.frames_inline = 0
        self.frames_queued = 0
        self.frames_dropped = 0
        self._finals: list[str] = []  # streaming finals of the utterance in progress
        self._count = 0
        #: a per-utterance final that ended mid-phrase, waiting for the caller to go on
        self._held: Utterance | None = None

    @property
    def current(self) -> Utterance | None:
        """The utterance being spoken (or waiting out an end-of-turn extension)."""
        return self._current

    async def consume(self, transport: AudioTransport) -> None:
        """Caller audio from ``transport`` until its media ends.

        Frames arrive in :meth:`_on_frame`, synchronously: the VAD runs at once,
        and a frame that needs nothing awaited (silence before a per-utterance
        STT, most of a call) is done right there, without waking this task.
        Anything else (speech for the STT, a VAD event, a streaming STT's every
        frame) is queued in order for this task, with what the VAD said of it.
        """
        loop = asyncio.get_running_loop()
        listening = loop.create_task(transport.listen(self._on_frame), name="turns-listen")
        listening.add_done_callback(lambda _: self._poke())
        backlog = self._backlog
        try:
            while True:
                if self._error is not None:
                    raise self._error
                if self._verdict is not None and self._verdict.done():
                    await self._apply_verdict()
                if not backlog:
                    if listening.done():
                        break
                    self._wake = wake = loop.create_future()
                    await wake
                    continue
                self._handling = True
                try:
                    while backlog:
                        await self._handle(backlog.popleft())
                finally:
                    self._handling = False
        finally:
            self._drop_verdict()
            self._release_held()  # what the caller said reaches the transcript
            if not listening.done():
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
        listening.result()  # the transport's own failure, if any

    def _poke(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _on_frame(self, frame: bytes) -> None:
        if self._error is not None:
            return
        if self.denoiser is not None:
            self._raw.append(frame)
            if not self._denoising:
                self._denoise_next()
            return
        self._on_clean_frame(frame)

    def _denoise_next(self) -> None:
        """Send the frames waiting for the denoiser to its thread, one batch in flight."""
        assert self.denoiser is not None
        frames, self._raw = self._raw, []
        self._denoising = True
        loop = asyncio.get_running_loop()
        job = _denoise_executor().submit(_denoise_all, self.denoiser, frames)

        def landed(done: Future[list[bytes]]) -> None:
            loop.call_soon_threadsafe(self._denoised, done)

        job.add_done_callback(landed)

    def _denoised(self, done: Future[list[bytes]]) -> None:
        self._denoising = False
        try:
            frames = done.result()
        except Exception as exc:  # raised again in consume(), on the engine's task
            self._error = exc
            self._poke()
            return
        for frame in frames:
            self._on_clean_frame(frame)
        if self._raw and self._error is None:
            self._denoise_next()

    def _on_clean_frame(self, frame: bytes) -> None:
        try:
            vad = self.vad
            event = vad.process(frame)
            if (
                event is None
                and self._per_utterance
                and self._current is None
                and self._held is None
                and not self._handling
                and not self._backlog
            ):
                self._preroll.append(frame)  # nobody speaks: nothing else to do
                self.frames_inline += 1
                return
            backlog = self._backlog
            backlog.append(
                _Heard(frame, event, vad.speaking, vad.last_probability, vad.position_ms)
            )
            self.frames_queued += 1
            if len(backlog) > MAX_BACKLOG_FRAMES:  # the task is stuck: keep the newest audio
                backlog.popleft()
                self.frames_dropped += 1
        except Exception as exc:  # raised again in consume(), on the engine's task
            self._error = exc
        self._poke()

    async def feed(self, frame: bytes) -> None:
        """One frame, handled now (what :meth:`consume` does for each, in order)."""
        if self.denoiser is not None:
            frame = self.denoiser.process(frame)
        vad = self.vad
        event = vad.process(frame)
        await self._handle(
            _Heard(frame, event, vad.speaking, vad.last_probability, vad.position_ms)
        )

    async def _handle(self, heard: _Heard) -> None:
        frame, event = heard.frame, heard.event
        if not self._per_utterance or self._current is not None:
            await self._push(frame)
        if self._current is None and (self._per_utterance or self._model):
            self._preroll.append(frame)
        if self._model and self._current is not None:
            self._keep_audio(frame)

        if isinstance(event, SpeechStarted):
            await self._speech_started()
        elif isinstance(event, SpeechEnded):
            await self._speech_ended(heard.position_ms)
        elif self._current is not None and heard.speaking:
            if heard.probability >= self.vad.threshold:
                self._current.voiced_ms += len(frame) * 1000 // (SAMPLE_RATE * BYTES_PER_SAMPLE)
            self._listener.speech_continues(self._current)

        if self._verdict is not None and self._verdict.done():
            await self._apply_verdict()
        if self._extension_until_ms is not None and heard.position_ms >= self._extension_until_ms:
            await self._end_turn()
        held = self._held
        if held is not None and self._current is None and heard.position_ms >= (held.cap_ms or 0):
            self._release_held()

    async def _speech_started(self) -> None:
        if self._current is not None and self._extension_until_ms is not None:
            self._extension_until_ms = None  # the caller went on: same utterance
            self._drop_verdict()
            self._listener.speech_continues(self._current)
            return
        self._count += 1
        self._current = Utterance(index=self._count, started_at=self._clock.monotonic())
        held, self._held = self._held, None
        if held is not None:  # the caller went on after a held final: one turn
            self._current.started_at = held.started_at
            self._current.voiced_ms = held.voiced_ms
            self._current.turn_probabilities = held.turn_probabilities
            self._current.turn_model_cpu_s = held.turn_model_cpu_s
            self._finals[:0] = [held.text]
        self._audio.clear()
        if self._model:
            for frame in self._preroll:
                self._keep_audio(frame)
        if self._per_utterance:
            while self._preroll:
                await self._push(self._preroll.popleft())
        self._listener.speech_started(self._current)

    async def _speech_ended(self, position_ms: int) -> None:
        if self._current is None:
            return
        if self._model:
            # a candidate: the model decides, the cap ends the turn if it says "incomplete"
            extra = max(0.0, self._endpointing.turn_model_max_wait_s - self._candidate_s)
            self._candidate_ms = position_ms
            self._extension_until_ms = position_ms + round(extra * 1000)
            self._current.end_wait_s = extra
            self._drop_verdict()
            verdict = asyncio.get_running_loop().create_task(
                predict_async(bytes(self._audio)), name="turn-model"
            )
            verdict.add_done_callback(lambda _: self._poke())
            self._verdict = verdict
            return
        wait = (
            0.0
            if self._per_utterance
            else end_of_turn_wait(self._current.partial, self._endpointing)
        )
        if wait <= 0:
            await self._end_turn()
        else:
            self._extension_until_ms = position_ms + round(wait * 1000)
            self._current.end_wait_s = wait

    def _keep_audio(self, frame: bytes) -> None:
        audio = self._audio
        audio += frame
        if len(audio) > _TURN_AUDIO_BYTES + len(frame) * 50:  # trim now and then, not per frame
            del audio[: len(audio) - _TURN_AUDIO_BYTES]

    def _drop_verdict(self) -> None:
        verdict, self._verdict = self._verdict, None
        if verdict is not None and not verdict.done():
            verdict.cancel()

    async def _apply_verdict(self) -> None:
        """The model has answered on the pending candidate: end the turn now or keep waiting."""
        verdict, self._verdict = self._verdict, None
        utterance = self._current
        if verdict is None or utterance is None or self._extension_until_ms is None:
            return
        try:
            result = verdict.result()
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("turn model failed: the turn ends on silence")
            complete = True
        else:
            utterance.turn_probabilities.append(result.probability)
            utterance.turn_model_cpu_s += result.cpu_s
            complete = result.probability >= self._endpointing.turn_model_threshold
            if complete and not self._per_utterance and utterance.partial:
                complete = not ends_mid_phrase(utterance.partial)
        if complete:
            waited_ms = max(0, self.vad.position_ms - self._candidate_ms)
            utterance.end_wait_s = waited_ms / 1000
            await self._end_turn()

    async def _end_turn(self) -> None:
        utterance = self._current
        if utterance is not None and self._model and self._extension_until_ms is not None:
            utterance.cap_ms = self._extension_until_ms
        self._extension_until_ms = None
        self._drop_verdict()
        if utterance is None:
            return
        self._current = None
        self._audio.clear()
        utterance.ended_at = self._clock.monotonic()
        utterance.end_wait_s += self._candidate_s
        self._awaiting.append(utterance)
        await self._stream.finalize()
        self._listener.turn_ended(utterance)

    def _should_hold(self, utterance: Utterance) -> bool:
        """Hold a per-utterance final that ends mid-phrase until the model's cap."""
        return (
            self._model
            and self._per_utterance
            and not utterance.over_agent
            and utterance.cap_ms is not None
            and self.vad.position_ms < utterance.cap_ms
            and self._current is None
            and not self._awaiting
            and final_ends_mid_phrase(utterance.text)
        )

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._listener.turn_final(held)

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
                if self._should_hold(utterance):
                    self._held = utterance
                    continue
                self._listener.turn_final(utterance)
            elif text:  # a streaming STT's own final in the middle of an utterance
                self._finals.append(text)
                if self._current is not None:
                    self._current.partial = " ".join(self._finals)
