"""A local xAI Voice Agent (realtime) websocket speaking the real event protocol.

Usage in a test (import the fixture into your package's ``conftest.py`` with
``from tests.fakes.xai_realtime import fake_xai_realtime  # noqa: F401``)::

    async def test_grok_session(fake_xai_realtime: FakeXaiRealtime) -> None:
        model = XaiRealtimeModel(api_key=fake_xai_realtime.api_key, url=fake_xai_realtime.url)
        session = await model.connect(instructions="Be brief.", voice="ara")
        assert fake_xai_realtime.session["voice"] == "ara"

        fake_xai_realtime.speech_started()              # server VAD heard the caller
        fake_xai_realtime.user_transcript("what time is it")
        fake_xai_realtime.say("It is noon.")            # audio deltas (a tone) + transcript
        fake_xai_realtime.function_call("get_time", {"tz": "UTC"}, call_id="call_1")
        fake_xai_realtime.function_call("endCall", {}, said="Bye!")  # words, then the call
        fake_xai_realtime.error("something odd")        # a non-fatal error event
        fake_xai_realtime.drop()                        # close the socket (code 1011)
        fake_xai_realtime.reject_next(429, headers={"Retry-After": "5"})  # refuse a handshake
        fake_xai_realtime.stall_next_handshake(5.0)     # leave an upgrade unanswered
        fake_xai_realtime.answer_session_update = False  # never send session.updated

        await session.send_audio(pcm16_16k)
        await fake_xai_realtime.wait_for("input_audio_buffer.append")
        assert fake_xai_realtime.audio_in               # decoded caller audio at 24 kHz

Outside the fixture: ``with serve(fake.app()) as srv: fake.url = f"{srv.ws_url}/v1/realtime"``.

Each ``response.create`` from the client is answered with the next reply
queued by :meth:`FakeXaiRealtime.enqueue_response` (a :class:`SpokenReply`),
or a short default sentence when ``auto_respond`` is on. ``response.cancel``
stops the reply being played (``response.done`` with status ``cancelled``), or
answers ``response_cancel_not_active`` when nothing plays, as xAI does. The
``Authorization: Bearer`` key is checked when ``api_key`` is set (the
handshake is refused with HTTP 403 otherwise); :meth:`FakeXaiRealtime.reject_next`
refuses the next handshake with any status and an xAI-style JSON body
(``{"code", "error"}``); ``session.update`` with an unknown voice or
audio format gets an ``error`` event. Every client event is kept in
``received``; scripting methods are thread-safe (the server runs in its own
thread).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.server import serve, upgrade_left_unanswered

__all__ = ["FakeXaiRealtime", "SpokenReply", "fake_xai_realtime", "tone"]

VOICES = frozenset({"eve", "ara", "rex", "sal", "leo"})
AUDIO_FORMATS = frozenset({"audio/pcm", "audio/pcmu", "audio/pcma"})
RATE = 24_000
DELTA_BYTES = RATE * 2 * 40 // 1000  # 40 ms of audio per delta


def tone(seconds: float = 0.2, rate: int = RATE, hz: float = 440.0) -> bytes:
    """A sine tone as s16le PCM: stands in for the vendor's speech."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


@dataclass(frozen=True)
class SpokenReply:
    """What the fake says for one response: words and audio, then maybe a function
    call (the output items of one xAI response, in order)."""

    text: str = "Hello from the fake Grok."
    #: audio at the session's output rate; None plays a tone (when there is text)
    pcm: bytes | None = None
    #: (name, arguments, call_id) to call after the words; with no text, nothing is said
    function_call: tuple[str, dict[str, Any] | str, str] | None = None
    #: seconds between audio deltas (0: as fast as possible)
    delta_delay: float = 0.0
    usage: tuple[int, int] = (20, 10)


_STATUS_CODES = {
    400: "Client specified an invalid argument",
    401: "Unauthenticated",
    403: "Permission denied",
    429: "Too many requests",
}


