"""OpenAI speech-to-text (``/audio/transcriptions``), one request per utterance.

What this client relies on (OpenAI API reference "Create transcription" and
the speech-to-text guide, read 2026):

* ``POST {base_url}/audio/transcriptions`` with ``Authorization: Bearer <key>``
  and a ``multipart/form-data`` body: ``file`` (flac, mp3, mp4, mpeg, mpga, m4a,
  ogg, wav or webm — a filename with the right extension and content type
  lets the server tell the format), ``model`` (``gpt-4o-mini-transcribe``,
  default here, ``gpt-4o-transcribe``, ``whisper-1``), ``language``
  (ISO-639-1, e.g. ``en``: improves accuracy and latency), ``prompt`` (text
  that guides spelling and style; here it carries the agent's keyterms),
  ``response_format=json`` → ``{"text": "..."}``.
* OpenAI refuses audio shorter than 0.1 s.

Behaviour decided here:

* Audio pushed between two :meth:`finalize` calls is one utterance. It is
  written as a 16 kHz mono 16-bit WAV with the stdlib ``wave`` module and sent
  on :meth:`finalize`; finals come out in the order they were asked for. An
  utterance under 0.1 s gives an empty final without a request.
* Keyterms become the prompt (``"Vocabulary: A, B, C."``); ``en-US`` style
  language tags are cut to their ISO-639-1 part.
* A retryable failure (429, 5xx, timeout, dropped connection) is retried once
  after ``retry_backoff``; a failure that remains is raised from
  :meth:`transcripts`, which then ends (the engine decides what to do). A 429
  for an account out of credit (``insufficient_quota``) is not retryable and
  is raised at once; a ``Retry-After`` is carried in the error, not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from collections.abc import AsyncIterator, Sequence
from typing import Final

import httpx

from flireo.clock import Clock, SystemClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import BYTES_PER_SAMPLE, SAMPLE_RATE
from flireo.providers.http_errors import error_for_transport, raise_for_status
from flireo.providers.stt.base import Transcript

__all__ = ["OPENAI_STT_PROVIDER", "OpenAITranscriptionSTT", "keyterm_prompt", "wav_bytes"]

OPENAI_STT_PROVIDER: Final = "openai"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
#: OpenAI's minimum audio length
MIN_UTTERANCE_SECONDS: Final = 0.1
MAX_UTTERANCE_SECONDS: Final = 120


def wav_bytes(pcm16k: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono s16le PCM wrapped in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(BYTES_PER_SAMPLE)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16k)
    return buffer.getvalue()


def keyterm_prompt(keyterms: Sequence[str]) -> str | None:
    terms = [t.strip() for t in keyterms if t.strip()]
    return f"Vocabulary: {', '.join(terms)}." if terms else None


def iso_639_1(language: str | None) -> str | None:
    if not language:
        return None
    return language.split("-")[0].split("_")[0].lower() or None


class OpenAITranscriptionStream:
    """One recognition stream; made by :meth:`OpenAITranscriptionSTT.open`."""

    def __init__(
        self, stt: OpenAITranscriptionSTT, *, language: str | None, prompt: str | None
    ) -> None:
        self._stt = stt
        self._language = language
        self._prompt = prompt
        self._buffer = bytearray()
        self._utterances: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._out: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue()
        self._closed = False
        self._worker = asyncio.create_task(self._work(), name="openai-stt-worker")

    async def push(self, pcm: bytes) -> None:
        if self._closed:
            return
        self._buffer += pcm
        limit = MAX_UTTERANCE_SECONDS * SAMPLE_RATE * BYTES_PER_SAMPLE
        if len(self._buffer) > limit:
            del self._buffer[: len(self._buffer) - limit]

    async def finalize(self) -> None:
        if self._closed:
            return
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._utterances.put_nowait(audio)

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while True:
            item = await self._out.get()
            if item is None:
                self._out.put_nowait(None)
                return
            if isinstance(item, ProviderError):
                self._out.put_nowait(None)
                raise item
            yield item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._out.put_nowait(None)

    async def _work(self) -> None:
        while True:
            audio = await self._utterances.get()
            if audio is None:
                return
            try:
                transcript = await self._stt.transcribe(
                    audio, language=self._language, prompt=self._prompt
                )
            except ProviderError as exc:
                self._closed = True
                self._out.put_nowait(exc)
                return
            self._out.put_nowait(transcript)


class OpenAITranscriptionSTT:
    """:class:`~flireo.providers.stt.base.SpeechToText` over OpenAI transcriptions."""

    provider = OPENAI_STT_PROVIDER
    utterance_based = True

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "gpt-4o-mini-transcribe",
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials(OPENAI_STT_PROVIDER)
        self._api_key = api_key
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._clock = clock or SystemClock()

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> OpenAITranscriptionStream:
        return OpenAITranscriptionStream(
            self, language=iso_639_1(language), prompt=keyterm_prompt(keyterms)
        )

    def form_fields(self, *, language: str | None, prompt: str | None) -> dict[str, str]:
        fields = {"model": self.model, "response_format": "json"}
        if language:
            fields["language"] = language
        if prompt:
            fields["prompt"] = prompt
        return fields

    async def transcribe(
        self, pcm16k: bytes, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        """Transcribe one utterance of 16 kHz s16le audio."""
        seconds = len(pcm16k) / (SAMPLE_RATE * BYTES_PER_SAMPLE)
        if seconds < MIN_UTTERANCE_SECONDS:
            return Transcript("", is_final=True, language=language)
        fields = self.form_fields(language=language, prompt=prompt)
        files = {"file": ("utterance.wav", wav_bytes(pcm16k), "audio/wav")}
        failures = 0
        while True:
            try:
                text = await self._post(fields, files)
            except ProviderError as exc:
                if not exc.retryable or failures >= self._retries:
                    raise
                failures += 1
                await self._clock.sleep(self._retry_backoff * failures)
                continue
            return Transcript(text.strip(), is_final=True, language=language)

    async def _post(self, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> str:
        try:
            response = await self._http.post(
                f"{self.base_url}/audio/transcriptions",
                data=fields,
                files=files,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self._timeout,
            )
            await raise_for_status(OPENAI_STT_PROVIDER, response)
        except httpx.TransportError as exc:
            raise error_for_transport(OPENAI_STT_PROVIDER, exc) from exc
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(OPENAI_STT_PROVIDER, "transcription answer is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ProviderError(OPENAI_STT_PROVIDER, f"unexpected answer: {str(data)[:200]}")
        return str(data["text"])

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
