"""Voice activity detection for one call: 20 ms frames in, speech start/end events out.

Silero (see :mod:`flireo.media.silero`) decides; ``webrtcvad`` gates it. A
Silero chunk is skipped (its probability taken as 0) only while nobody is
speaking, no speech is starting, and webrtcvad called each of the last
:data:`GATE_QUIET_FRAMES` frames non-speech. When the gate opens again the
last :data:`GATE_REPLAY_CHUNKS` skipped chunks are run first, so an onset that
webrtcvad heard a frame late still counts from where it began and Silero's
recurrent state has heard the audio just before. Measured on Piper speech in
silence and noise, gated events are the ungated ones to within one 32 ms chunk,
with about half the model runs saved on a typical call.

Decisions (Silero's, with hysteresis like the model authors' ``VADIterator``):

- a chunk is *speech* when its probability ≥ ``threshold``, *silence* when it is
  below ``threshold - 0.15``, and in between it keeps the current state;
- speech starts once it has lasted ``min_speech_ms`` (shorter blips are ignored);
  :class:`SpeechStarted` reports the onset minus ``speech_pad_ms``;
- speech ends once silence has lasted ``min_silence_ms`` (a plain attribute the
  engine may change between frames); :class:`SpeechEnded` reports where the
  silence began plus ``speech_pad_ms``.

Times are milliseconds of audio since the detector was created (``reset``
clears the detection state but keeps the clock running with the stream).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import webrtcvad

from flireo.media.frames import SAMPLE_RATE
from flireo.media.silero import CHUNK_SAMPLES, CONTEXT_SAMPLES, SileroStream

__all__ = [
    "GATE_QUIET_FRAMES",
    "GATE_REPLAY_CHUNKS",
    "SpeechEnded",
    "SpeechStarted",
    "VadEvent",
    "VoiceActivityDetector",
]

#: Consecutive non-speech webrtcvad frames (20 ms each) before Silero may be skipped.
#: 4 frames (80 ms) cover a whole 32 ms chunk plus the frames before it.
GATE_QUIET_FRAMES = 4
#: Skipped chunks run through the model when the gate opens again.
GATE_REPLAY_CHUNKS = 2
_WEBRTC_FRAME_SAMPLES = (160, 320, 480)  # 10/20/30 ms at 16 kHz
_MAX_FRAME_SAMPLES = CHUNK_SAMPLES  # so one call completes at most one chunk
_HYSTERESIS = 0.15


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking at ``at_ms`` (stream time, padded earlier)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller stopped speaking at ``at_ms`` after ``speech_ms`` of speech.

    Emitted ``min_silence_ms`` after the speech stopped.
    """

    at_ms: int
    speech_ms: int


VadEvent = SpeechStarted | SpeechEnded


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


