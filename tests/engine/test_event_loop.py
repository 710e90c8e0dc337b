"""Nothing on the call path blocks the event loop: one whole conversation (greeting,
caller turn through VAD and Whisper, a tool webhook, Piper answers, a barge-in) runs
under asyncio debug mode, and any callback slower than 50 ms fails the test."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from flireo.engine.config import FunctionTool
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import ToolReply, ToolServer, make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, FakeToolCall, Reply

LONG_ANSWER = (
    "We are open from nine in the morning until five in the afternoon on weekdays, "
    "and on Saturdays from ten until four. On Sundays the office is closed."
)


async def test_whole_conversation_never_blocks_the_loop_for_50_ms(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
    tool_server: ToolServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    caplog.set_level(logging.WARNING, logger="asyncio")
    tool_server.script(ToolReply({"result": "open"}))
    fake_openai.enqueue(
        Reply.calls(FakeToolCall("opening_hours", {"day": "today"})),
        Reply.say(LONG_ANSWER, chunk_delay=0.02),
        Reply.say("Sure, go ahead."),
    )
    hours = FunctionTool(name="opening_hours", description="Hours", url=tool_server.url)
    config = make_config(first_message="Hi, I'm Anna.", tools=(hours,))
    try:
        call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
        await call.idle_after(1, what="the greeting")
        await call.caller_turn(spoken["What are your opening hours?"])
        await call.agent_says_something()
        await asyncio.sleep(0.5)
        call.transport.push_caller_audio(spoken["Wait, stop. I have a question."] + silence(0.6))
        await call.until(lambda: bool(call.interruptions()), what="barge-in")
        await call.idle_after(3, what="the last answer")
        outcome = await call.hang_up()
    finally:
        loop.set_debug(False)

    assert len(tool_server.requests) == 1
    assert outcome.transcript.splitlines()[-1] == "AI: Sure, go ahead."
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert slow == [], "blocking calls on the event loop:\n" + "\n".join(slow)
