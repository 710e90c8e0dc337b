"""OpenAI text-to-speech (``/audio/speech``), streamed as raw PCM.

What this client relies on (OpenAI API reference "Create speech" and the
text-to-speech guide, read 2026):

* ``POST {base_url}/audio/speech`` with ``Authorization: Bearer <key>`` and a
  JSON body ``{"model", "input", "voice", "response_format": "pcm"}``;
  ``model`` is ``gpt-4o-mini-tts`` (default here), ``tts-1`` or ``tts-1-hd``;
  ``input`` at most 4096 characters; ``instructions`` (tone, accent) works only
  with ``gpt-4o-mini-tts`` and is not sent to the ``tts-1`` models; ``speed``
  0.25–4.0.
* Built-in voices: alloy, ash, ballad, coral, echo, fable, nova, onyx, sage,
  shimmer, verse (see :data:`flireo.providers.catalog.OPENAI_TTS_VOICES`).
  Other voice ids are passed through (newer voices, custom voices): OpenAI
  refuses unknown ones with a 400, reported as a :class:`ProviderError`.
* ``pcm`` is raw 24 kHz 16-bit signed little-endian mono with no header; the
  body is sent while it is generated (chunked transfer), so it is read as it
  arrives. Chunks are emitted at 24 kHz; the engine resamples.

Errors, timeouts, sample alignment and cancellation: see
:mod:`flireo.providers.tts.http_pcm`. One retry (after ``retry_backoff``)
for retryable failures, only before the first chunk was yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Final

import httpx

from flireo.clock import Clock, SystemClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.catalog import OPENAI_TTS_SAMPLE_RATE
from flireo.providers.llm.sse import retry_before_first_event
from flireo.providers.tts.base import AudioChunk
from flireo.providers.tts.http_pcm import pcm_timeout, stream_pcm

__all__ = ["OPENAI_TTS_PROVIDER", "OpenAITTS"]

OPENAI_TTS_PROVIDER: Final = "openai"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
MAX_INPUT_CHARS: Final = 4096
_NO_INSTRUCTIONS = frozenset({"tts-1", "tts-1-hd"})


class OpenAITTS:
    """:class:`~flireo.providers.tts.base.TextToSpeech` over OpenAI ``/audio/speech``."""

    provider = OPENAI_TTS_PROVIDER

    def __init__(
        self,
        *,
        api_key: str | None,
        voice: str = "alloy",
        model: str = "gpt-4o-mini-tts",
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        instructions: str | None = None,
        speed: float | None = None,
        connect_timeout: float = 5.0,
        stall_timeout: float = 10.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials(OPENAI_TTS_PROVIDER)
        self._api_key = api_key
        self.voice = voice
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.instructions = instructions
        self.speed = speed
        self.sample_rate = OPENAI_TTS_SAMPLE_RATE
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = pcm_timeout(connect=connect_timeout, stall=stall_timeout)
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._clock = clock or SystemClock()

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": "pcm",
        }
        if self.instructions and self.model not in _NO_INSTRUCTIONS:
            body["instructions"] = self.instructions
        if self.speed is not None:
            body["speed"] = self.speed
        return body

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        if not text.strip():
            return
        if len(text) > MAX_INPUT_CHARS:
            raise ProviderError(
                OPENAI_TTS_PROVIDER, f"input is {len(text)} characters; the limit is 4096"
            )
        body = self.request_body(text)
        attempts = retry_before_first_event(
            lambda: stream_pcm(
                self._http,
                OPENAI_TTS_PROVIDER,
                f"{self.base_url}/audio/speech",
                sample_rate=self.sample_rate,
                headers={"Authorization": f"Bearer {self._api_key}"},
                body=body,
                http_timeout=self._timeout,
            ),
            retries=self._retries,
            backoff=self._retry_backoff,
            clock=self._clock,
        )
        async with aclosing(attempts) as chunks:
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
