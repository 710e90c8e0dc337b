"""A local Cartesia API: ``POST /tts/bytes`` (streamed raw PCM) and ``GET /voices``,
at their documented wire shapes.

Usage (the fixture is imported by ``tests/providers/speech_vendors/conftest.py``;
elsewhere ``from tests.fakes.cartesia import fake_cartesia  # noqa: F401``)::

    async def test_agent_speaks(fake_cartesia: FakeCartesia) -> None:
        tts = CartesiaTTS(api_key=fake_cartesia.api_key, voice_id=fake_cartesia.voice_id,
                          base_url=fake_cartesia.url)
        fake_cartesia.plan.chunk_delay = 0.01          # stream slowly
        fake_cartesia.faults.fail_next(429)            # next request gets a 429
        fake_cartesia.faults.stall_next(2.0)           # then one that stalls 2 s
        fake_cartesia.faults.drop_next(after_bytes=4800)  # abort mid-body
        ...
        req = fake_cartesia.requests_to("/tts/bytes")[-1]
        assert req.json["voice"] == {"mode": "id", "id": fake_cartesia.voice_id}

``.url`` is the base URL (``http://127.0.0.1:<port>``). What it checks, after
Cartesia's API reference ("Text to Speech (Bytes)", "List Voices", "API
conventions", "API Errors"):

* ``Cartesia-Version`` is required and must be a published version
  (``2024-06-10``, ``2024-11-13``, ``2025-04-16``, ``2026-03-01``).
* Auth: ``Authorization: Bearer <key>`` (current) or ``X-API-Key`` (the
  older scheme); a wrong or missing key is 401.
* Errors: from ``2026-03-01`` on, JSON ``{"error_code", "title", "message",
  "request_id"}``; older versions answer plain text ``Title: Message``.
* ``/tts/bytes`` body: ``model_id`` (a Sonic model), non-empty
  ``transcript``, ``voice: {"mode": "id", "id"}`` (unknown id → 404),
  ``output_format: {"container": "raw", "encoding", "sample_rate"}`` (rates
  8000–48000; this fake produces only ``pcm_s16le``), optional ``language``
  from the documented list. The answer streams speech-like PCM at the asked
  rate (see :mod:`tests.fakes.speech_audio`).
* ``/voices``: ``2024-06-10`` answers a bare array; later versions page with
  ``limit`` (≤ 100, default 10) and ``starting_after`` and answer
  ``{"data", "has_more", "next_page"}``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve
from tests.fakes.speech_audio import (
    AudioStreamResponse,
    Faults,
    RecordedRequest,
    StreamLog,
    StreamPlan,
    speech_like_pcm,
    stream_audio,
)

__all__ = ["FakeCartesia", "fake_cartesia"]

VERSIONS = frozenset({"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01"})
JSON_ERRORS_SINCE = "2026-03-01"
MODELS = frozenset(
    {"sonic", "sonic-2", "sonic-turbo", "sonic-3", "sonic-english", "sonic-multilingual"}
)
RATES = frozenset({8000, 16000, 22050, 24000, 44100, 48000})
ENCODINGS = frozenset({"pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"})
LANGUAGES = frozenset(
    {
        "en",
        "fr",
        "de",
        "es",
        "pt",
        "zh",
        "ja",
        "hi",
        "it",
        "ko",
        "nl",
        "pl",
        "ru",
        "sv",
        "tr",
        "tl",
        "bg",
        "ro",
        "ar",
        "cs",
        "el",
        "fi",
        "hr",
        "ms",
        "sk",
        "da",
        "ta",
        "uk",
        "hu",
        "no",
        "vi",
        "bn",
        "th",
        "he",
        "ka",
        "id",
        "te",
        "gu",
        "kn",
        "ml",
        "mr",
        "pa",
    }
)
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _voice(voice_id: str, name: str, language: str, gender: str | None) -> dict[str, Any]:
    voice: dict[str, Any] = {
        "id": voice_id,
        "name": name,
        "description": f"{name}, a stock voice",
        "is_owner": False,
        "is_public": True,
        "language": language,
        "created_at": "2025-01-01T00:00:00Z",
    }
    if gender is not None:
        voice["gender"] = gender
    return voice


def default_voices() -> list[dict[str, Any]]:
    return [
        _voice("694f9389-aac1-45b6-b726-9d9369183238", "Sarah", "en", "feminine"),
        _voice("a0e99841-438c-4a64-b679-ae501e7d6091", "Barbershop Man", "en", "masculine"),
        _voice("e07c00bc-4134-4eae-9ea4-1a55fb45746b", "Dutch Narrator", "nl", "gender_neutral"),
    ]


class FakeCartesia:
    """Scriptable Cartesia server; see the module docstring."""

    def __init__(
        self, *, api_key: str | None = "sk_car_fake_key", seconds_per_char: float = 0.05
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

    # --- observations ---------------------------------------------------------------
    @property
    def voice_id(self) -> str:
        return str(self.voices[0]["id"])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # --- server ---------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/tts/bytes", self._tts_bytes, methods=["POST"]),
                Route("/voices", self._list_voices, methods=["GET"]),
            ]
        )

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

    def _gate(self, request: Request) -> tuple[str, Response | None]:
        """(version, refusal): the checks every endpoint makes first."""
        version = request.headers.get("cartesia-version", "")
        if version not in VERSIONS:
            message = f"Invalid or missing Cartesia-Version header: {version!r}"
            return "", _error("", 400, message, "invalid_version")
        if self.api_key is None:
            return version, None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = token if scheme.lower() == "bearer" else None
        header = request.headers.get("x-api-key")
        if bearer is None and header is None:
            return version, _error(version, 401, "No API key was provided.", "missing_api_key")
        if (bearer is not None and bearer != self.api_key) or (
            header is not None and header != self.api_key
        ):
            return version, _error(version, 401, "Invalid API key.", "invalid_api_key")
        return version, None

    async def _tts_bytes(self, request: Request) -> Response | AudioStreamResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self._record(request, body)
        version, refusal = self._gate(request)
        if refusal is not None:
            return refusal
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            if fault.body is not None:
                return JSONResponse(fault.body, status_code=fault.status)
            return _error(version, fault.status, f"scripted {fault.status}", None)
        if not isinstance(body, dict):
            return _error(version, 400, "The request body must be a JSON object.", "bad_request")
        if (problem := self._body_problem(body)) is not None:
            status, message = problem
            return _error(version, status, message, "invalid_request")
        rate = int(body["output_format"]["sample_rate"])
        pcm = speech_like_pcm(body["transcript"], rate, seconds_per_char=self.seconds_per_char)
        return AudioStreamResponse(stream_audio(pcm, self.plan, self.streams, fault), "audio/pcm")

    def _body_problem(self, body: dict[str, Any]) -> tuple[int, str] | None:
        if body.get("model_id") not in MODELS:
            return 400, f"Invalid model_id: {body.get('model_id')!r}"
        transcript = body.get("transcript")
        if not isinstance(transcript, str) or not transcript.strip():
            return 400, "transcript must be a non-empty string"
        voice = body.get("voice")
        if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
            return 400, 'voice must be {"mode": "id", "id": "<voice id>"}'
        if not any(v["id"] == voice["id"] for v in self.voices):
            return 404, f"Voice not found: {voice['id']}"
        fmt = body.get("output_format")
        if not isinstance(fmt, dict):
            return 400, "output_format is required"
        if fmt.get("container") != "raw":
            return 400, "the fake Cartesia only produces the raw container"
        if fmt.get("encoding") not in ENCODINGS:
            return 400, f"Invalid encoding: {fmt.get('encoding')!r}"
        if fmt.get("encoding") != "pcm_s16le":
            return 400, "the fake Cartesia only produces pcm_s16le"
        if fmt.get("sample_rate") not in RATES:
            return 400, f"Invalid sample_rate: {fmt.get('sample_rate')!r}"
        language = body.get("language")
        if language is not None and language not in LANGUAGES:
            return 400, f"Invalid language: {language!r}"
        return None

    async def _list_voices(self, request: Request) -> Response:
        self._record(request)
        version, refusal = self._gate(request)
        if refusal is not None:
            return refusal
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            return _error(version, fault.status, f"scripted {fault.status}", None)
        if version == "2024-06-10":
            return JSONResponse(self.voices)
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(version, 400, "limit must be between 1 and 100", "invalid_request")
        start = 0
        after = request.query_params.get("starting_after")
        if after:
            ids = [v["id"] for v in self.voices]
            if after not in ids:
                return _error(version, 400, f"Unknown cursor: {after}", "invalid_request")
            start = ids.index(after) + 1
        page = self.voices[start : start + limit]
        has_more = start + limit < len(self.voices)
        next_page = page[-1]["id"] if has_more and page else None
        return JSONResponse({"data": page, "has_more": has_more, "next_page": next_page})


def _error(version: str, status: int, message: str, code: str | None) -> Response:
    title = _TITLES.get(status, "Error")
    if version >= JSON_ERRORS_SINCE:
        body = {
            "error_code": code,
            "title": title,
            "message": message,
            "request_id": str(uuid.uuid4()),
        }
        return JSONResponse(body, status_code=status)
    return PlainTextResponse(f"{title}: {message}", status_code=status)


@pytest.fixture
def fake_cartesia() -> Iterator[FakeCartesia]:
    """A fresh fake per test; ``.url`` is the base URL, ``.api_key`` the key."""
    fake = FakeCartesia()
    with serve(fake.app()) as srv:
        fake.url = srv.url
        yield fake
