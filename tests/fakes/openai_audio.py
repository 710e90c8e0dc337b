"""A local OpenAI audio server: ``/audio/speech`` (streamed PCM) and
``/audio/transcriptions`` (multipart WAV in, JSON out), at their real wire shapes.

Usage (import the fixture into your package's ``conftest.py`` with
``from tests.fakes.openai_audio import fake_openai_audio  # noqa: F401``)::

    async def test_agent_speaks(fake_openai_audio: FakeOpenAIAudio) -> None:
        tts = OpenAITTS(api_key=fake_openai_audio.api_key, base_url=fake_openai_audio.url)
        fake_openai_audio.plan.chunk_delay = 0.01      # stream slowly
        fake_openai_audio.faults.fail_next(429)        # next request gets a 429
        fake_openai_audio.faults.stall_next(2.0)       # then one that stalls 2 s
        fake_openai_audio.faults.drop_next(after_bytes=4800)  # abort mid-body
        fake_openai_audio.faults.fail_next(429, headers={"Retry-After": "20"})
        ...
        stt = OpenAITranscriptionSTT(api_key=..., base_url=fake_openai_audio.url)
        fake_openai_audio.enqueue_transcripts("I'd like to book a table.")
        # or: fake_openai_audio.responder = lambda req: "yes" if ... else None
        ...
        req = fake_openai_audio.requests_to("/audio/speech")[-1]
        assert req.json["voice"] == "alloy"
        assert fake_openai_audio.streams.disconnected == 1   # the client hung up

Transcriptions take the same faults: a status (with ``headers``), a stall of
the JSON answer (before it, or after ``after_bytes`` of it; ended early when
the client hangs up) or a drop after ``after_bytes`` of it.

``.url`` is the base URL (``http://127.0.0.1:<port>/v1``). Speech is a
speech-like 24 kHz s16le signal whose length is proportional to the input
(``seconds_per_char``), streamed in ``plan.chunk_bytes`` pieces (odd on purpose)
``plan.chunk_delay`` apart. Transcriptions answer from the queue, then
``responder``, then ``default_transcript``; each request's audio is kept
(``req.files["file"]``, and :meth:`FakeOpenAIAudio.transcribed_pcm`).

Refused like the real API: a wrong or missing ``Authorization: Bearer`` (401),
unknown model or voice, empty or over-long input, ``instructions`` with the
``tts-1`` models, a file that is not audio, audio under 0.1 s (400).
Formats other than ``pcm``/``wav`` get a 400 from this fake (it makes no mp3).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.openai_chat import error_body
from tests.fakes.server import serve
from tests.fakes.speech_audio import (
    AudioStreamResponse,
    DroppedByFake,
    Fault,
    Faults,
    RecordedRequest,
    StreamLog,
    StreamPlan,
    speech_like_pcm,
    stream_audio,
)

__all__ = ["FakeOpenAIAudio", "fake_openai_audio", "parse_multipart"]

SPEECH_RATE = 24_000
TTS_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"})
STT_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-transcribe",
    }
)
VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)

Responder = Callable[[RecordedRequest], str | None]


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """``multipart/form-data`` → (fields, files) — byte-exact, stdlib only."""
    boundary = content_type.partition("boundary=")[2].strip().strip('"')
    if not boundary:
        raise ValueError("no multipart boundary")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params = _disposition(headers.get("content-disposition", ""))
        if "filename" in params:
            kind = headers.get("content-type", "application/octet-stream")
            files[params.get("name", "")] = (params["filename"], kind, content)
        else:
            fields[params.get("name", "")] = content.decode("utf-8", "replace")
    return fields, files


def _disposition(value: str) -> dict[str, str]:
    params = {}
    for item in value.split(";")[1:]:
        key, _, raw = item.strip().partition("=")
        params[key.lower()] = raw.strip().strip('"')
    return params


def _wav_pcm(data: bytes) -> tuple[bytes, int]:
    """(PCM frames, sample rate) of a WAV file; ValueError when it is not one."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(str(exc)) from exc


