"""Real parts for engine tests: local Whisper and Piper (loaded once), the fake
OpenAI server, a webhook receiver, the Deepgram fake (a streaming STT with
partials), the xAI realtime fake (with a model pointed at it, and replies
spoken by Piper)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flireo.engine.config import CallInfo, PromptMessage, SessionConfig
from flireo.media.frames import SAMPLE_RATE
from flireo.media.resample import resample_all
from flireo.media.silero import silero_session
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.realtime.xai import XaiRealtimeModel
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model
from flireo.providers.tts.local_piper import PiperTTS, load_piper_voice
from tests.engine.harness import Call
from tests.fakes.deepgram import fake_deepgram
from tests.fakes.openai_chat import FakeOpenAI, fake_openai
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import Received, WebhookReceiver
from tests.fakes.xai_realtime import RATE, FakeXaiRealtime, SpokenReply, fake_xai_realtime
from tests.speech import speak

__all__ = ["fake_deepgram", "fake_openai", "fake_xai_realtime"]

WEBHOOK_SECRET = "whsec_engine_test_secret"


@pytest.fixture(scope="session", autouse=True)
def _models_loaded() -> None:
    silero_session()
    load_piper_voice("joe-us")
    load_whisper_model()


@pytest.fixture(scope="session")
def spoken() -> dict[str, bytes]:
    """Caller sentences spoken by Piper once per test session (16 kHz s16le)."""
    texts = [
        "What are your opening hours?",
        "Please book a table for two.",
        "Wait, stop. I have a question.",
        "Mm-hmm.",
        "Hello?",
        "Goodbye.",
        "Hi, you have reached the voicemail of John. Please leave a message after the beep.",
    ]

    async def make() -> dict[str, bytes]:
        return {text: await speak(text) for text in texts}

    return asyncio.run(make())


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def llm(fake_openai: FakeOpenAI, http: httpx.AsyncClient) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        http=http,
    )


@pytest.fixture
def realtime_model(fake_xai_realtime: FakeXaiRealtime) -> XaiRealtimeModel:
    """xAI realtime (speech to speech) against the local fake."""
    return XaiRealtimeModel(
        api_key=fake_xai_realtime.api_key, model="grok-voice-latest", url=fake_xai_realtime.url
    )


async def vendor_listening(call: Call, fake: FakeXaiRealtime) -> None:
    """Wait until the call's realtime session is configured (``session.update`` was
    answered): server events scripted from then on reach the session, in order.
    ``start_call`` returns before that (the call is live while it connects)."""
    await call.until(lambda: bool(fake.session), what="the realtime session configured")


async def spoken_reply(text: str, *, delta_delay: float = 0.0, **more: Any) -> SpokenReply:
    """The xAI fake's response: ``text`` as words and as Piper audio at 24 kHz."""
    pcm = resample_all(await speak(text), SAMPLE_RATE, RATE)
    return SpokenReply(text=text, pcm=pcm, delta_delay=delta_delay, **more)


@pytest.fixture
def stt() -> WhisperSTT:
    return WhisperSTT()


@pytest.fixture
def tts() -> PiperTTS:
    return PiperTTS(noise_scale=0.0, noise_w_scale=0.0)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    hook = WebhookReceiver()
    with serve(hook.app()) as srv:
        yield hook, srv


def make_config(**overrides: object) -> SessionConfig:
    """A small inbound agent; tests override what they exercise."""
    fields: dict[str, object] = {
        "call": CallInfo(
            call_id="call-test-1",
            direction="inbound",
            phone_number="+31850835037",
            phone_number_name="Flireo Demo",
            customer_number="+31612345678",
        ),
        "messages": (PromptMessage("system", "You are a friendly receptionist. Be brief."),),
        "language": "en",
    }
    fields.update(overrides)
    return SessionConfig(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ToolReply:
    """One scripted answer of the tool endpoint."""

    body: Any
    status: int = 200
    #: seconds the endpoint takes before answering (timeouts, fillers)
    delay: float = 0.0


@dataclass
class ToolServer:
    """The customer's tool endpoint (``POST /tools``): records every ``tool-calls``
    webhook when it arrives and answers the scripted replies in order, then
    ``default``. It runs in the server thread, so state sits behind a lock."""

    default: ToolReply = field(default_factory=lambda: ToolReply({"result": "done"}))
    url: str = ""
    _replies: deque[ToolReply] = field(default_factory=deque)
    _requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: ToolReply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def app(self) -> Starlette:
        async def tools(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                reply = self._replies.popleft() if self._replies else self.default
                self._requests.append(Received(dict(request.headers), body, reply.status))
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return JSONResponse(reply.body, status_code=reply.status)

        return Starlette(routes=[Route("/tools", tools, methods=["POST"])])


@pytest.fixture
def tool_server() -> Iterator[ToolServer]:
    server = ToolServer()
    with serve(server.app()) as srv:
        server.url = f"{srv.url}/tools"
        yield server
