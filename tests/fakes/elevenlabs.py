"""A local ElevenLabs text-to-speech server speaking the documented wire protocol:
the ``stream-input`` websocket, streaming HTTP and the voice list.

Usage (import the fixture into a test module or ``conftest.py`` with
``from tests.fakes.elevenlabs import fake_elevenlabs  # noqa: F401``)::

    async def test_agent_speaks(fake_elevenlabs: FakeElevenLabs) -> None:
        tts = ElevenLabsTTS(api_key=fake_elevenlabs.api_key, voice_id=fake_elevenlabs.voice_id,
                            base_url=fake_elevenlabs.url)
        fake_elevenlabs.plan.chunk_delay = 0.01        # stream slowly
        fake_elevenlabs.faults.fail_next(429)          # refuse the next request/handshake
        fake_elevenlabs.faults.stall_next(2.0)         # pause before the next audio
        fake_elevenlabs.faults.drop_next(after_bytes=4800)  # cut the connection mid-audio
        fake_elevenlabs.close_next(1011, "internal error", after_bytes=3000)  # close frame
        ...
        session = fake_elevenlabs.session              # the last websocket
        assert session.query["model_id"] == "eleven_flash_v2_5"
        assert session.messages[0] == {"text": " "}
        req = fake_elevenlabs.requests_to("/stream")[-1]  # the last HTTP synthesis

``.url`` is the base URL (``http://127.0.0.1:<port>``; the client derives
``ws://`` from it). What it checks and answers, after the ElevenLabs API
reference (AsyncAPI ``/v1/text-to-speech/{voice_id}/stream-input``, "Stream
speech", "List voices"):

* Auth: ``xi-api-key`` header. A wrong header key is refused with 401 and
  ``{"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}``
  (the HTTP error body; on the websocket, as the handshake answer). Without
  the header the websocket's first message must carry ``xi-api-key``
  (``xi_api_key`` is accepted too, as in the documented example).
* Query: ``model_id`` must be a known model, ``output_format`` one of the
  documented values (this fake only produces the ``pcm_<rate>`` ones),
  ``language_code`` only with Turbo v2.5 / Flash v2.5 ("for other models, an
  error will be returned"), as ISO 639-1. Problems: 400 (HTTP and handshake).
* Websocket messages: the first must be ``{"text": " "}`` (+ ``voice_settings``,
  ``generation_config``); ``voice_settings`` may not change afterwards
  (close 1008 with ElevenLabs' own reason text). Text is buffered; audio for
  the buffer is generated when it reaches the next ``chunk_length_schedule``
  step (default ``[120, 160, 250, 290]``), on ``flush: true``, or on the final
  ``{"text": ""}``, which is answered with ``{"isFinal": true}`` and a normal
  close. Audio messages are ``{"audio": <base64 PCM>, "isFinal": false,
  "normalizedAlignment", "alignment"}`` (alignment on the first chunk of
  each generation). An unknown voice is answered with an error message and
  close 1008; ``inactivity_timeout`` seconds without a message close with 1008
  and ElevenLabs' timeout text.
* HTTP ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000``:
  ``{"text", "model_id", "voice_settings", "language_code"}`` → the PCM body,
  streamed. Unknown voice 404, bad body 400 (``detail`` objects).
* ``GET /v1/voices`` → ``{"voices": [...]}`` from :attr:`FakeElevenLabs.voices`.

Audio is :func:`~tests.fakes.speech_audio.speech_like_pcm` of the generated
text at the requested rate, streamed in ``plan.chunk_bytes`` pieces.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.server import serve
from tests.fakes.speech_audio import (
    AudioStreamResponse,
    DroppedByFake,
    Faults,
    RecordedRequest,
    StreamLog,
    StreamPlan,
    speech_like_pcm,
    stream_audio,
)

__all__ = ["FakeElevenLabs", "InputSession", "fake_elevenlabs"]

MODELS = frozenset(
    {
        "eleven_flash_v2_5",
        "eleven_turbo_v2_5",
        "eleven_multilingual_v2",
        "eleven_v3",
        "eleven_monolingual_v1",
        "eleven_flash_v2",
        "eleven_turbo_v2",
    }
)
#: "Currently only Turbo v2.5 and Flash v2.5 support language enforcement"
LANGUAGE_MODELS = frozenset({"eleven_turbo_v2_5", "eleven_flash_v2_5"})
PCM_RATES = {f"pcm_{rate}": rate for rate in (8000, 16000, 22050, 24000, 44100)}
OTHER_FORMATS = frozenset(
    {
        "mp3_22050_32",
        "mp3_44100_32",
        "mp3_44100_64",
        "mp3_44100_96",
        "mp3_44100_128",
        "mp3_44100_192",
        "ulaw_8000",
        "alaw_8000",
        "opus_48000_32",
        "opus_48000_64",
        "opus_48000_96",
        "opus_48000_128",
        "opus_48000_192",
    }
)
DEFAULT_SCHEDULE = (120, 160, 250, 290)
VOICE_SETTINGS_CHANGED = (
    "voice_settings field must be provided in the first message and then either be not "
    "provided or not change."
)
INACTIVITY = (
    "Have not received a new text input within the timeout of {seconds:g} seconds. Streaming "
    "input terminated. Please make sure to either feed the input in the timely manner, or to "
    'send the end of input text (empty string "") when done.'
)


def detail(status: str, message: str) -> dict[str, Any]:
    """ElevenLabs' HTTP error body."""
    return {"detail": {"status": status, "message": message}}


