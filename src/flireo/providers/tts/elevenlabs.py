"""ElevenLabs text-to-speech: the input-streaming websocket or streaming HTTP.

What this client relies on (ElevenLabs API reference "WebSocket" —
``/v1/text-to-speech/{voice_id}/stream-input`` AsyncAPI spec —, "Stream
speech", "List voices" and "Authentication", read 2026):

* Auth: ``xi-api-key: <key>`` header on every request and on the websocket
  handshake (the key may also ride in the first websocket message; the
  header is used so the key never sits in a message body).
* HTTP (``transport="http"``): ``POST {base}/v1/text-to-speech/{voice_id}/stream
  ?output_format=pcm_16000`` with ``{"text", "model_id", "voice_settings",
  "language_code"}`` (the last two only when set; without ``voice_settings``
  the voice's stored settings apply). ``language_code`` is ISO 639-1 and
  "currently only Turbo v2.5 and Flash v2.5 support language enforcement. For
  other models, an error will be returned": it is sent (as ``en`` for
  ``en-US``) only with those models. The body is raw s16le at the rate
  named by ``output_format`` (``pcm_8000|16000|22050|24000|44100``), sent as
  it is generated.
* Websocket (``transport="websocket"``, default):
  ``wss://{host}/v1/text-to-speech/{voice_id}/stream-input?model_id=…
  &output_format=pcm_16000`` (+ ``language_code``, same rule). Client messages:
  the first one ("BOS") ``{"text": " ", "voice_settings", "generation_config":
  {"chunk_length_schedule"}}``; text ``{"text": "… ", "try_trigger_generation",
  "flush"}`` (text should end with one space; ``flush`` forces generation of
  whatever is buffered); the last one ("EOS") ``{"text": ""}``. Server
  messages: ``{"audio": <base64 in output_format>, "alignment",
  "normalizedAlignment"}`` and finally ``{"isFinal": true}`` (audio null), after
  which the server closes. The server closes after ``inactivity_timeout``
  (default 20 s) without text.
* Models: ``eleven_flash_v2_5`` (default here, lowest latency),
  ``eleven_turbo_v2_5``, ``eleven_multilingual_v2``, ``eleven_v3``,
  ``eleven_monolingual_v1``.
* ``GET {base}/v1/voices`` → ``{"voices": [{"voice_id", "name", "category",
  "labels": {"gender", "accent", "language", …}, "verified_languages":
  [{"language", …}], "fine_tuning": {"language"}}]}``: the voices of the key's
  account, including a BYOK user's own library.

Behaviour decided here:

* One synthesis is one websocket: BOS, the whole sentence with
  ``flush: true``, EOS; audio is yielded as messages arrive until
  ``isFinal``. (The single-context socket marks the end of audio only with
  ``isFinal`` after EOS, so a socket cannot be reused for the next sentence.)
* A handshake refused with an HTTP status maps like an HTTP error; a socket
  closed before ``isFinal`` raises a retryable :class:`ProviderError`, except
  close code 1008 (policy: bad key, quota, invalid input), which is final, and
  a normal close (1000) after some audio, which ends the sentence. An
  ``{"error"|"message"}`` message without audio is an error. ``stall_timeout``
  bounds the wait for every message.
* Both transports: every chunk has an even byte count; one retry for retryable
  failures before the first chunk; cancelling the consumer closes the socket
  or the HTTP response at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
)

from flireo.clock import Clock, SystemClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import SAMPLE_RATE
from flireo.providers.catalog import VoiceInfo
from flireo.providers.http_errors import (
    error_for_handshake,
    error_for_transport,
    raise_for_status,
)
from flireo.providers.llm.sse import retry_before_first_event
from flireo.providers.tts.base import AudioChunk
from flireo.providers.tts.http_pcm import SampleAligner, pcm_timeout, stream_pcm

__all__ = [
    "ELEVENLABS_PROVIDER",
    "ELEVENLABS_SAMPLE_RATES",
    "ElevenLabsTTS",
    "list_voices",
    "ws_base_url",
]

ELEVENLABS_PROVIDER: Final = "elevenlabs"
DEFAULT_BASE_URL: Final = "https://api.elevenlabs.io"
ELEVENLABS_SAMPLE_RATES: Final = frozenset({8000, 16000, 22050, 24000, 44100})
#: the models that accept ``language_code`` (language enforcement)
LANGUAGE_CODE_MODELS: Final = frozenset({"eleven_turbo_v2_5", "eleven_flash_v2_5"})
_POLICY_VIOLATION = 1008


def ws_base_url(base_url: str) -> str:
    """``https://host`` → ``wss://host`` (``http`` → ``ws`` for local servers)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base


