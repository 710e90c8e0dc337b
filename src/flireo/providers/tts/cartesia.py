"""Cartesia Sonic text-to-speech over ``POST /tts/bytes`` (streamed raw PCM).

What this client relies on (Cartesia API reference "Text-to-Speech (Bytes)",
"Compare TTS endpoints", "API conventions" and "List Voices", read 2026):

* Every request carries ``Cartesia-Version`` (a date; ``2025-04-16`` here).
  Server-side auth is ``Authorization: Bearer <api key>`` in current versions;
  older versions (and gateways modelled on them) read ``X-API-Key``. Both are
  sent with the same key.
* ``POST {base_url}/tts/bytes`` with ``{"model_id", "transcript", "voice":
  {"mode": "id", "id"}, "output_format": {"container": "raw", "encoding":
  "pcm_s16le", "sample_rate": 16000}, "language"}``. The response body streams
  while Sonic generates (Cartesia: "all three endpoints stream audio as it is
  produced"; bytes is the leaner HTTP framing for audio only, SSE adds base64
  JSON and timestamps). Chosen over SSE for that reason, and over the websocket
  because a phone agent synthesizes whole sentences and httpx's keep-alive
  pool already saves the TLS handshake between sentences.
* Models: ``sonic-2`` (default here), ``sonic-turbo``, ``sonic-3``, ``sonic``.
* ``GET {base_url}/voices`` lists the voices the key can use. Version
  2024-06-10 answers a bare JSON array; later versions answer
  ``{"data": [...], "has_more", "next_page"}`` and page with ``limit`` and
  ``starting_after`` (a voice id). Both shapes are read.

Audio is asked for at 16 kHz (the engine's rate) by default. Errors,
timeouts, alignment and cancellation: :mod:`flireo.providers.tts.http_pcm`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Final

import httpx

from flireo.clock import Clock, SystemClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import SAMPLE_RATE
from flireo.providers.catalog import VoiceInfo
from flireo.providers.http_errors import error_for_transport, raise_for_status
from flireo.providers.llm.sse import retry_before_first_event
from flireo.providers.tts.base import AudioChunk
from flireo.providers.tts.http_pcm import pcm_timeout, stream_pcm

__all__ = [
    "CARTESIA_PROVIDER",
    "CARTESIA_SAMPLE_RATES",
    "CARTESIA_VERSION",
    "CartesiaTTS",
    "list_voices",
]

CARTESIA_PROVIDER: Final = "cartesia"
CARTESIA_VERSION: Final = "2025-04-16"
DEFAULT_BASE_URL: Final = "https://api.cartesia.ai"
#: ``output_format.sample_rate`` values the API accepts
CARTESIA_SAMPLE_RATES: Final = frozenset({8000, 16000, 22050, 24000, 44100, 48000})
#: pages fetched by :func:`list_voices` at most (100 voices each)
MAX_VOICE_PAGES: Final = 20


def cartesia_headers(api_key: str, version: str = CARTESIA_VERSION) -> dict[str, str]:
    return {
        "Cartesia-Version": version,
        "Authorization": f"Bearer {api_key}",
        "X-API-Key": api_key,
    }


class CartesiaTTS:
    """:class:`~flireo.providers.tts.base.TextToSpeech` over Cartesia ``/tts/bytes``."""

    provider = CARTESIA_PROVIDER

    def __init__(
        self,
        *,
        api_key: str | None,
        voice_id: str,
        model: str = "sonic-2",
        base_url: str = DEFAULT_BASE_URL,
        language: str | None = "en",
        sample_rate: int = SAMPLE_RATE,
        http: httpx.AsyncClient | None = None,
        version: str = CARTESIA_VERSION,
        connect_timeout: float = 5.0,
        stall_timeout: float = 10.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials(CARTESIA_PROVIDER)
        if sample_rate not in CARTESIA_SAMPLE_RATES:
            raise ProviderError(
                CARTESIA_PROVIDER,
                f"sample_rate {sample_rate} is not a Cartesia rate "
                f"({sorted(CARTESIA_SAMPLE_RATES)})",
            )
        self._api_key = api_key
        self.voice = voice_id
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.sample_rate = sample_rate
        self.version = version
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = pcm_timeout(connect=connect_timeout, stall=stall_timeout)
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._clock = clock or SystemClock()

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model_id": self.model,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice},
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.sample_rate,
            },
        }
        if self.language:
            body["language"] = self.language.split("-")[0].lower()
        return body

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        if not text.strip():
            return
        body = self.request_body(text)
        attempts = retry_before_first_event(
            lambda: stream_pcm(
                self._http,
                CARTESIA_PROVIDER,
                f"{self.base_url}/tts/bytes",
                sample_rate=self.sample_rate,
                headers=cartesia_headers(self._api_key, self.version),
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


def _voice_info(raw: dict[str, Any]) -> VoiceInfo:
    gender = raw.get("gender")
    gender = {"masculine": "male", "feminine": "female"}.get(str(gender), gender)
    return VoiceInfo(
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or raw.get("id") or ""),
        provider=CARTESIA_PROVIDER,
        language=str(raw["language"]) if raw.get("language") else None,
        gender=str(gender) if gender else None,
        sample_rate=None,
    )


async def list_voices(
    *,
    api_key: str | None,
    base_url: str = DEFAULT_BASE_URL,
    http: httpx.AsyncClient | None = None,
    version: str = CARTESIA_VERSION,
    request_timeout: float = 10.0,
) -> list[VoiceInfo]:
    """The voices the key can use (``GET /voices``, every page)."""
    if not api_key:
        raise MissingCredentials(CARTESIA_PROVIDER)
    client = http or httpx.AsyncClient()
    voices: list[VoiceInfo] = []
    cursor: str | None = None
    try:
        for _ in range(MAX_VOICE_PAGES):
            params = {"limit": "100"}
            if cursor:
                params["starting_after"] = cursor
            response = await client.get(
                f"{base_url.rstrip('/')}/voices",
                params=params,
                headers=cartesia_headers(api_key, version),
                timeout=request_timeout,
            )
            await raise_for_status(CARTESIA_PROVIDER, response)
            data = response.json()
            if isinstance(data, list):  # 2024-06-10: one bare array
                voices.extend(_voice_info(v) for v in data if isinstance(v, dict))
                break
            if not isinstance(data, dict):
                raise ProviderError(CARTESIA_PROVIDER, "unexpected /voices answer")
            page = [v for v in data.get("data") or [] if isinstance(v, dict)]
            voices.extend(_voice_info(v) for v in page)
            cursor = data.get("next_page") or (page[-1].get("id") if page else None)
            if not data.get("has_more") or not cursor:
                break
    except httpx.TransportError as exc:
        raise error_for_transport(CARTESIA_PROVIDER, exc) from exc
    except ValueError as exc:
        raise ProviderError(CARTESIA_PROVIDER, f"unreadable /voices answer: {exc}") from exc
    finally:
        if http is None:
            await client.aclose()
    return voices