class VoiceActivityDetector:
    """Stateful per-call detector fed 16 kHz s16le frames (normally 20 ms)."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        min_speech_ms: int = 100,
        min_silence_ms: int = 400,
        speech_pad_ms: int = 100,
        gate: bool = True,
        gate_aggressiveness: int = 1,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not 0 <= gate_aggressiveness <= 3:
            raise ValueError(f"gate_aggressiveness must be 0..3, got {gate_aggressiveness}")
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        #: Silence that ends a turn; the engine may change it between frames.
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self._model = SileroStream()
        self._gate = webrtcvad.Vad(gate_aggressiveness) if gate else None
        self._chunk: npt.NDArray[np.float32] = np.zeros(CHUNK_SAMPLES, dtype=np.float32)
        self._pending: npt.NDArray[np.float32] = np.zeros(
            CHUNK_SAMPLES + _MAX_FRAME_SAMPLES, dtype=np.float32
        )
        self._replay_audio: npt.NDArray[np.float32] = np.zeros(
            CONTEXT_SAMPLES + GATE_REPLAY_CHUNKS * CHUNK_SAMPLES, dtype=np.float32
        )
        self._queued: deque[VadEvent] = deque()  # events beyond the one a call returns
        self._samples = 0  # stream position: samples received since creation
        self.chunks_run = 0  # Silero evaluations (for benchmarks and tests of the gate)
        self.chunks_skipped = 0
        self._clear()

    def _clear(self) -> None:
        self._n_pending = 0
        # nothing heard yet counts as quiet: the gate starts closed, and the first
        # frame webrtcvad calls speech opens it (with the replay, as always)
        self._quiet_frames = GATE_QUIET_FRAMES
        self._replayable = 0  # skipped chunks at the end of _replay_audio, up to the cap
        self._queued.clear()
        self._probability = 0.0
        self._speaking = False
        self._candidate_start: int | None = None  # sample where unconfirmed speech began
        self._speech_start = 0  # sample where the current turn began (padded)
        self._silence_start: int | None = None  # sample where trailing silence began
        self._last_end = 0  # padded end of the previous turn (sample)

    def reset(self) -> None:
        """Forget any speech in progress and the model's memory; time keeps running."""
        last_end = self._samples
        self._model.reset()
        self._clear()
        self._last_end = last_end

    @property
    def speaking(self) -> bool:
        """True between :class:`SpeechStarted` and :class:`SpeechEnded`."""
        return self._speaking

    @property
    def last_probability(self) -> float:
        """Silero's speech probability for the latest chunk (0.0 when gated)."""
        return self._probability

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio received so far."""
        return _ms(self._samples)

    def process(self, frame: bytes) -> VadEvent | None:
        """Feed one frame (at most 32 ms, normally 20 ms); returns an event or None."""
        n = len(frame) >> 1
        if len(frame) & 1 or n > _MAX_FRAME_SAMPLES:
            raise ValueError(
                f"a frame is up to {_MAX_FRAME_SAMPLES} s16le samples, got {len(frame)} bytes"
            )
        if self._gate is not None:
            if n in _WEBRTC_FRAME_SAMPLES and not self._gate.is_speech(frame, SAMPLE_RATE):
                self._quiet_frames += 1
            else:
                self._quiet_frames = 0
        start = self._n_pending
        pending = self._pending
        np.multiply(
            np.frombuffer(frame, dtype="<i2"), 1.0 / 32768.0, out=pending[start : start + n]
        )
        self._n_pending = start + n
        self._samples += n
        if self._n_pending < CHUNK_SAMPLES:
            return self._queued.popleft() if self._queued else None

        chunk = self._chunk
        chunk[:] = pending[:CHUNK_SAMPLES]
        rest = self._n_pending - CHUNK_SAMPLES
        pending[:rest] = pending[CHUNK_SAMPLES : self._n_pending]
        self._n_pending = rest
        chunk_start = self._samples - rest - CHUNK_SAMPLES

        if (
            self._gate is not None
            and not self._speaking
            and self._candidate_start is None
            and self._quiet_frames >= GATE_QUIET_FRAMES
        ):
            self._skip(chunk)
        else:
            if self._replayable:
                self._replay(chunk_start)
            self._run(chunk, chunk_start)
        return self._queued.popleft() if self._queued else None

    def _run(self, chunk: npt.NDArray[np.float32], chunk_start: int) -> None:
        prob = self._model.probability(chunk)
        self.chunks_run += 1
        self._probability = prob
        event = self._decide(prob, chunk_start, chunk_start + CHUNK_SAMPLES)
        if event is not None:
            self._queued.append(event)

    def _skip(self, chunk: npt.NDArray[np.float32]) -> None:
        """Gate closed: keep the chunk for a replay, advance the model's context only."""
        replay = self._replay_audio
        replay[:-CHUNK_SAMPLES] = replay[CHUNK_SAMPLES:]
        replay[-CHUNK_SAMPLES:] = chunk
        self._replayable = min(self._replayable + 1, GATE_REPLAY_CHUNKS)
        self._model.skip(chunk)
        self.chunks_skipped += 1
        self._probability = 0.0

    def _replay(self, next_start: int) -> None:
        """Gate opening: run the model over the last skipped chunks first.

        This warms the recurrent state up on the audio just before, and lets
        an onset webrtcvad heard late still count from where it began.
        """
        count = self._replayable
        self._replayable = 0
        replay = self._replay_audio
        base = replay.size - count * CHUNK_SAMPLES
        self._model.skip(replay[base - CONTEXT_SAMPLES : base])
        for i in range(count):
            offset = base + i * CHUNK_SAMPLES
            self._run(
                replay[offset : offset + CHUNK_SAMPLES], next_start - (count - i) * CHUNK_SAMPLES
            )

    def _decide(self, prob: float, chunk_start: int, chunk_end: int) -> VadEvent | None:
        is_speech = prob >= self.threshold
        is_silence = prob < self.threshold - _HYSTERESIS
        pad = self.speech_pad_ms * SAMPLE_RATE // 1000

        if not self._speaking:
            if is_speech and self._candidate_start is None:
                self._candidate_start = chunk_start
            elif is_silence:
                self._candidate_start = None
            if self._candidate_start is None:
                return None
            if _ms(chunk_end - self._candidate_start) < self.min_speech_ms:
                return None
            self._speaking = True
            self._speech_start = max(self._candidate_start - pad, self._last_end, 0)
            self._candidate_start = None
            self._silence_start = None
            return SpeechStarted(at_ms=_ms(self._speech_start))

        if is_speech:
            self._silence_start = None
        elif is_silence and self._silence_start is None:
            self._silence_start = chunk_start
        if self._silence_start is None:
            return None
        if _ms(chunk_end - self._silence_start) < self.min_silence_ms:
            return None
        end = min(self._silence_start + pad, chunk_end)
        self._speaking = False
        self._silence_start = None
        self._last_end = end
        return SpeechEnded(at_ms=_ms(end), speech_ms=_ms(end - self._speech_start))