def _voice(voice_id: str, name: str, gender: str, accent: str, language: str) -> dict[str, Any]:
    return {
        "voice_id": voice_id,
        "name": name,
        "category": "premade",
        "labels": {"accent": accent, "gender": gender, "age": "middle_aged", "language": language},
        "verified_languages": [{"language": language, "model_id": "eleven_multilingual_v2"}],
        "fine_tuning": {"language": None},
        "preview_url": f"https://storage.example/{voice_id}.mp3",
    }


def default_voices() -> list[dict[str, Any]]:
    return [
        _voice("21m00Tcm4TlvDq8ikWAM", "Rachel", "female", "american", "en"),
        _voice("JBFqnCBsd6RMkjVDRZzb", "George", "male", "british", "en"),
        {  # a cloned voice with only a fine-tuning language and no labels
            "voice_id": "cl0nedVoice000000001",
            "name": "Front desk (clone)",
            "category": "cloned",
            "labels": {},
            "verified_languages": [],
            "fine_tuning": {"language": "nl"},
        },
    ]


@dataclass
class InputSession:
    """What one ``stream-input`` websocket carried."""

    voice_id: str
    query: dict[str, str]
    headers: dict[str, str]
    #: the client's JSON messages, in order
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: texts the fake generated audio for, in order
    generations: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    #: "client", "server" (a close frame), "dropped" (TCP aborted), "final"
    closed_by: str | None = None
    close_code: int | None = None


@dataclass
class _Conn:
    ws: WebSocket
    session: InputSession
    rate: int
    schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    step: int = 0
    buffer: str = ""
    voice_settings: Any = None
    started: bool = False


