"""A local Deepgram live-transcription server (``/v1/listen`` websocket) speaking
the real protocol.

Usage (import the fixture into your package's ``conftest.py`` with
``from tests.fakes.deepgram import fake_deepgram  # noqa: F401``)::

    async def test_caller_is_heard(fake_deepgram: FakeDeepgram) -> None:
        fake_deepgram.enqueue_utterances("I need a plumber.", "Tomorrow at nine.")
        stt = DeepgramSTT(api_key=fake_deepgram.api_key, url=fake_deepgram.url)
        stream = await stt.open(language="en", keyterms=["Flireo"])
        ...push 16 kHz audio, stream.finalize()...
        session = fake_deepgram.session            # the last connection
        assert session.params("keyterm") == ["Flireo"]
        assert session.controls == ["Finalize", "KeepAlive", "CloseStream"]
        fake_deepgram.drop()                       # server drops the socket now
        fake_deepgram.drop_after_audio(1.0)        # ... or after 1 s of audio
        fake_deepgram.reject_next(401)             # refuse the next handshake
        fake_deepgram.reject_next(429, headers={"Retry-After": "3"})  # ... with headers
        fake_deepgram.stall_next_handshake(5.0)    # leave the next upgrade unanswered

``.url`` is the websocket URL of ``/v1/listen``; ``.api_key`` is checked against
``Authorization: Token <key>`` (a wrong key gets an HTTP 401 handshake answer,
as Deepgram does). Query parameters are checked like Deepgram does: a known
model, ``sample_rate`` with ``encoding``, ``keyterm`` only on nova-3 models.

How it "recognizes": audio is cut into 20 ms frames; a frame whose RMS
reaches ``speech_level`` is speech. The first speech frame of an utterance
takes the next text from the queue (then ``default_text``; with neither, the
speech is not understood and yields empty results). While speech arrives,
every ``interim_every`` seconds of speech sends an interim ``Results`` with
the words heard so far (``words_per_second``); ``final_every_words`` (when
set) fixes segments with ``is_final`` results on the way. ``endpointing=<ms>``
of silence after speech sends ``is_final`` + ``speech_final`` for the words
heard. ``Finalize`` sends ``is_final`` + ``from_finalize`` with all the
utterance's remaining words and ends the utterance — unless fewer than 100 ms
of audio came since the last final (Deepgram does not answer then), or
``ignore_finalize`` is set. ``KeepAlive`` is recorded and not answered; with
neither audio nor a message for ``idle_timeout`` seconds the server closes
with 1011 (NET-0001). ``CloseStream`` sends the remaining words, a
``Metadata`` message, and closes with 1000. ``vad_events=true`` adds
``SpeechStarted`` messages.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.server import serve, upgrade_left_unanswered

__all__ = ["FakeDeepgram", "ListenSession", "fake_deepgram", "results_message"]

MODELS = frozenset(
    {
        "nova-3",
        "nova-3-general",
        "nova-3-medical",
        "nova-2",
        "nova-2-general",
        "nova-2-phonecall",
        "nova-2-meeting",
        "nova-2-conversationalai",
        "nova",
        "enhanced",
        "base",
    }
)
MODEL_UUID = "1abfe86b-e047-4eed-858a-35e5625b41ee"
NET_0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)


def results_message(
    transcript: str,
    *,
    is_final: bool,
    speech_final: bool = False,
    from_finalize: bool = False,
    start: float = 0.0,
    duration: float = 0.0,
    request_id: str = "",
    confidence: float = 0.98,
) -> dict[str, Any]:
    """A ``Results`` message in Deepgram's shape."""
    tokens = transcript.split()
    step = duration / len(tokens) if tokens else 0.0
    words = [
        {
            "word": token.strip(".,!?;:").lower(),
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
            "confidence": confidence,
            "punctuated_word": token,
        }
        for i, token in enumerate(tokens)
    ]
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(duration, 3),
        "start": round(start, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript,
                    "confidence": confidence if tokens else 0.0,
                    "words": words,
                }
            ]
        },
        "metadata": {
            "request_id": request_id,
            "model_info": {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"},
            "model_uuid": MODEL_UUID,
        },
        "from_finalize": from_finalize,
    }


