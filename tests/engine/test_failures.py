"""When things break: a vendor fails or refuses the key, a key is missing, the sink
fails, the task running the call is cancelled. The call always ends cleanly, with a
specific ``ended_reason``, exactly one outcome, and the line hung up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from flireo.clock import SystemClock
from flireo.engine import ended_reasons
from flireo.engine.ended_reasons import PipelineFailure, Stage, stage
from flireo.engine.events import CallEnded, SessionEvent, StatusChanged
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.session import CallSession
from flireo.errors import MissingCredentials, ProviderError
from flireo.providers import registry
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.realtime.xai import XaiRealtimeModel
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from flireo.settings import Settings
from tests.engine.conftest import make_config
from tests.engine.harness import Call, start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.fakes.xai_realtime import FakeXaiRealtime


def assert_ended_once(call: Call, reason: str) -> None:
    """One outcome, one CallEnded, one final status; the line is hung up."""
    outcome = call.session.outcome
    assert outcome is not None
    assert outcome.ended_reason == reason
    [ended] = call.of(CallEnded)
    assert ended.outcome is outcome
    statuses = [(s.status, s.ended_reason) for s in call.of(StatusChanged)]
    assert statuses == [("in-progress", None), ("ended", reason)]
    assert call.transport.hung_up
    assert call.transport.closed


async def ask(call: Call) -> None:
    await call.session.control(
        {"type": "inject-context", "content": "Answer the caller.", "trigger_response": True}
    )


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        (
            [Reply.error(500, "The server had an error"), Reply.error(500, "Still broken")],
            "pipeline-error-openai-llm-failed",
        ),
        (
            [Reply.error(401, "Incorrect API key provided")],
            "pipeline-error-openai-llm-unauthorized",
        ),
        ([Reply.disconnect("Let me see, our hours", after=3)], "pipeline-error-openai-llm-failed"),
    ],
    ids=["server-error", "key-refused", "stream-dropped"],
)
async def test_llm_failure_ends_the_call_with_its_reason(
    replies: list[Reply],
    reason: str,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(*replies)
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await ask(call)
    outcome = await call.finished()

    assert_ended_once(call, reason)
    assert outcome.failed
    assert outcome.error is not None
    assert "openai" in outcome.error
    [status] = [s for s in call.of(StatusChanged) if s.status == "ended"]
    assert status.error == outcome.error


async def test_realtime_websocket_dropped_mid_call(
    fake_xai_realtime: FakeXaiRealtime, http: httpx.AsyncClient
) -> None:
    model = XaiRealtimeModel(api_key=fake_xai_realtime.api_key, url=fake_xai_realtime.url)
    call = await start_call(make_config(first_message="Hello."), http=http, realtime=model)
    await call.idle_after(1, what="the greeting")
    fake_xai_realtime.drop()
    outcome = await call.finished()

    assert_ended_once(call, "pipeline-error-xai-realtime-realtime-failed")
    assert outcome.error is not None
    assert "1011" in outcome.error
    assert outcome.transcript == "AI: Hello from the fake Grok."


async def test_realtime_key_refused_at_connect(
    fake_xai_realtime: FakeXaiRealtime, http: httpx.AsyncClient
) -> None:
    model = XaiRealtimeModel(api_key="xai-wrong-key", url=fake_xai_realtime.url)
    call = await start_call(make_config(first_message="Hello."), http=http, realtime=model)
    outcome = await call.finished()

    assert_ended_once(call, "pipeline-error-xai-realtime-realtime-unauthorized")
    assert outcome.messages[-1]["role"] == "system"  # nothing was said
    assert call.transport.played == []


@pytest.mark.parametrize(
    ("where", "config", "reason"),
    [
        ("llm", {"provider": "openai"}, "pipeline-error-openai-llm-missing-api-key"),
        ("llm", {"provider": "anthropic"}, "pipeline-error-anthropic-llm-missing-api-key"),
        ("llm", {"provider": "groq"}, "pipeline-error-groq-llm-missing-api-key"),
        (
            "realtime",
            {"provider": "xai_realtime"},
            "pipeline-error-xai-realtime-missing-api-key",
        ),
    ],
)
async def test_missing_key_has_its_own_ended_reason(
    where: Stage, config: dict[str, Any], reason: str, http: httpx.AsyncClient
) -> None:
    """The providers refuse to exist without a key; the stage turns that into the
    reason the call record and the end-of-call report carry."""
    settings = Settings()

    def build() -> object:
        with stage(where):
            if where == "realtime":
                return registry.build_realtime(config, api_key=None, settings=settings)
            return registry.build_llm(config, api_key="", settings=settings, http=http)

    with pytest.raises(PipelineFailure) as failed:
        build()
    assert isinstance(failed.value.error, MissingCredentials)
    assert failed.value.ended_reason == reason
    assert ended_reasons.is_error(reason)


def test_pipeline_error_names() -> None:
    assert ended_reasons.pipeline_error("voice", ProviderError("ElevenLabs", "boom")) == (
        "pipeline-error-elevenlabs-voice-failed"
    )
    assert ended_reasons.pipeline_error(
        "transcriber", ProviderError("deepgram", "no", status=403)
    ) == ("pipeline-error-deepgram-transcriber-unauthorized")
    assert not ended_reasons.is_error(ended_reasons.CUSTOMER_ENDED_CALL)


class BrokenSink:
    """An event sink that fails on everything (a database outage, say)."""

    def __init__(self) -> None:
        self.calls = 0

    async def emit(self, event: SessionEvent) -> None:
        self.calls += 1
        raise RuntimeError("the database is down")


async def test_failing_event_sink_does_not_break_the_call(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue("Hello there.")
    clock = SystemClock()
    transport = MemoryTransport(clock)
    sink = BrokenSink()
    session = CallSession(
        make_config(),
        transport=transport,
        clock=clock,
        http=http,
        events=sink,
        llm=llm,
        stt=stt,
        tts=tts,
    )
    task = asyncio.create_task(session.run())
    while not session.active:  # noqa: ASYNC110 (the session has no "started" event)
        await asyncio.sleep(0.01)
    await session.control({"type": "say", "content": "Hi.", "end_after": True})
    async with asyncio.timeout(15):
        outcome = await task
    assert outcome.ended_reason == ended_reasons.ASSISTANT_ENDED_CALL_WITH_MESSAGE
    assert outcome.transcript == "AI: Hi."
    assert sink.calls >= 4  # every event was offered and its failure swallowed


async def test_cancelling_the_call_task_still_ends_once(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    # the LLM is mid-stream (held) when the process shuts the call down
    fake_openai.enqueue(Reply.stall("Let me think about that for a moment", after=4))
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await ask(call)
    await call.until(lambda: len(fake_openai.requests) == 1, what="the LLM request")
    await asyncio.sleep(0.3)
    call.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.task

    assert_ended_once(call, ended_reasons.CALL_CANCELLED)
    await fake_openai.wait_for_disconnects(1)  # the stream was closed, not left hanging
    fake_openai.release()
    outcome = call.session.outcome
    assert outcome is not None
    assert not outcome.failed
    assert outcome.ended_at >= outcome.started_at
    with pytest.raises(RuntimeError):
        await call.session.run()  # a session runs once
