"""Real parts for engine tests: local Whisper and Piper (loaded once), the fake
OpenAI server, a webhook receiver, the xAI realtime fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from flireo.engine.config import CallInfo, PromptMessage, SessionConfig
from flireo.media.silero import silero_session
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model
from flireo.providers.tts.local_piper import PiperTTS, load_piper_voice
from tests.fakes.openai_chat import FakeOpenAI, fake_openai
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.fakes.xai_realtime import fake_xai_realtime
from tests.speech import speak

__all__ = ["fake_openai", "fake_xai_realtime"]

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
