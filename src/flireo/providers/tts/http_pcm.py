"""Raw PCM streamed in an HTTP response body, shared by the vendor TTS clients
that answer a POST with s16le audio (OpenAI ``/audio/speech``, ElevenLabs
``/stream``, Cartesia ``/tts/bytes``).

* Network chunks split samples anywhere; :class:`SampleAligner` holds back a
  dangling byte so every :class:`AudioChunk` has an even byte count (whole
  16-bit samples), and the byte is prepended to the next chunk.
* Chunks are yielded as they arrive: the first audio reaches the engine while
  the vendor is still synthesizing.
* Timeouts: ``connect`` for TCP/TLS, ``stall`` as httpx's read timeout — the
  longest wait for the first byte and between any two chunks.
* Failures become :class:`~flireo.errors.ProviderError` through
  :mod:`flireo.providers.http_errors` (401/403 final, 429/5xx/timeouts/dropped
  connections retryable); a 200 whose body is not audio (JSON, HTML) is an
  error too, so a misrouted request never plays noise.
* Leaving the iterator (the consumer is cancelled, or ``aclose()``) closes the
  response and with it the connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from flireo.errors import ProviderError
from flireo.providers.http_errors import error_for_transport, raise_for_status
from flireo.providers.tts.base import AudioChunk

__all__ = ["SampleAligner", "pcm_timeout", "stream_pcm"]

_NOT_AUDIO = ("application/json", "text/")


class SampleAligner:
    """Cuts a byte stream into whole 16-bit samples."""

    __slots__ = ("_odd",)

    def __init__(self) -> None:
        self._odd = b""

    def feed(self, data: bytes) -> bytes:
        if self._odd:
            data = self._odd + data
            self._odd = b""
        if len(data) & 1:
            self._odd = data[-1:]
            data = data[:-1]
        return data

    @property
    def pending(self) -> int:
        """Bytes held back (0 or 1)."""
        return len(self._odd)


def pcm_timeout(*, connect: float, stall: float) -> httpx.Timeout:
    return httpx.Timeout(stall, connect=connect)


async def stream_pcm(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    sample_rate: int,
    headers: Mapping[str, str],
    body: dict[str, Any],
    http_timeout: httpx.Timeout,
    params: Mapping[str, str] | None = None,
) -> AsyncGenerator[AudioChunk, None]:
    """POST ``body`` as JSON and yield the response body as aligned PCM chunks."""
    try:
        async with client.stream(
            "POST", url, json=body, headers=dict(headers), params=params, timeout=http_timeout
        ) as response:
            await raise_for_status(provider, response)
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith(_NOT_AUDIO):
                text = (await response.aread())[:300].decode("utf-8", "replace")
                raise ProviderError(provider, f"expected audio, got {content_type}: {text}")
            aligner = SampleAligner()
            async for data in response.aiter_bytes():
                pcm = aligner.feed(data)
                if pcm:
                    yield AudioChunk(pcm, sample_rate)
    except httpx.TimeoutException as exc:
        raise error_for_transport(provider, exc) from exc
    except httpx.RemoteProtocolError as exc:
        message = f"audio stream interrupted: {exc}"[:300]
        raise ProviderError(provider, message, retryable=True) from exc
    except httpx.TransportError as exc:
        raise error_for_transport(provider, exc) from exc