def _eid() -> str:
    return f"event_{uuid.uuid4().hex[:16]}"


@dataclass
class _Connection:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    actions: asyncio.Queue[Callable[[], Awaitable[None]]] = field(default_factory=asyncio.Queue)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    playing: asyncio.Task[None] | None = None
    closed: bool = False


class FakeXaiRealtime:
    """Scriptable xAI realtime server; see the module docstring."""

    def __init__(self, *, api_key: str | None = None, auto_respond: bool = True) -> None:
        self.api_key = api_key
        self.auto_respond = auto_respond
        self.url = ""
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._audio = bytearray()
        self._session: dict[str, Any] = {}
        self._replies: list[SpokenReply] = []
        self._models: list[str | None] = []
        self._headers: list[dict[str, str]] = []
        self._conn: _Connection | None = None
        self._rejections: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self._handshake_stalls: list[float] = []
        #: False: ``session.update`` is recorded but never answered
        self.answer_session_update = True

    # --- observations ------------------------------------------------------------
    @property
    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    def received_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    @property
    def session(self) -> dict[str, Any]:
        """The session as configured by the client's ``session.update`` events."""
        with self._lock:
            return dict(self._session)

    @property
    def audio_in(self) -> bytes:
        with self._lock:
            return bytes(self._audio)

    @property
    def models(self) -> list[str | None]:
        """The ``?model=`` of each connection."""
        with self._lock:
            return list(self._models)

    @property
    def headers(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._headers)

    @property
    def connected(self) -> bool:
        """A client is connected right now (past the handshake)."""
        with self._lock:
            return self._conn is not None and not self._conn.closed

    async def wait_for(self, kind: str, count: int = 1, within: float = 5.0) -> dict[str, Any]:
        """Wait (in the test's loop) until ``count`` client events of ``kind`` arrived."""
        deadline = time.monotonic() + within
        while len(found := self.received_of(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fake xAI got {len(found)} {kind!r} events, wanted {count}")
            await asyncio.sleep(0.01)
        return found[count - 1]

    # --- scripting (from the test's thread) -------------------------------------
    def enqueue_response(self, *replies: SpokenReply | str) -> None:
        with self._lock:
            self._replies.extend(SpokenReply(r) if isinstance(r, str) else r for r in replies)

    def reject_next(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Refuse the next handshake with an HTTP ``status`` and a JSON error body."""
        body = {
            "code": _STATUS_CODES.get(status, "Internal error"),
            "error": message or f"scripted {status}",
        }
        with self._lock:
            self._rejections.append((status, body, dict(headers or {})))

    def stall_next_handshake(self, seconds: float) -> None:
        """Hold the next websocket upgrade unanswered for ``seconds`` (or until the
        client gives up), then accept it."""
        with self._lock:
            self._handshake_stalls.append(seconds)

    def send(self, event: dict[str, Any]) -> None:
        """Send any raw server event."""
        self._schedule(lambda conn: self._emit(conn, event))

    def speech_started(self, item_id: str = "item_user") -> None:
        self.send(
            {"type": "input_audio_buffer.speech_started", "item_id": item_id, "audio_start_ms": 0}
        )

    def speech_stopped(self, item_id: str = "item_user") -> None:
        self.send(
            {"type": "input_audio_buffer.speech_stopped", "item_id": item_id, "audio_end_ms": 900}
        )

    def user_transcript(self, text: str, item_id: str = "item_user") -> None:
        self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
            }
        )

    def say(
        self,
        text: str = "Hello from the fake Grok.",
        pcm: bytes | None = None,
        delta_delay: float = 0.0,
    ) -> None:
        """Play a response now (as if server VAD had ended the caller's turn)."""
        reply = SpokenReply(text=text, pcm=pcm, delta_delay=delta_delay)
        self._schedule(lambda conn: self._start(conn, reply))

    def function_call(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        call_id: str = "call_fake_1",
        *,
        said: str = "",
        pcm: bytes | None = None,
    ) -> None:
        """A response calling a function now, after saying ``said`` (if any)."""
        reply = SpokenReply(text=said, pcm=pcm, function_call=(name, arguments, call_id))
        self._schedule(lambda conn: self._start(conn, reply))

    def error(self, message: str, code: str = "server_error") -> None:
        error = {"type": "server_error", "code": code, "message": message, "param": None}
        self.send({"type": "error", "error": error})

    def drop(self, code: int = 1011, reason: str = "internal error") -> None:
        """Close the websocket from the server side."""

        async def close(conn: _Connection) -> None:
            conn.closed = True
            await conn.ws.close(code=code, reason=reason)

        self._schedule(close)

    def _schedule(self, action: Callable[[_Connection], Awaitable[None]]) -> None:
        with self._lock:
            conn = self._conn
        if conn is None:
            raise AssertionError("no client is connected to the fake xAI realtime server")
        conn.loop.call_soon_threadsafe(conn.actions.put_nowait, lambda: action(conn))

    # --- server -------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute("/v1/realtime", self._endpoint)])

    async def _endpoint(self, ws: WebSocket) -> None:
        with self._lock:
            self._headers.append(dict(ws.headers))
            self._models.append(ws.query_params.get("model"))
            rejection = self._rejections.pop(0) if self._rejections else None
            stall = self._handshake_stalls.pop(0) if self._handshake_stalls else None
        if rejection is not None:
            status, body, headers = rejection
            await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
            return
        if stall is not None and await upgrade_left_unanswered(ws, stall):
            return
        if self.api_key is not None and ws.headers.get("authorization") != f"Bearer {self.api_key}":
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        await ws.accept()
        conn = _Connection(ws, asyncio.get_running_loop())
        with self._lock:
            self._conn = conn
        await self._emit(
            conn,
            {
                "type": "conversation.created",
                "conversation": {
                    "id": f"conv_{uuid.uuid4().hex[:12]}",
                    "object": "realtime.conversation",
                },
            },
        )
        actions = asyncio.create_task(self._run_actions(conn))
        try:
            while not conn.closed:
                message = await ws.receive_text()
                await self._handle(conn, json.loads(message))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conn.closed = True
            actions.cancel()
            if conn.playing is not None:
                conn.playing.cancel()

    async def _run_actions(self, conn: _Connection) -> None:
        while True:
            action = await conn.actions.get()
            await action()

    async def _emit(self, conn: _Connection, event: dict[str, Any]) -> None:
        if conn.closed:
            return
        async with conn.send_lock:
            await conn.ws.send_text(json.dumps({"event_id": _eid(), **event}))

    async def _handle(self, conn: _Connection, event: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(event)
        kind = event.get("type")
        if kind == "session.update":
            await self._session_update(conn, event.get("session") or {})
        elif kind == "input_audio_buffer.append":
            with self._lock:
                self._audio += base64.b64decode(event.get("audio") or "")
        elif kind == "conversation.item.create":
            item = {"id": f"item_{uuid.uuid4().hex[:12]}", **(event.get("item") or {})}
            await self._emit(conn, {"type": "conversation.item.added", "item": item})
        elif kind == "response.create":
            if self.auto_respond:
                with self._lock:
                    reply = self._replies.pop(0) if self._replies else SpokenReply()
                await self._start(conn, reply)
        elif kind == "response.cancel":
            if conn.playing is not None and not conn.playing.done():
                conn.playing.cancel()
            else:
                error = {
                    "type": "invalid_request_error",
                    "code": "response_cancel_not_active",
                    "message": "Cancellation failed: no active response found",
                }
                await self._emit(conn, {"type": "error", "error": error})

    async def _session_update(self, conn: _Connection, update: dict[str, Any]) -> None:
        if not self.answer_session_update:
            return
        voice = update.get("voice")
        formats = [
            ((update.get("audio") or {}).get(side) or {}).get("format") or {}
            for side in ("input", "output")
        ]
        problem = None
        if voice is not None and str(voice).lower() not in VOICES:
            problem = f"Invalid voice: {voice!r}"
        for fmt in formats:
            if fmt and fmt.get("type") not in AUDIO_FORMATS:
                problem = f"Invalid audio format: {fmt.get('type')!r}"
        if problem is not None:
            error = {"type": "invalid_request_error", "code": "invalid_value", "message": problem}
            await self._emit(conn, {"type": "error", "error": error})
            return
        with self._lock:
            self._session.update(update)
            session = dict(self._session)
        await self._emit(conn, {"type": "session.updated", "session": session})

    async def _start(self, conn: _Connection, reply: SpokenReply) -> None:
        if conn.playing is not None and not conn.playing.done():
            conn.playing.cancel()
        conn.playing = asyncio.create_task(self._play(conn, reply))

    async def _play(self, conn: _Connection, reply: SpokenReply) -> None:
        response_id = f"resp_{uuid.uuid4().hex[:12]}"
        item_id = f"item_{uuid.uuid4().hex[:12]}"
        ids = {"response_id": response_id, "item_id": item_id}
        status = "completed"
        await self._emit(
            conn,
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "output": [],
                },
            },
        )
        try:
            spoke = reply.function_call is None or bool(reply.text) or reply.pcm is not None
            if spoke:
                await self._speak(conn, reply, ids)
            if reply.function_call is not None:
                if spoke:  # the call is the response's next output item
                    item_id = f"item_{uuid.uuid4().hex[:12]}"
                    ids = {"response_id": response_id, "item_id": item_id}
                name, arguments, call_id = reply.function_call
                raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
                call = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name}
                await self._emit(
                    conn,
                    {
                        "type": "response.output_item.added",
                        "response_id": response_id,
                        "output_index": int(spoke),
                        "item": {**call, "arguments": ""},
                    },
                )
                await self._emit(
                    conn,
                    {
                        "type": "response.function_call_arguments.delta",
                        **ids,
                        "call_id": call_id,
                        "delta": raw,
                    },
                )
                await self._emit(
                    conn,
                    {
                        "type": "response.function_call_arguments.done",
                        **ids,
                        "call_id": call_id,
                        "name": name,
                        "arguments": raw,
                    },
                )
        except asyncio.CancelledError:
            status = "cancelled"
        prompt, completion = reply.usage
        usage = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }
        await self._emit(
            conn,
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": status,
                    "output": [],
                    "usage": usage,
                },
            },
        )

    async def _speak(self, conn: _Connection, reply: SpokenReply, ids: dict[str, str]) -> None:
        rate = int(
            ((self.session.get("audio") or {}).get("output") or {})
            .get("format", {})
            .get("rate", RATE)
        )
        pcm = reply.pcm if reply.pcm is not None else tone(0.2, rate)
        words = reply.text.split(" ") if reply.text else []
        chunks = [pcm[i : i + DELTA_BYTES] for i in range(0, len(pcm), DELTA_BYTES)]
        for n in range(max(len(chunks), len(words))):
            if n < len(words):
                word = words[n] if n == 0 else f" {words[n]}"
                await self._emit(
                    conn, {"type": "response.output_audio_transcript.delta", **ids, "delta": word}
                )
            if n < len(chunks):
                audio = base64.b64encode(chunks[n]).decode()
                await self._emit(
                    conn,
                    {
                        "type": "response.output_audio.delta",
                        **ids,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": audio,
                    },
                )
            await asyncio.sleep(reply.delta_delay)
        await self._emit(conn, {"type": "response.output_audio.done", **ids})
        await self._emit(
            conn, {"type": "response.output_audio_transcript.done", **ids, "transcript": reply.text}
        )


@pytest.fixture
def fake_xai_realtime() -> Iterator[FakeXaiRealtime]:
    """A fresh fake per test; ``.url`` is the websocket URL and ``.api_key`` the key."""
    fake = FakeXaiRealtime(api_key="xai-fake-key")
    with serve(fake.app()) as srv:
        fake.url = f"{srv.ws_url}/v1/realtime"
        yield fake
