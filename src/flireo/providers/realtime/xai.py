"""xAI Grok Voice Agent API (speech to speech) over a websocket.

What this client relies on (xAI docs "Voice Agent API" at
docs.x.ai/docs/guides/voice/agent, read 2026; the protocol follows OpenAI's
realtime API in its GA naming):

* Endpoint ``wss://api.x.ai/v1/realtime``, model chosen with ``?model=``
  (e.g. ``grok-voice-latest``; omitted = xAI's default), server-side auth with
  ``Authorization: Bearer <XAI_API_KEY>``. The server opens with
  ``conversation.created``; ``session.update`` is answered by
  ``session.updated``. Sessions last at most one hour.
* ``session.update`` → ``session``: ``instructions``, ``voice`` (``eve`` —
  xAI's default —, ``ara``, ``rex``, ``sal``, ``leo``; case-insensitive),
  ``turn_detection: {"type": "server_vad"}``, ``tools`` as flat function
  definitions ``{"type": "function", "name", "description", "parameters"}``,
  ``audio.input.format`` / ``audio.output.format`` = ``{"type": "audio/pcm",
  "rate": 24000}`` (PCM16 little-endian mono; 24 kHz is the documented
  default, other rates exist, G.711 too). ``temperature`` is sent only when
  the caller sets one.
* Client events: ``input_audio_buffer.append`` (``audio``: base64 PCM),
  ``conversation.item.create`` (``message`` items with ``input_text`` parts for
  user/system and ``output_text`` for assistant; ``function_call_output`` items
  with ``call_id`` and ``output``), ``response.create`` (optional
  ``response.instructions``), ``response.cancel``.
* Server events used: ``input_audio_buffer.speech_started`` /
  ``speech_stopped`` (server VAD; xAI then interrupts its own response),
  ``response.output_audio.delta`` (``delta``: base64 PCM; the older
  ``response.audio.delta`` name is accepted too),
  ``response.output_audio_transcript.delta`` / ``.done`` (assistant words),
  ``conversation.item.input_audio_transcription.completed`` (caller words),
  ``response.function_call_arguments.done`` (``call_id``, ``name``,
  ``arguments`` JSON string), ``response.done`` (``usage`` at the top level or
  in ``response``), ``error`` (``error.message``/``code``), ``ping``.
  "Cancellation failed: no active response" errors after a ``cancel()`` race
  are dropped.

Audio: callers send 16 kHz PCM (the engine's format); it is resampled to the
session rate with :class:`~flireo.media.resample.Resampler` (quality ``QQ``)
before sending. Vendor audio is emitted untouched as :class:`RealtimeAudio`
at the session rate. A websocket closed by anything but :meth:`aclose`
yields one fatal :class:`RealtimeError` and ends :meth:`events`; sends after
that are dropped (the error event already reports the failure).

Connecting (upgrade, ``session.update``, ``session.updated``) has one deadline,
``connect_timeout``; a failed connect closes its socket within
``close_timeout`` (websockets then drops it) and raises a
:class:`~flireo.errors.ProviderError`: the handshake's HTTP status and
``Retry-After`` when it was refused, a retryable "timed out" past the deadline.
Nothing is retried inside the client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Literal
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.providers.http_errors import error_for_handshake, error_for_transport
from flireo.providers.llm.base import ToolCall, ToolSpec
from flireo.providers.realtime.base import (
    RealtimeAudio,
    RealtimeError,
    RealtimeEvent,
    RealtimeResponseDone,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeToolCall,
    RealtimeTranscript,
)

PROVIDER: Final = "xai_realtime"
DEFAULT_URL: Final = "wss://api.x.ai/v1/realtime"
VENDOR_SAMPLE_RATE: Final = 24_000
DEFAULT_VOICE: Final = "eve"
_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
_TRANSCRIPT_DELTAS = frozenset(
    {
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        "response.output_text.delta",
        "response.text.delta",
    }
)
_TRANSCRIPT_DONES = frozenset(
    {
        "response.output_audio_transcript.done",
        "response.audio_transcript.done",
        "response.output_text.done",
        "response.text.done",
    }
)
_BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})


def session_config(
    *,
    instructions: str,
    voice: str,
    tools: Sequence[ToolSpec],
    temperature: float | None,
    sample_rate: int,
    turn_detection: dict[str, Any],
) -> dict[str, Any]:
    audio_format = {"type": "audio/pcm", "rate": sample_rate}
    session: dict[str, Any] = {
        "instructions": instructions,
        "voice": voice,
        "turn_detection": turn_detection,
        "audio": {"input": {"format": audio_format}, "output": {"format": dict(audio_format)}},
    }
    if tools:
        session["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            }
            for t in tools
        ]
    if temperature is not None:
        session["temperature"] = temperature
    return session


class XaiRealtimeSession:
    """One live conversation; made by :meth:`XaiRealtimeModel.connect`."""

    def __init__(self, ws: ClientConnection, *, sample_rate: int) -> None:
        self._ws = ws
        self.sample_rate = sample_rate
        self._upsampler = Resampler(SAMPLE_RATE, sample_rate, quality="QQ")
        self._queue: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()  # None: the end
        self._closing = False
        self._closed = False
        self._seen_calls: set[str] = set()
        self._transcripts: dict[str, list[str]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def configure(self, config: dict[str, Any]) -> None:
        """Send ``session.update`` and wait for ``session.updated`` (then start reading)."""
        await self._ws.send(json.dumps({"type": "session.update", "session": config}))
        while True:
            data = json.loads(await self._ws.recv())
            if not isinstance(data, dict):
                continue
            if data.get("type") == "session.updated":
                self._translate(data)
                break
            if data.get("type") == "error":
                error = data.get("error") or {}
                message = str(error.get("message") or error.get("code") or "session refused")
                raise ProviderError(PROVIDER, f"session.update refused: {message}"[:300])
        self._reader = asyncio.create_task(self._read(), name="xai-realtime-reader")

    # --- RealtimeSession ------------------------------------------------------
    async def send_audio(self, pcm: bytes) -> None:
        converted = self._upsampler.process(pcm)
        if converted:
            audio = base64.b64encode(converted).decode("ascii")
            await self._send({"type": "input_audio_buffer.append", "audio": audio})

    async def add_message(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        part = "output_text" if role == "assistant" else "input_text"
        item = {"type": "message", "role": role, "content": [{"type": part, "text": text}]}
        await self._send({"type": "conversation.item.create", "item": item})

    async def respond(self, instructions: str | None = None) -> None:
        event: dict[str, Any] = {"type": "response.create"}
        if instructions:
            event["response"] = {"instructions": instructions}
        await self._send(event)

    async def cancel(self) -> None:
        await self._send({"type": "response.cancel"})

    async def send_tool_result(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self._send({"type": "conversation.item.create", "item": item})
        await self._send({"type": "response.create"})

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # later callers end too
                return
            yield item

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._ws.close()
        self._queue.put_nowait(None)

    # --- internals --------------------------------------------------------------
    async def _send(self, event: dict[str, Any]) -> None:
        if self._closed or self._closing:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(json.dumps(event))

    async def _read(self) -> None:
        reason = "closed by the server"
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    for event in self._translate(data):
                        self._queue.put_nowait(event)
        except ConnectionClosed as exc:
            reason = f"dropped ({exc})"
        finally:
            self._closed = True
            if not self._closing:
                code = self._ws.close_code
                detail = f"code {code}" if code is not None else "no close frame"
                message = f"xAI realtime connection {reason}; {detail}"
                self._queue.put_nowait(RealtimeError(message, fatal=True))
                self._queue.put_nowait(None)

    def _translate(self, data: dict[str, Any]) -> list[RealtimeEvent]:
        kind = data.get("type")
        if kind in _AUDIO_DELTAS:
            return [RealtimeAudio(base64.b64decode(data.get("delta") or ""), self.sample_rate)]
        if kind in _TRANSCRIPT_DELTAS:
            delta = str(data.get("delta") or "")
            self._transcripts.setdefault(self._item_key(data), []).append(delta)
            return [RealtimeTranscript("assistant", delta, is_final=False)] if delta else []
        if kind in _TRANSCRIPT_DONES:
            parts = self._transcripts.pop(self._item_key(data), [])
            text = data.get("transcript") or data.get("text") or "".join(parts)
            return [RealtimeTranscript("assistant", str(text), is_final=True)]
        if kind == "input_audio_buffer.speech_started":
            return [RealtimeSpeechStarted()]
        if kind == "input_audio_buffer.speech_stopped":
            return [RealtimeSpeechStopped()]
        if kind == "conversation.item.input_audio_transcription.delta":
            delta = str(data.get("delta") or "")
            return [RealtimeTranscript("user", delta, is_final=False)] if delta else []
        if kind == "conversation.item.input_audio_transcription.completed":
            return [RealtimeTranscript("user", str(data.get("transcript") or ""), is_final=True)]
        if kind == "response.function_call_arguments.done":
            return self._tool_call(data)
        if kind == "response.done":
            self._transcripts.clear()  # a cancelled response never sends its .done
            response = data.get("response") or {}
            usage = data.get("usage") or response.get("usage") or {}
            return [
                RealtimeResponseDone(
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                )
            ]
        if kind == "session.updated":
            rate = (
                ((data.get("session") or {}).get("audio") or {}).get("output", {}).get("format", {})
            ).get("rate")
            if isinstance(rate, int) and rate > 0:
                self.sample_rate = rate
            return []
        if kind == "error":
            return self._error(data)
        return []

    @staticmethod
    def _item_key(data: dict[str, Any]) -> str:
        return str(data.get("item_id") or data.get("response_id") or "")

    def _tool_call(self, data: dict[str, Any]) -> list[RealtimeEvent]:
        call_id = str(data.get("call_id") or "")
        name = str(data.get("name") or "")
        if call_id in self._seen_calls:
            return []
        self._seen_calls.add(call_id)
        raw = str(data.get("arguments") or "")
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return [
                RealtimeError(f"tool call {name!r} has invalid arguments: {raw[:200]!r}", False)
            ]
        return [RealtimeToolCall(ToolCall(id=call_id, name=name, arguments=arguments))]

    @staticmethod
    def _error(data: dict[str, Any]) -> list[RealtimeEvent]:
        error = data.get("error") or {}
        code = str(error.get("code") or "")
        message = str(error.get("message") or code or "unknown error")
        if code in _BENIGN_ERROR_CODES or "no active response" in message.lower():
            return []
        label = f"{code}: " if code else ""
        return [RealtimeError(f"xAI realtime error: {label}{message}", fatal=False)]


class XaiRealtimeModel:
    """:class:`~flireo.providers.realtime.base.RealtimeModel` for xAI."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str | None = None,
        url: str = DEFAULT_URL,
        default_voice: str = DEFAULT_VOICE,
        sample_rate: int = VENDOR_SAMPLE_RATE,
        turn_detection: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        close_timeout: float = 1.0,
    ) -> None:
        if not api_key:
            raise MissingCredentials("xai")
        self._api_key = api_key
        self.model = model
        self.url = url
        self.default_voice = default_voice
        self.sample_rate = sample_rate
        self.turn_detection = turn_detection or {"type": "server_vad"}
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout

    def endpoint(self) -> str:
        if not self.model:
            return self.url
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}model={quote(self.model, safe='')}"

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[ToolSpec] = (),
        voice: str | None = None,
        temperature: float | None = None,
    ) -> XaiRealtimeSession:
        """Open the websocket, configure the session and wait for ``session.updated``,
        all within one ``connect_timeout``. On failure the socket is closed within
        ``close_timeout`` (then dropped) and a :class:`ProviderError` raised."""
        config = session_config(
            instructions=instructions,
            voice=voice or self.default_voice,
            tools=tools,
            temperature=temperature,
            sample_rate=self.sample_rate,
            turn_detection=self.turn_detection,
        )
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await connect(
                    self.endpoint(),
                    additional_headers={"Authorization": f"Bearer {self._api_key}"},
                    open_timeout=None,  # the deadline above covers the upgrade
                    close_timeout=self.close_timeout,
                    max_size=16 * 2**20,
                )
                session = XaiRealtimeSession(ws, sample_rate=self.sample_rate)
                await session.configure(config)
        except BaseException as exc:
            if ws is not None:
                await ws.close()  # bounded by close_timeout, then the socket is dropped
            error = _connect_error(exc)
            if error is exc:
                raise
            raise error from exc
        return session


def _connect_error(exc: BaseException) -> BaseException:
    """What a failed :meth:`XaiRealtimeModel.connect` raises for ``exc``."""
    if isinstance(exc, InvalidStatus):
        return error_for_handshake(PROVIDER, exc)
    if isinstance(exc, InvalidHandshake | OSError | TimeoutError):
        return error_for_transport(PROVIDER, exc)
    if isinstance(exc, ConnectionClosed):
        return ProviderError(PROVIDER, f"connection closed during setup: {exc}", retryable=True)
    return exc