@dataclass
class ListenSession:
    """What one client connection sent."""

    query: list[tuple[str, str]]
    headers: dict[str, str]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    audio: bytearray = field(default_factory=bytearray)
    #: JSON text messages from the client, in order
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: ``Results``/``Metadata``/... the server sent, in order
    sent: list[dict[str, Any]] = field(default_factory=list)
    #: "client" (socket closed), "close_stream", "server" (dropped/timed out)
    closed_by: str | None = None
    close_code: int | None = None

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    @property
    def controls(self) -> list[str]:
        return [str(m.get("type")) for m in self.messages]

    @property
    def keepalives(self) -> int:
        return self.controls.count("KeepAlive")


@dataclass
class _Utterance:
    words: list[str] | None = None
    heard_ms: int = 0
    finalized: int = 0
    in_speech: bool = False
    silence_ms: int = 0
    since_final_ms: int = 0
    start_ms: int = 0


@dataclass
class _Conn:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    session: ListenSession
    sample_rate: int
    interim: bool
    endpointing_ms: int | None
    vad_events: bool
    actions: asyncio.Queue[Callable[[], Awaitable[None]]] = field(default_factory=asyncio.Queue)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: bytearray = field(default_factory=bytearray)
    stream_ms: int = 0
    utterance: _Utterance = field(default_factory=_Utterance)
    drop_at_ms: int | None = None
    closed: bool = False