def language_code(language: str | None, model: str) -> str | None:
    """The ``language_code`` to send: ISO 639-1, and only to models that take one."""
    if not language or model not in LANGUAGE_CODE_MODELS:
        return None
    return language.replace("_", "-").split("-")[0].lower() or None


def _with_trailing_space(text: str) -> str:
    return text.rstrip() + " "


class ElevenLabsTTS:
    """:class:`~flireo.providers.tts.base.TextToSpeech` for ElevenLabs."""

    provider = ELEVENLABS_PROVIDER

    def __init__(
        self,
        *,
        api_key: str | None,
        voice_id: str,
        model: str = "eleven_flash_v2_5",
        base_url: str = DEFAULT_BASE_URL,
        transport: Literal["http", "websocket"] = "websocket",
        sample_rate: int = SAMPLE_RATE,
        language: str | None = None,
        voice_settings: dict[str, Any] | None = None,
        chunk_length_schedule: Sequence[int] | None = None,
        http: httpx.AsyncClient | None = None,
        connect_timeout: float = 5.0,
        stall_timeout: float = 10.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials(ELEVENLABS_PROVIDER)
        if sample_rate not in ELEVENLABS_SAMPLE_RATES:
            raise ProviderError(
                ELEVENLABS_PROVIDER,
                f"sample_rate {sample_rate} is not an ElevenLabs PCM rate "
                f"({sorted(ELEVENLABS_SAMPLE_RATES)})",
            )
        if transport not in ("http", "websocket"):
            raise ProviderError(ELEVENLABS_PROVIDER, f"unknown transport {transport!r}")
        self._api_key = api_key
        self.voice = voice_id
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.sample_rate = sample_rate
        self.language = language
        self.voice_settings = dict(voice_settings) if voice_settings else None
        self.chunk_length_schedule = list(chunk_length_schedule or ())
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._timeout = pcm_timeout(connect=connect_timeout, stall=stall_timeout)
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._clock = clock or SystemClock()

    @property
    def output_format(self) -> str:
        return f"pcm_{self.sample_rate}"

    # --- request shapes -------------------------------------------------------------
    def http_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "model_id": self.model}
        if self.voice_settings:
            body["voice_settings"] = self.voice_settings
        code = language_code(self.language, self.model)
        if code:
            body["language_code"] = code
        return body

    def websocket_url(self) -> str:
        params = {"model_id": self.model, "output_format": self.output_format}
        code = language_code(self.language, self.model)
        if code:
            params["language_code"] = code
        voice = quote(self.voice, safe="")
        base = ws_base_url(self.base_url)
        return f"{base}/v1/text-to-speech/{voice}/stream-input?{urlencode(params)}"

    def websocket_messages(self, text: str) -> list[dict[str, Any]]:
        """BOS, the sentence (flushed), EOS — in the order they are sent."""
        bos: dict[str, Any] = {"text": " "}
        if self.voice_settings:
            bos["voice_settings"] = self.voice_settings
        if self.chunk_length_schedule:
            bos["generation_config"] = {"chunk_length_schedule": self.chunk_length_schedule}
        return [bos, {"text": _with_trailing_space(text), "flush": True}, {"text": ""}]

    # --- TextToSpeech -------------------------------------------------------------------
    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        if not text.strip():
            return
        attempts = retry_before_first_event(
            lambda: self._synthesize_once(text),
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

    def _synthesize_once(self, text: str) -> AsyncGenerator[AudioChunk, None]:
        if self.transport == "http":
            voice = quote(self.voice, safe="")
            return stream_pcm(
                self._http,
                ELEVENLABS_PROVIDER,
                f"{self.base_url}/v1/text-to-speech/{voice}/stream",
                sample_rate=self.sample_rate,
                headers={"xi-api-key": self._api_key},
                params={"output_format": self.output_format},
                body=self.http_body(text),
                http_timeout=self._timeout,
            )
        return self._stream_websocket(text)

    async def _stream_websocket(self, text: str) -> AsyncGenerator[AudioChunk, None]:
        try:
            ws = await connect(
                self.websocket_url(),
                additional_headers={"xi-api-key": self._api_key},
                open_timeout=self._connect_timeout,
                close_timeout=1.0,
                max_size=16 * 2**20,
            )
        except InvalidStatus as exc:
            raise error_for_handshake(ELEVENLABS_PROVIDER, exc) from exc
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise error_for_transport(ELEVENLABS_PROVIDER, exc) from exc
        aligner = SampleAligner()
        heard_audio = False
        try:
            for message in self.websocket_messages(text):
                await ws.send(json.dumps(message))
            while True:
                async with asyncio.timeout(self._stall_timeout):
                    raw = await ws.recv()
                if isinstance(raw, bytes):
                    continue
                data = _parse(raw)
                audio = data.get("audio")
                if audio:
                    heard_audio = True
                    pcm = aligner.feed(base64.b64decode(audio))
                    if pcm:
                        yield AudioChunk(pcm, self.sample_rate)
                elif data.get("error") or data.get("message"):
                    raise _message_error(data)
                if data.get("isFinal"):
                    return
        except TimeoutError as exc:
            raise ProviderError(
                ELEVENLABS_PROVIDER,
                f"no audio for {self._stall_timeout:g} s (stalled)",
                retryable=True,
            ) from exc
        except ConnectionClosedOK as exc:
            if heard_audio:
                return  # closed cleanly after the last audio
            raise ProviderError(
                ELEVENLABS_PROVIDER, "websocket closed before any audio", retryable=True
            ) from exc
        except ConnectionClosed as exc:
            raise _close_error(exc) from exc
        finally:
            await ws.close()


def _parse(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(ELEVENLABS_PROVIDER, f"malformed message: {raw[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ProviderError(ELEVENLABS_PROVIDER, f"unexpected message: {raw[:200]!r}")
    return data


def _message_error(data: dict[str, Any]) -> ProviderError:
    message = str(data.get("message") or data.get("error") or "unknown error")[:300]
    code = data.get("code")
    retryable = code not in (_POLICY_VIOLATION, 401, 403) and not str(
        data.get("error") or ""
    ).startswith(("auth", "invalid", "quota"))
    return ProviderError(ELEVENLABS_PROVIDER, f"websocket error: {message}", retryable=retryable)


def _close_error(exc: ConnectionClosed) -> ProviderError:
    frame = exc.rcvd
    code = frame.code if frame is not None else None
    reason = frame.reason if frame is not None else ""
    detail = f"code {code}" + (f": {reason}" if reason else "") if code else "no close frame"
    return ProviderError(
        ELEVENLABS_PROVIDER,
        f"websocket closed before the audio ended ({detail})"[:300],
        retryable=code != _POLICY_VIOLATION,
    )


def _voice_language(raw: dict[str, Any]) -> str | None:
    labels = raw.get("labels") or {}
    if isinstance(labels, dict) and labels.get("language"):
        return str(labels["language"])
    for verified in raw.get("verified_languages") or []:
        if isinstance(verified, dict) and verified.get("language"):
            return str(verified["language"])
    fine_tuning = raw.get("fine_tuning") or {}
    if isinstance(fine_tuning, dict) and fine_tuning.get("language"):
        return str(fine_tuning["language"])
    return None


def _voice_info(raw: dict[str, Any]) -> VoiceInfo:
    labels = raw.get("labels") or {}
    gender = labels.get("gender") if isinstance(labels, dict) else None
    return VoiceInfo(
        id=str(raw.get("voice_id") or ""),
        name=str(raw.get("name") or raw.get("voice_id") or ""),
        provider=ELEVENLABS_PROVIDER,
        language=_voice_language(raw),
        gender=str(gender) if gender else None,
        sample_rate=None,
    )


async def list_voices(
    *,
    api_key: str | None,
    base_url: str = DEFAULT_BASE_URL,
    http: httpx.AsyncClient | None = None,
    request_timeout: float = 10.0,
) -> list[VoiceInfo]:
    """The voices of the key's account (``GET /v1/voices``)."""
    if not api_key:
        raise MissingCredentials(ELEVENLABS_PROVIDER)
    client = http or httpx.AsyncClient()
    try:
        response = await client.get(
            f"{base_url.rstrip('/')}/v1/voices",
            headers={"xi-api-key": api_key},
            timeout=request_timeout,
        )
        await raise_for_status(ELEVENLABS_PROVIDER, response)
        data = response.json()
    except httpx.TransportError as exc:
        raise error_for_transport(ELEVENLABS_PROVIDER, exc) from exc
    except ValueError as exc:
        raise ProviderError(ELEVENLABS_PROVIDER, f"unreadable /v1/voices answer: {exc}") from exc
    finally:
        if http is None:
            await client.aclose()
    voices = data.get("voices") if isinstance(data, dict) else None
    if not isinstance(voices, list):
        raise ProviderError(ELEVENLABS_PROVIDER, "unexpected /v1/voices answer")
    return [_voice_info(v) for v in voices if isinstance(v, dict)]