def _wav_file(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def _invalid(message: str, param: str | None = None) -> JSONResponse:
    body = error_body(400, message)
    body["error"]["param"] = param
    return JSONResponse(body, status_code=400)


class FakeOpenAIAudio:
    """Scriptable OpenAI audio server; see the module docstring."""

    def __init__(
        self, *, api_key: str | None = "sk-fake-audio", seconds_per_char: float = 0.05
    ) -> None:
        self.api_key = api_key
        self.url = ""
        self.seconds_per_char = seconds_per_char
        self.plan = StreamPlan()
        self.faults = Faults()
        self.streams = StreamLog()
        self.default_transcript = "Hello, I'd like some help please."
        self.responder: Responder | None = None
        self._lock = threading.Lock()
        self._transcripts: list[str] = []
        self._requests: list[RecordedRequest] = []

    # --- observations ----------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path)]

    def transcribed_pcm(self, index: int = -1) -> tuple[bytes, int]:
        """(PCM, rate) of the WAV sent in a transcription request."""
        _, _, data = self.requests_to("/audio/transcriptions")[index].files["file"]
        return _wav_pcm(data)

    # --- scripting -------------------------------------------------------------------
    def enqueue_transcripts(self, *texts: str) -> None:
        with self._lock:
            self._transcripts.extend(texts)

    # --- server ------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            ]
        )

    def _record(self, request: Request, **fields: Any) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers=dict(request.headers),
            **fields,
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _auth_problem(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            message = "Incorrect API key provided. You can find your API key at the dashboard."
            return JSONResponse(error_body(401, message), status_code=401)
        return None

    async def _speech(self, request: Request) -> Response | AudioStreamResponse:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(request, json=body)
        if (problem := self._auth_problem(request)) is not None:
            return problem
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            return _fault_response(fault)
        if not isinstance(body, dict):
            return _invalid("We could not parse the JSON body of your request.")
        if (problem := _speech_problem(body)) is not None:
            return problem
        fmt = body.get("response_format", "mp3")
        pcm = speech_like_pcm(
            str(body["input"]), SPEECH_RATE, seconds_per_char=self.seconds_per_char
        )
        audio = _wav_file(pcm, SPEECH_RATE) if fmt == "wav" else pcm
        media = "audio/wav" if fmt == "wav" else "audio/pcm"
        return AudioStreamResponse(stream_audio(audio, self.plan, self.streams, fault), media)

    async def _transcriptions(self, request: Request) -> Response | FaultyAnswer:
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        try:
            form, files = parse_multipart(raw, content_type)
        except ValueError:
            form, files = {}, {}
        recorded = self._record(request, form=form, files=files)
        if (problem := self._auth_problem(request)) is not None:
            return problem
        fault = self.faults.take()
        if fault is not None and fault.status is not None:
            return _fault_response(fault)
        if not content_type.startswith("multipart/form-data"):
            return _invalid("Expected a multipart/form-data body.")
        if form.get("model") not in STT_MODELS:
            return _invalid(f"Invalid model: {form.get('model')!r}", "model")
        if "file" not in files:
            return _invalid("You must provide a file.", "file")
        try:
            pcm, rate = _wav_pcm(files["file"][2])
        except ValueError:
            return _invalid("Invalid file format. Supported formats: flac, mp3, wav, ...", "file")
        if len(pcm) / (2 * rate) < 0.1:
            return _invalid("Audio file is too short. Minimum audio length is 0.1 seconds.", "file")
        text = self._next_transcript(recorded)
        if form.get("response_format") == "text":
            return PlainTextResponse(text)
        if fault is not None:
            return FaultyAnswer(json.dumps({"text": text}).encode(), fault)
        return JSONResponse({"text": text})

    def _next_transcript(self, recorded: RecordedRequest) -> str:
        with self._lock:
            if self._transcripts:
                return self._transcripts.pop(0)
        if self.responder is not None:
            answer = self.responder(recorded)
            if answer is not None:
                return answer
        return self.default_transcript


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None
    return JSONResponse(
        fault.body or error_body(fault.status, f"scripted {fault.status}"),
        status_code=fault.status,
        headers=fault.headers,
    )


class FaultyAnswer:
    """A JSON answer with a scripted stall or drop (raw ASGI, so the fault can
    fall anywhere in it).

    A stall holds back the answer for ``stall_seconds`` after ``after_bytes``
    of its body (0: before the status line); the hold ends early when the
    client hangs up, so a client that timed out does not keep the server
    busy. A drop sends ``drop_after_bytes`` of a body announced complete with
    its ``Content-Length``, then aborts the connection.
    """

    def __init__(self, body: bytes, fault: Fault) -> None:
        self.body = body
        self.fault = fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.fault
        dropping = fault.drop_after_bytes is not None
        split = min(
            fault.drop_after_bytes if fault.drop_after_bytes is not None else fault.after_bytes,
            len(self.body),
        )
        stall_first = bool(fault.stall_seconds) and not dropping and split == 0
        if stall_first and await _held_back(receive, fault.stall_seconds):
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if split:
            await send({"type": "http.response.body", "body": self.body[:split], "more_body": True})
        if dropping:
            raise DroppedByFake("scripted drop")
        if fault.stall_seconds and split and await _held_back(receive, fault.stall_seconds):
            return
        await send({"type": "http.response.body", "body": self.body[split:], "more_body": False})


async def _held_back(receive: Receive, seconds: float) -> bool:
    """Wait ``seconds``; True when the client hung up first."""

    async def hang_up() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        async with asyncio.timeout(seconds):
            await hang_up()
    except TimeoutError:
        return False
    return True


def _speech_problem(body: dict[str, Any]) -> Response | None:
    model = body.get("model")
    if model not in TTS_MODELS:
        return _invalid(f"Invalid model: {model!r}", "model")
    text = body.get("input")
    if not isinstance(text, str) or not text:
        return _invalid("'input' must be a non-empty string", "input")
    if len(text) > 4096:
        return _invalid("'input' is too long: the maximum length is 4096 characters", "input")
    if body.get("voice") not in VOICES:
        return _invalid(f"Invalid voice: {body.get('voice')!r}", "voice")
    if body.get("instructions") and model in ("tts-1", "tts-1-hd"):
        return _invalid("'instructions' is not supported with tts-1 models", "instructions")
    if body.get("response_format", "mp3") not in ("pcm", "wav"):
        return _invalid("the fake server only produces pcm and wav", "response_format")
    speed = body.get("speed", 1.0)
    if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return _invalid("'speed' must be between 0.25 and 4.0", "speed")
    return None


@pytest.fixture
def fake_openai_audio() -> Iterator[FakeOpenAIAudio]:
    """A fresh fake per test; ``.url`` is the ``/v1`` base URL, ``.api_key`` the key."""
    fake = FakeOpenAIAudio()
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        yield fake