class FakeElevenLabs:
    """Scriptable ElevenLabs server; see the module docstring."""

    def __init__(
        self, *, api_key: str | None = "xi-fake-elevenlabs-key", seconds_per_char: float = 0.05
    ) -> None:
        self.api_key = api_key
        self.url = ""
        self.seconds_per_char = seconds_per_char
        self.voices: list[dict[str, Any]] = default_voices()
        self.plan = StreamPlan()
        self.faults = Faults()
        self.streams = StreamLog()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._sessions: list[InputSession] = []
        self._closes: list[tuple[int, str, int]] = []

    # --- observations ---------------------------------------------------------------
    @property
    def voice_id(self) -> str:
        return str(self.voices[0]["voice_id"])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    @property
    def sessions(self) -> list[InputSession]:
        with self._lock:
            return list(self._sessions)

    @property
    def session(self) -> InputSession:
        sessions = self.sessions
        if not sessions:
            raise AssertionError("no client has opened a stream-input websocket")
        return sessions[-1]

    async def wait_for(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("fake ElevenLabs: condition not met in time")
            await asyncio.sleep(0.01)

    # --- scripting ------------------------------------------------------------------------
    def close_next(self, code: int, reason: str = "", after_bytes: int = 0) -> None:
        """Close the next websocket with a close frame once ``after_bytes`` of audio went out."""
        with self._lock:
            self._closes.append((code, reason, after_bytes))

    # --- server ---------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                WebSocketRoute("/v1/text-to-speech/{voice_id}/stream-input", self._stream_input),
                Route("/v1/text-to-speech/{voice_id}/stream", self._stream, methods=["POST"]),
                Route("/v1/voices", self._list_voices, methods=["GET"]),
            ]
        )

    def _known_voice(self, voice_id: str) -> bool:
        return any(v.get("voice_id") == voice_id for v in self.voices)

    def _key_problem(self, headers: Any) -> Response | None:
        if self.api_key is None:
            return None
        if headers.get("xi-api-key") != self.api_key:
            return JSONResponse(detail("invalid_api_key", "Invalid API key"), status_code=401)
        return None

    def _record(self, request: Request, body: Any = None) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers=dict(request.headers),
            json=body,
        )
        with self._lock:
            self._requests.append(recorded)

    async def _list_voices(self, request: Request) -> Response:
        self._record(request)
        if (problem := self._key_problem(request.headers)) is not None:
            return problem
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            return JSONResponse(
                fault.body or detail("error", f"scripted {fault.status}"),
                status_code=fault.status,
            )
        return JSONResponse({"voices": self.voices})

    # --- streaming HTTP ----------------------------------------------------------------
    async def _stream(self, request: Request) -> Response | AudioStreamResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self._record(request, body)
        if (problem := self._key_problem(request.headers)) is not None:
            return problem
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            return JSONResponse(
                fault.body or detail("error", f"scripted {fault.status}"),
                status_code=fault.status,
            )
        voice_id = request.path_params["voice_id"]
        if not self._known_voice(voice_id):
            message = f"A voice with the voice_id {voice_id} was not found."
            return JSONResponse(detail("voice_not_found", message), status_code=404)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return JSONResponse(detail("invalid_request", "text is required"), status_code=400)
        output_format = request.query_params.get("output_format", "mp3_44100_128")
        params = {
            "model_id": str(body.get("model_id") or "eleven_multilingual_v2"),
            "output_format": output_format,
        }
        if body.get("language_code") is not None:
            params["language_code"] = str(body["language_code"])
        if (message := _params_problem(params)) is not None:
            return JSONResponse(detail("invalid_request", message), status_code=400)
        rate = PCM_RATES[output_format]
        pcm = speech_like_pcm(body["text"], rate, seconds_per_char=self.seconds_per_char)
        return AudioStreamResponse(stream_audio(pcm, self.plan, self.streams, fault), "audio/pcm")

    # --- stream-input websocket -----------------------------------------------------------
    async def _stream_input(self, ws: WebSocket) -> None:
        session = InputSession(
            voice_id=ws.path_params["voice_id"],
            query=dict(ws.query_params),
            headers=dict(ws.headers),
        )
        with self._lock:
            self._sessions.append(session)
            scripted_close = self._closes.pop(0) if self._closes else None
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            body = fault.body or detail("error", f"scripted {fault.status}")
            await ws.send_denial_response(JSONResponse(body, status_code=fault.status))
            return
        header_key = ws.headers.get("xi-api-key")
        if self.api_key is not None and header_key is not None and header_key != self.api_key:
            denial = JSONResponse(detail("invalid_api_key", "Invalid API key"), status_code=401)
            await ws.send_denial_response(denial)
            return
        params = {"output_format": "mp3_44100", **session.query}
        params.setdefault("model_id", "eleven_multilingual_v2")
        if (message := _params_problem(params)) is not None:
            denial = JSONResponse(detail("invalid_request", message), status_code=400)
            await ws.send_denial_response(denial)
            return
        await ws.accept()
        conn = _Conn(ws=ws, session=session, rate=PCM_RATES[params["output_format"]])
        timeout = float(session.query.get("inactivity_timeout") or 20)
        try:
            while session.closed_by is None:
                try:
                    raw = await asyncio.wait_for(ws.receive_text(), timeout)
                except TimeoutError:
                    await self._close(conn, 1008, INACTIVITY.format(seconds=timeout))
                    break
                await self._on_message(conn, raw, header_key, fault, scripted_close)
        except (WebSocketDisconnect, RuntimeError):
            pass
        if session.closed_by is None:
            session.closed_by = "client"

    async def _on_message(
        self,
        conn: _Conn,
        raw: str,
        header_key: str | None,
        fault: Any,
        scripted_close: tuple[int, str, int] | None,
    ) -> None:
        session = conn.session
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            session.messages.append({"<invalid>": raw})
            await self._fail(
                conn, "invalid_message", "Each message must be a JSON object with text."
            )
            return
        session.messages.append(message)
        if not conn.started:
            await self._begin(conn, message, header_key)
            return
        settings = message.get("voice_settings")
        if settings is not None and settings != conn.voice_settings:
            await self._close(conn, 1008, VOICE_SETTINGS_CHANGED)
            return
        text = message["text"]
        if text == "":  # end of input
            await self._generate(conn, conn.buffer, fault, scripted_close)
            conn.buffer = ""
            if session.closed_by is None:
                await conn.ws.send_text(
                    json.dumps(
                        {
                            "audio": None,
                            "isFinal": True,
                            "normalizedAlignment": None,
                            "alignment": None,
                        }
                    )
                )
                await conn.ws.close(1000)
                session.closed_by, session.close_code = "final", 1000
            return
        conn.buffer += text
        if message.get("flush"):
            buffered, conn.buffer = conn.buffer, ""
            await self._generate(conn, buffered, fault, scripted_close)
            return
        threshold = conn.schedule[min(conn.step, len(conn.schedule) - 1)]
        if len(conn.buffer) >= threshold:
            cut = conn.buffer.rfind(" ") + 1 or len(conn.buffer)
            ready, conn.buffer = conn.buffer[:cut], conn.buffer[cut:]
            conn.step += 1
            await self._generate(conn, ready, fault, scripted_close)

    async def _begin(self, conn: _Conn, message: dict[str, Any], header_key: str | None) -> None:
        conn.started = True
        if message["text"] != " ":
            await self._fail(conn, "invalid_message", "The first message must have text ' '.")
            return
        if self.api_key is not None and header_key is None:
            key = message.get("xi-api-key") or message.get("xi_api_key")
            if key != self.api_key:
                await self._fail(conn, "invalid_api_key", "Invalid API key")
                return
        if not self._known_voice(conn.session.voice_id):
            text = f"A voice with voice_id {conn.session.voice_id} does not exist."
            await self._fail(conn, "voice_not_found", text)
            return
        conn.voice_settings = message.get("voice_settings")
        config = message.get("generation_config") or {}
        schedule = config.get("chunk_length_schedule") if isinstance(config, dict) else None
        if schedule:
            conn.schedule = tuple(int(step) for step in schedule)

    async def _generate(
        self,
        conn: _Conn,
        text: str,
        fault: Any,
        scripted_close: tuple[int, str, int] | None,
    ) -> None:
        text = text.strip()
        if not text or conn.session.closed_by is not None:
            return
        conn.session.generations.append(text)
        pcm = speech_like_pcm(text, conn.rate, seconds_per_char=self.seconds_per_char)
        first = True
        chunks = stream_audio(pcm, self.plan, self.streams, fault)
        try:
            async for chunk in chunks:
                if scripted_close is not None and conn.session.audio_bytes >= scripted_close[2]:
                    await self._close(conn, scripted_close[0], scripted_close[1])
                    return
                alignment = _alignment(text) if first else None
                first = False
                message = {
                    "audio": base64.b64encode(chunk).decode("ascii"),
                    "isFinal": False,
                    "normalizedAlignment": alignment,
                    "alignment": alignment,
                }
                await conn.ws.send_text(json.dumps(message))
                conn.session.audio_bytes += len(chunk)
        except DroppedByFake:
            _abort(conn.ws)
            conn.session.closed_by = "dropped"
        finally:
            await chunks.aclose()

    async def _fail(self, conn: _Conn, error: str, message: str) -> None:
        """An error message, then close 1008 (how the service reports a refused request)."""
        payload = {"message": message, "error": error, "code": 1008}
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await conn.ws.send_text(json.dumps(payload))
        await self._close(conn, 1008, message[:120])

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        if conn.session.closed_by is not None:
            return
        conn.session.closed_by, conn.session.close_code = "server", code
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await conn.ws.close(code, reason[:120])


