"""Live control commands (``CallSession.control``) in a call with real speech out:
inject-context, say, end-call, transfer, the 10-per-minute limit, ended calls."""

from __future__ import annotations

import asyncio

import httpx
import pydantic
import pytest

from flireo.clock import ManualClock, SystemClock
from flireo.engine import ended_reasons
from flireo.engine.control import (
    CallNotActive,
    ControlRateLimited,
    ControlRateLimiter,
    InjectContext,
)
from flireo.engine.events import ControlApplied, TransferAttempted
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.transport import TransferResult
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.speech import words

GREETING = (
    "Hello, this is Anna from the dental practice, thank you for calling us today. "
    "I can help you with appointments, opening hours and prices."
)


async def test_inject_context_is_silent_until_a_response_is_asked_for(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(Reply.say("Hello Jan, your order has shipped."))
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)

    await call.session.control({"type": "inject-context", "content": "The caller is Jan."})
    await call.until(lambda: len(call.of(ControlApplied)) == 1, what="context applied")
    await asyncio.sleep(0.5)
    assert fake_openai.requests == []
    assert call.transport.played == []

    await call.session.control(
        InjectContext(
            type="inject-context",
            content="Jan's order has shipped; tell him.",
            trigger_response=True,
        )
    )
    await call.idle_after(1, what="the response")
    outcome = await call.hang_up()

    [request] = fake_openai.requests
    assert request["messages"][1:] == [
        {"role": "system", "content": "The caller is Jan."},
        {"role": "system", "content": "Jan's order has shipped; tell him."},
    ]
    assert words(await call.heard()) == words("Hello Jan, your order has shipped.")
    assert [(a.command, a.ok) for a in call.of(ControlApplied)] == [
        ("inject-context", True),
        ("inject-context", True),
    ]
    context = [m for m in outcome.messages if m.get("source") == "control"]
    assert [m["content"] for m in context] == [
        "The caller is Jan.",
        "Jan's order has shipped; tell him.",
    ]
    assert outcome.turns[0].trigger == "control"


async def test_say_speaks_exact_text_and_can_end_the_call(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await call.session.control({"type": "say", "content": "Your appointment is confirmed."})
    await call.until(
        lambda: call.said() == ["Your appointment is confirmed."], what="the first say"
    )
    assert call.session.active
    await call.session.control({"type": "say", "content": "Goodbye now.", "end_after": True})
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.ASSISTANT_ENDED_CALL_WITH_MESSAGE
    assert fake_openai.requests == []  # said as given, no LLM involved
    assert outcome.transcript == "AI: Your appointment is confirmed.\nAI: Goodbye now."
    assert words(await call.heard()) == words("Your appointment is confirmed. Goodbye now.")
    assert call.hung_up_after_the_last_word()  # hung up after the words were played
    assert all(m.get("source") == "control" for m in outcome.messages[1:])


async def test_end_call_cuts_the_agent_short_and_says_the_final_message(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    call = await start_call(
        make_config(first_message=GREETING), http=http, llm=llm, stt=stt, tts=tts
    )
    await call.agent_says_something(within=5)
    await asyncio.sleep(1.0)
    await call.session.control({"type": "end-call", "message": "Sorry, we must hang up now."})
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.MANUALLY_ENDED
    greeting, final = [m for m in outcome.messages if m["role"] == "assistant"]
    assert greeting["interrupted"] is True
    assert words(GREETING)[: len(words(greeting["content"]))] == words(greeting["content"])
    assert len(words(greeting["content"])) < len(words(GREETING))
    assert final["content"] == "Sorry, we must hang up now."
    start = outcome.started_monotonic + final["secondsFromStart"]
    assert words(await call.heard(since=start)) == words("Sorry, we must hang up now.")
    assert call.transport.hung_up
    assert [(a.command, a.ok) for a in call.of(ControlApplied)] == [("end-call", True)]


async def test_transfer_command_says_message_and_hands_the_caller_over(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await call.session.control(
        {
            "type": "transfer",
            "destination": "+31201234567",
            "message": "I will put you through to a colleague.",
        }
    )
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.ASSISTANT_FORWARDED_CALL
    assert call.transport.transfers == ["+31201234567"]
    assert outcome.transferred_to == "+31201234567"
    assert [(t.destination, t.ok) for t in call.of(TransferAttempted)] == [("+31201234567", True)]
    assert words(await call.heard()) == words("I will put you through to a colleague.")
    assert call.of(ControlApplied)[-1].command == "transfer"


async def test_eleventh_command_within_a_minute_is_refused(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    for n in range(10):
        await call.session.control({"type": "inject-context", "content": f"Fact {n}."})
    with pytest.raises(ControlRateLimited) as refused:
        await call.session.control({"type": "inject-context", "content": "One too many."})
    assert 1 <= refused.value.retry_after <= 60
    with pytest.raises(pydantic.ValidationError):
        await call.session.control({"type": "say"})
    await call.until(lambda: len(call.of(ControlApplied)) == 10, what="ten commands applied")
    outcome = await call.hang_up()
    context = [m["content"] for m in outcome.messages if m.get("source") == "control"]
    assert context == [f"Fact {n}." for n in range(10)]


async def test_control_on_an_ended_call_is_refused(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await call.hang_up()
    assert not call.session.active
    with pytest.raises(CallNotActive) as refused:
        await call.session.control({"type": "say", "content": "Hello?"})
    assert refused.value.code == "call_not_active"


def test_rate_limit_is_a_sliding_minute() -> None:
    clock = ManualClock()
    limiter = ControlRateLimiter(clock)

    async def scenario() -> None:
        for _ in range(10):
            limiter.acquire()
            await clock.advance(5.0)  # ten commands over 50 s
        with pytest.raises(ControlRateLimited) as refused:
            limiter.acquire()
        assert refused.value.retry_after == 10  # the first one leaves the window at 60 s
        await clock.advance(10.0)
        limiter.acquire()
        with pytest.raises(ControlRateLimited):
            limiter.acquire()

    asyncio.run(scenario())


async def test_refused_transfer_command_is_reported_and_the_call_goes_on(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(Reply.say("Sorry, nobody is free right now."))
    clock = SystemClock()
    transport = MemoryTransport(clock, transfer_result=TransferResult(ok=False, detail="486 Busy"))
    call = await start_call(
        make_config(), http=http, llm=llm, stt=stt, tts=tts, clock=clock, transport=transport
    )
    await call.session.control({"type": "transfer", "destination": "sip:desk@example.com"})
    await call.idle_after(1, what="the agent telling the caller")
    assert call.session.active
    outcome = await call.hang_up()

    assert transport.transfers == ["sip:desk@example.com"]
    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.transferred_to is None
    [applied] = call.of(ControlApplied)
    assert (applied.command, applied.ok, applied.detail) == (
        "transfer",
        False,
        "transfer failed: 486 Busy",
    )
    told = fake_openai.requests[0]["messages"][-1]
    assert told["role"] == "system"
    assert "sip:desk@example.com failed (486 Busy)" in told["content"]
    assert words(await call.heard()) == words("Sorry, nobody is free right now.")