class FakeDeepgram:
    """Scriptable Deepgram live server; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "dg-fake-key",
        words_per_second: float = 4.0,
        interim_every: float = 0.1,
        speech_level: float = 500.0,
        idle_timeout: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.url = ""
        self.words_per_second = words_per_second
        self.interim_every = interim_every
        self.speech_level = speech_level
        self.idle_timeout = idle_timeout
        self.default_text: str | None = None
        self.final_every_words = 0
        self.ignore_finalize = False
        self._lock = threading.Lock()
        self._utterances: list[str] = []
        self._sessions: list[ListenSession] = []
        self._rejections: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self._handshake_stalls: list[float] = []
        self._conn: _Conn | None = None
        self._drop_after_ms: int | None = None
        self._drop_reason: tuple[int, str] = (1011, "internal server error")

    # --- observations --------------------------------------------------------------
    @property
    def sessions(self) -> list[ListenSession]:
        with self._lock:
            return list(self._sessions)

    @property
    def session(self) -> ListenSession:
        sessions = self.sessions
        if not sessions:
            raise AssertionError("no client has connected to the fake Deepgram")
        return sessions[-1]

    @property
    def connected(self) -> bool:
        """A client is connected right now."""
        with self._lock:
            return self._conn is not None and not self._conn.closed

    async def wait_for(self, condition: Callable[[], bool], within: float = 3.0) -> None:
        """Wait (in the test's loop) until ``condition()`` holds."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("fake Deepgram: condition not met in time")
            await asyncio.sleep(0.01)

    # --- scripting (from the test's thread) ---------------------------------------------
    def enqueue_utterances(self, *texts: str) -> None:
        with self._lock:
            self._utterances.extend(texts)

    def reject_next(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Refuse the next handshake with an HTTP ``status``, Deepgram's JSON error
        body and ``headers``."""
        codes = {401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 429: "TOO_MANY_REQUESTS"}
        body = {
            "err_code": codes.get(status, "Bad Request" if status < 500 else "INTERNAL"),
            "err_msg": message or f"scripted {status}",
            "request_id": str(uuid.uuid4()),
        }
        with self._lock:
            self._rejections.append((status, body, dict(headers or {})))

    def stall_next_handshake(self, seconds: float) -> None:
        """Leave the next websocket upgrade unanswered for ``seconds`` (ended early
        when the client hangs up), then go on as usual."""
        with self._lock:
            self._handshake_stalls.append(seconds)

    def drop(self, code: int = 1011, reason: str = "internal server error") -> None:
        """Close the current connection from the server side, now."""

        async def close(conn: _Conn) -> None:
            await self._close(conn, code, reason, "server")

        self._schedule(close)

    def drop_after_audio(
        self, seconds: float, code: int = 1011, reason: str = "internal server error"
    ) -> None:
        """Drop the next (or current) connection once it has sent ``seconds`` of audio."""
        with self._lock:
            self._drop_after_ms = int(seconds * 1000)
            self._drop_reason = (code, reason)
            if self._conn is not None:
                self._conn.drop_at_ms = self._drop_after_ms

    def send(self, message: dict[str, Any]) -> None:
        """Send any raw server message on the current connection."""

        async def emit(conn: _Conn) -> None:
            await self._emit(conn, message)

        self._schedule(emit)

    def _schedule(self, action: Callable[[_Conn], Awaitable[None]]) -> None:
        with self._lock:
            conn = self._conn
        if conn is None or conn.closed:
            raise AssertionError("no client is connected to the fake Deepgram")
        conn.loop.call_soon_threadsafe(conn.actions.put_nowait, lambda: action(conn))

    # --- server ------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute("/v1/listen", self._endpoint)])

    async def _endpoint(self, ws: WebSocket) -> None:
        session = ListenSession(query=list(ws.query_params.multi_items()), headers=dict(ws.headers))
        with self._lock:
            self._sessions.append(session)
            rejection = self._rejections.pop(0) if self._rejections else None
            stall = self._handshake_stalls.pop(0) if self._handshake_stalls else None
        if stall is not None and await upgrade_left_unanswered(ws, stall):
            return
        if rejection is None:
            problem = self._handshake_problem(ws, session)
            rejection = None if problem is None else (*problem, {})
        if rejection is not None:
            status, body, headers = rejection
            await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
            return
        await ws.accept(headers=[(b"dg-request-id", session.request_id.encode())])
        endpointing = session.param("endpointing") or "10"
        conn = _Conn(
            ws=ws,
            loop=asyncio.get_running_loop(),
            session=session,
            sample_rate=int(session.param("sample_rate") or 16000),
            interim=session.param("interim_results") == "true",
            endpointing_ms=int(endpointing) if endpointing.isdigit() else None,
            vad_events=session.param("vad_events") == "true",
        )
        with self._lock:
            self._conn = conn
            conn.drop_at_ms = self._drop_after_ms
            self._drop_after_ms = None
        actions = asyncio.create_task(self._run_actions(conn))
        try:
            await self._receive(conn)
        finally:
            conn.closed = True
            actions.cancel()

    def _handshake_problem(
        self, ws: WebSocket, session: ListenSession
    ) -> tuple[int, dict[str, Any]] | None:
        def bad(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
            return status, {"err_code": code, "err_msg": message, "request_id": session.request_id}

        if self.api_key is not None:
            scheme, _, key = ws.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "token" or key != self.api_key:
                return bad(401, "INVALID_AUTH", "Invalid credentials.")
        model = session.param("model") or "base"
        if model not in MODELS:
            return bad(400, "Bad Request", f"No such model/language/tier combination: {model}")
        if session.param("encoding") and not session.param("sample_rate"):
            return bad(400, "Bad Request", "sample_rate is required with encoding")
        if session.params("keyterm") and not model.startswith("nova-3"):
            return bad(400, "Bad Request", "Keyterm Prompting is only available for Nova-3.")
        return None

    async def _run_actions(self, conn: _Conn) -> None:
        while True:
            action = await conn.actions.get()
            await action()

    async def _receive(self, conn: _Conn) -> None:
        while not conn.closed:
            try:
                message = await asyncio.wait_for(conn.ws.receive(), self.idle_timeout)
            except TimeoutError:
                await self._close(conn, 1011, NET_0001, "server")
                return
            except (WebSocketDisconnect, RuntimeError):
                break
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                await self._on_audio(conn, message["bytes"])
            elif message.get("text") is not None:
                await self._on_text(conn, message["text"])
        if conn.session.closed_by is None:
            conn.session.closed_by = "client"

    async def _emit(self, conn: _Conn, message: dict[str, Any]) -> None:
        if conn.closed:
            return
        conn.session.sent.append(message)
        async with conn.send_lock:
            try:
                await conn.ws.send_text(json.dumps(message))
            except (RuntimeError, WebSocketDisconnect):
                conn.closed = True

    async def _close(self, conn: _Conn, code: int, reason: str, by: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.session.closed_by = by
        conn.session.close_code = code
        async with conn.send_lock:
            try:
                await conn.ws.close(code=code, reason=reason)
            except RuntimeError:
                pass

    # --- protocol ------------------------------------------------------------------------
    async def _on_text(self, conn: _Conn, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = {"type": "<not json>"}
        if not isinstance(message, dict):
            message = {"type": "<not an object>"}
        conn.session.messages.append(message)
        kind = message.get("type")
        if kind == "Finalize":
            await self._finalize(conn)
        elif kind == "CloseStream":
            await self._close_stream(conn)

    async def _on_audio(self, conn: _Conn, data: bytes) -> None:
        conn.session.audio += data
        conn.pending += data
        frame_bytes = conn.sample_rate * 2 // 50
        while len(conn.pending) >= frame_bytes and not conn.closed:
            frame = np.frombuffer(bytes(conn.pending[:frame_bytes]), dtype="<i2")
            del conn.pending[:frame_bytes]
            rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
            await self._on_frame(conn, rms >= self.speech_level)
            if conn.drop_at_ms is not None and conn.stream_ms >= conn.drop_at_ms:
                code, reason = self._drop_reason
                await self._close(conn, code, reason, "server")

    async def _on_frame(self, conn: _Conn, speech: bool) -> None:
        utt = conn.utterance
        conn.stream_ms += 20
        utt.since_final_ms += 20
        if speech:
            if utt.words is None:
                utt.words = self._next_words()
                utt.start_ms = conn.stream_ms - 20
            if not utt.in_speech:
                utt.in_speech = True
                if conn.vad_events:
                    started = {
                        "type": "SpeechStarted",
                        "channel": [0],
                        "timestamp": (conn.stream_ms - 20) / 1000,
                    }
                    await self._emit(conn, started)
            utt.silence_ms = 0
            utt.heard_ms += 20
            interim_ms = max(20, int(self.interim_every * 1000))
            if conn.interim and utt.heard_ms % interim_ms < 20:
                await self._interim(conn)
        elif utt.in_speech:
            utt.silence_ms += 20
            if conn.endpointing_ms is not None and utt.silence_ms >= conn.endpointing_ms:
                utt.in_speech = False
                heard = self._heard(utt)
                if heard > utt.finalized:
                    await self._segment(conn, heard, speech_final=True)

    def _next_words(self) -> list[str]:
        with self._lock:
            text = self._utterances.pop(0) if self._utterances else self.default_text
        return text.split() if text else []

    def _heard(self, utt: _Utterance) -> int:
        words = utt.words or []
        return min(len(words), int(utt.heard_ms / 1000 * self.words_per_second) + 1)

    async def _interim(self, conn: _Conn) -> None:
        utt = conn.utterance
        heard = self._heard(utt)
        if heard <= utt.finalized:
            return
        words = (utt.words or [])[utt.finalized : heard]
        await self._emit(
            conn,
            results_message(
                " ".join(words),
                is_final=False,
                start=utt.start_ms / 1000,
                duration=(conn.stream_ms - utt.start_ms) / 1000,
                request_id=conn.session.request_id,
                confidence=0.9,
            ),
        )
        if self.final_every_words and heard - utt.finalized >= self.final_every_words:
            await self._segment(conn, heard, speech_final=False)

    async def _segment(
        self, conn: _Conn, upto: int, *, speech_final: bool, from_finalize: bool = False
    ) -> None:
        utt = conn.utterance
        words = (utt.words or [])[utt.finalized : upto]
        await self._emit(
            conn,
            results_message(
                " ".join(words),
                is_final=True,
                speech_final=speech_final,
                from_finalize=from_finalize,
                start=utt.start_ms / 1000,
                duration=(conn.stream_ms - utt.start_ms) / 1000,
                request_id=conn.session.request_id,
            ),
        )
        utt.finalized = upto
        utt.start_ms = conn.stream_ms
        utt.since_final_ms = 0

    async def _finalize(self, conn: _Conn) -> None:
        utt = conn.utterance
        if self.ignore_finalize or utt.since_final_ms < 100:
            return  # nothing buffered worth answering
        await self._segment(conn, len(utt.words or []), speech_final=False, from_finalize=True)
        conn.utterance = _Utterance(start_ms=conn.stream_ms)

    async def _close_stream(self, conn: _Conn) -> None:
        utt = conn.utterance
        heard = self._heard(utt) if utt.words else 0
        if heard > utt.finalized:
            await self._segment(conn, heard, speech_final=True)
        metadata = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": conn.session.request_id,
            "sha256": "",
            "created": datetime.now(UTC).isoformat(),
            "duration": conn.stream_ms / 1000,
            "channels": 1,
            "models": [MODEL_UUID],
            "model_info": {
                MODEL_UUID: {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}
            },
        }
        await self._emit(conn, metadata)
        await self._close(conn, 1000, "", "close_stream")


@pytest.fixture
def fake_deepgram() -> Iterator[FakeDeepgram]:
    """A fresh fake per test; ``.url`` is the ``/v1/listen`` websocket URL."""
    fake = FakeDeepgram()
    with serve(fake.app()) as srv:
        fake.url = f"{srv.ws_url}/v1/listen"
        yield fake