def _params_problem(params: dict[str, str]) -> str | None:
    model = params["model_id"]
    if model not in MODELS:
        return f"A model with model ID {model} does not exist."
    output_format = params["output_format"]
    if output_format not in PCM_RATES:
        if output_format in OTHER_FORMATS or output_format == "mp3_44100":
            return f"the fake ElevenLabs only produces pcm_* formats, not {output_format}"
        return f"Invalid output format: {output_format}"
    language = params.get("language_code")
    if language is not None:
        if model not in LANGUAGE_MODELS:
            return f"Model {model} does not support the language_code parameter."
        if len(language) != 2 or not language.isalpha() or not language.islower():
            return f"language_code must be an ISO 639-1 code, got {language!r}"
    return None


def _alignment(text: str, ms_per_char: int = 50) -> dict[str, Any]:
    chars = list(text)
    return {
        "chars": chars,
        "charStartTimesMs": [i * ms_per_char for i in range(len(chars))],
        "charsDurationsMs": [ms_per_char] * len(chars),
    }


def _abort(ws: WebSocket) -> None:
    """Cut the TCP connection without a close frame (a dropped connection)."""
    protocol = getattr(ws._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is None:
        raise RuntimeError("cannot reach the websocket transport to drop it")
    transport.abort()


@pytest.fixture
def fake_elevenlabs() -> Iterator[FakeElevenLabs]:
    """A fresh fake per test; ``.url`` is the base URL, ``.api_key`` the key."""
    fake = FakeElevenLabs()
    with serve(fake.app()) as srv:
        fake.url = srv.url
        yield fake
