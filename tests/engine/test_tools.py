"""Tools in a live call: the signed ``tool-calls`` webhook and its four reply shapes,
timeouts, fillers, async tools, ``endCall`` and ``transferCall``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from flireo.clock import SystemClock
from flireo.engine import ended_reasons
from flireo.engine.config import (
    EndCallTool,
    Fillers,
    FunctionTool,
    TransferCallTool,
    TransferDestination,
    WebhookTarget,
)
from flireo.engine.events import ToolCallFinished, ToolCallStarted, TransferAttempted
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.tool_webhook import parse_tool_reply
from flireo.engine.tools import ASYNC_SENT
from flireo.engine.transport import TransferResult
from flireo.providers.llm.base import ToolCall
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from flireo.webhooks.signing import verify_flireo_signature
from tests.engine.conftest import WEBHOOK_SECRET, ToolReply, ToolServer, make_config
from tests.engine.harness import Call, agent_record, start_call
from tests.fakes.openai_chat import FakeOpenAI, FakeToolCall, Reply
from tests.speech import words

LOOKUP = FunctionTool(
    name="lookup_contact",
    description="Find a contact by name",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
)
CALL_ID = "tool_abc123def456"


def lookup(server: ToolServer, **changes: Any) -> FunctionTool:
    return FunctionTool(
        name=changes.pop("name", LOOKUP.name),
        description=LOOKUP.description,
        parameters=dict(LOOKUP.parameters),
        url=server.url,
        **changes,
    )


def tool_call(name: str, arguments: dict[str, Any], **options: Any) -> Reply:
    """The LLM calls one tool, with a known call id."""
    return Reply.calls(FakeToolCall(name, arguments, id=CALL_ID), **options)


async def ask(call: Call, content: str = "The caller wants Jan's e-mail address.") -> None:
    """A turn without speech: silent context plus an immediate response."""
    await call.session.control(
        {"type": "inject-context", "content": content, "trigger_response": True}
    )


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


async def test_sync_tool_webhook_result_goes_back_to_the_llm(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
    tool_server: ToolServer,
) -> None:
    tool_server.script(
        ToolReply({"results": [{"toolCallId": CALL_ID, "result": {"table": 7, "time": "19:00"}}]})
    )
    fake_openai.enqueue(
        Reply.calls(FakeToolCall("book_table", {"people": 2}, id=CALL_ID)),
        Reply.say("Your table for two is booked at seven."),
    )
    book = FunctionTool(
        name="book_table",
        description="Book a table",
        parameters={"type": "object", "properties": {"people": {"type": "integer"}}},
        url=tool_server.url,
    )
    config = make_config(tools=(book,), webhook=WebhookTarget(secret=WEBHOOK_SECRET))
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)

    await call.caller_turn(spoken["Please book a table for two."])
    await call.idle_after(1, what="the answer after the tool")
    outcome = await call.hang_up()

    # the documented request, signed
    [hook] = tool_server.requests
    assert hook.headers["x-webhook-event"] == "tool-calls"
    assert hook.headers["content-type"] == "application/json"
    assert verify_flireo_signature(
        WEBHOOK_SECRET,
        hook.headers["x-webhook-timestamp"],
        hook.body,
        hook.headers["x-webhook-signature"],
        now=time.time(),
    )
    message = hook.json["message"]
    assert message.pop("timestamp").endswith("Z")
    assert message == {
        "type": "tool-calls",
        "call": {
            "id": "call-test-1",
            "type": "inboundPhoneCall",
            "status": "in-progress",
            "pipeline": "standard",
        },
        "phoneNumber": {"number": "+31850835037", "name": "Flireo Demo"},
        "customer": {"number": "+31612345678"},
        "toolCallList": [
            {
                "id": CALL_ID,
                "type": "function",
                "function": {"name": "book_table", "arguments": {"people": 2}},
            }
        ],
    }
    # the LLM saw the tool, then got its result after its own call
    first, second = fake_openai.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["book_table"]
    assert second["messages"][-2:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": CALL_ID,
                    "type": "function",
                    "function": {"name": "book_table", "arguments": '{"people": 2}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": CALL_ID,
            "content": '{"table":7,"time":"19:00"}',
        },
    ]
    assert words(await call.heard()) == words("Your table for two is booked at seven.")
    finished = call.of(ToolCallFinished)
    assert [(f.name, f.error) for f in finished] == [("book_table", None)]
    assert outcome.turns[0].tool_calls == ["book_table"]
    assert [m["role"] for m in outcome.messages[-3:]] == ["assistant", "tool", "assistant"]


@pytest.mark.parametrize(
    ("reply", "llm_sees"),
    [
        (
            {"results": [{"toolCallId": CALL_ID, "result": {"name": "Jan de Vries"}}]},
            '{"name":"Jan de Vries"}',
        ),
        ({"result": {"name": "Jan de Vries"}}, '{"name":"Jan de Vries"}'),
        (
            {"name": "Jan de Vries", "email": "jan@example.com"},
            '{"name":"Jan de Vries","email":"jan@example.com"}',
        ),
        ({"error": "Contact niet gevonden"}, '{"error": "Contact niet gevonden"}'),
    ],
    ids=["keyed-results", "single-result", "bare-data", "error"],
)
async def test_each_documented_reply_shape_reaches_the_llm(
    reply: Any,
    llm_sees: str,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    tool_server: ToolServer,
) -> None:
    tool_server.script(ToolReply(reply))
    fake_openai.enqueue(tool_call("lookup_contact", {"query": "Jan de Vries"}), Reply.say("Okay."))
    call = await start_call(
        make_config(tools=(lookup(tool_server),)), http=http, llm=llm, stt=stt, tts=tts
    )
    await ask(call)
    await call.until(lambda: len(fake_openai.requests) == 2, what="the second LLM round")
    await call.hang_up()

    assert tool_messages(fake_openai.requests[1]) == [
        {"role": "tool", "tool_call_id": CALL_ID, "content": llm_sees}
    ]
    [finished] = call.of(ToolCallFinished)
    assert (finished.error is not None) == ("error" in reply)


@pytest.mark.parametrize(
    ("tool_reply", "error"),
    [
        (
            ToolReply({"result": "too late"}, delay=1.5),
            "the tool server failed: no answer within 0.5 s",
        ),
        (ToolReply({"detail": "boom"}, status=500), "the tool server failed: HTTP 500"),
    ],
    ids=["timeout", "server-error"],
)
async def test_tool_that_does_not_answer_becomes_an_error_for_the_llm(
    tool_reply: ToolReply,
    error: str,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    tool_server: ToolServer,
) -> None:
    tool_server.script(tool_reply)
    fake_openai.enqueue(tool_call("lookup_contact", {"query": "Jan"}), "Sorry.")
    config = make_config(
        tools=(lookup(tool_server),), tool_timeout_s=0.5, fillers=Fillers(phrases=())
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    await ask(call)
    await call.until(lambda: len(fake_openai.requests) == 2, what="the second LLM round")
    await call.hang_up()

    assert len(tool_server.requests) == 1  # sent once, never retried
    assert tool_messages(fake_openai.requests[1]) == [
        {"role": "tool", "tool_call_id": CALL_ID, "content": json.dumps({"error": error})}
    ]
    [finished] = call.of(ToolCallFinished)
    assert finished.error == error
    assert finished.seconds < 1.4  # the slow tool was not waited for


async def test_filler_is_said_while_a_slow_tool_runs(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    tool_server: ToolServer,
) -> None:
    tool_server.script(ToolReply({"result": "jan@example.com"}, delay=2.5))
    fake_openai.enqueue(
        tool_call("lookup_contact", {"query": "Jan"}),
        Reply.say("I found his phone number."),
    )
    config = make_config(
        tools=(lookup(tool_server),), fillers=Fillers(delay_s=0.3, phrases=("One moment please.",))
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    await ask(call)
    await call.idle_after(1, what="the answer")
    outcome = await call.hang_up()

    said = [m for m in outcome.messages if m["role"] == "assistant" and m.get("content")]
    assert [(m["content"], m.get("source")) for m in said] == [
        ("One moment please.", "filler"),
        ("I found his phone number.", None),
    ]
    filler_at = said[0]["secondsFromStart"]
    [started] = call.of(ToolCallStarted)
    tool_sent = next(m for m in outcome.messages if m.get("tool_calls"))["secondsFromStart"]
    assert 0.25 <= filler_at - tool_sent < 2.0  # after the configured delay, not at once
    assert started.kind == "function"
    # the filler is for the caller only: the LLM history stays call → result
    history = fake_openai.requests[1]["messages"]
    assert all("One moment" not in str(m.get("content")) for m in history)
    assert words(await call.heard()) == words("One moment please. I found his phone number.")


async def test_async_tool_fires_webhook_and_says_its_response(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    tool_server: ToolServer,
) -> None:
    tool_server.script(ToolReply({"result": "queued"}, delay=1.0))
    fake_openai.enqueue(tool_call("send_brochure", {"email": "jan@example.com"}), Reply.say("Bye."))
    brochure = FunctionTool(
        name="send_brochure",
        description="E-mail the brochure",
        url=tool_server.url,
        is_async=True,
        async_response="I am sending you the brochure.",
    )
    call = await start_call(make_config(tools=(brochure,)), http=http, llm=llm, stt=stt, tts=tts)
    await ask(call, "The caller wants the brochure.")
    await call.idle_after(1, what="the async response")
    # said without waiting for the (slow) webhook, and without asking the LLM again
    assert len(fake_openai.requests) == 1
    await call.until(lambda: len(call.of(ToolCallFinished)) == 1, what="the webhook answer")
    await ask(call, "The caller says goodbye.")
    await call.until(lambda: len(fake_openai.requests) == 2, what="the next turn")
    outcome = await call.hang_up()

    [hook] = tool_server.requests
    assert hook.json["message"]["toolCallList"][0]["function"] == {
        "name": "send_brochure",
        "arguments": {"email": "jan@example.com"},
    }
    assert call.of(ToolCallStarted)[0].kind == "async-function"
    assert words(await call.heard()) == words("I am sending you the brochure.")
    history = fake_openai.requests[1]["messages"]
    assert {"role": "tool", "tool_call_id": CALL_ID, "content": ASYNC_SENT} in history
    assert {"role": "assistant", "content": "I am sending you the brochure."} in history
    assert "AI: I am sending you the brochure." in outcome.transcript


async def test_end_call_tool_hangs_up_after_the_goodbye(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(Reply.calls(FakeToolCall("endCall"), text="Thanks for calling, goodbye!"))
    call = await start_call(
        make_config(tools=(EndCallTool(),)), http=http, llm=llm, stt=stt, tts=tts
    )
    await ask(call, "The caller said goodbye.")
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.ASSISTANT_ENDED_CALL
    assert call.transport.hung_up
    assert call.hung_up_after_the_last_word()
    assert words(await call.heard()) == words("Thanks for calling, goodbye!")
    assert [t["function"]["name"] for t in fake_openai.requests[0]["tools"]] == ["endCall"]
    # the goodbye is recorded with its endCall, before the result (as on the realtime path)
    assert agent_record(outcome.messages) == [
        ("assistant", "Thanks for calling, goodbye!", ["endCall"]),
        ("tool", "The call is ending.", []),
    ]


TRANSFER = TransferCallTool(
    destinations=(
        TransferDestination("+31201234567", "Sales", "Let me connect you with sales."),
        TransferDestination("sip:support@example.com", "Technical support"),
    )
)


async def test_transfer_call_tool_says_message_and_transfers(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(Reply.call("transferCall", {"destination": "+31201234567"}))
    call = await start_call(make_config(tools=(TRANSFER,)), http=http, llm=llm, stt=stt, tts=tts)
    await ask(call, "The caller wants to buy something.")
    outcome = await call.finished()

    assert call.transport.transfers == ["+31201234567"]
    assert outcome.ended_reason == ended_reasons.ASSISTANT_FORWARDED_CALL
    assert outcome.transferred_to == "+31201234567"
    assert outcome.details["transferredTo"] == "+31201234567"
    assert [(t.destination, t.ok) for t in call.of(TransferAttempted)] == [("+31201234567", True)]
    assert words(await call.heard()) == words("Let me connect you with sales.")
    assert agent_record(outcome.messages) == [
        ("assistant", None, ["transferCall"]),
        ("assistant", "Let me connect you with sales.", []),
        ("tool", "Transferred to +31201234567.", []),
    ]
    [spec] = fake_openai.requests[0]["tools"]
    assert spec["function"]["name"] == "transferCall"
    assert spec["function"]["parameters"]["properties"]["destination"]["enum"] == [
        "+31201234567",
        "sip:support@example.com",
    ]

    # the destination's line is a fixed phrase: the next call replays it, nothing synthesized
    fake_openai.enqueue(Reply.call("transferCall", {"destination": "+31201234567"}))
    again = await start_call(make_config(tools=(TRANSFER,)), http=http, llm=llm, stt=stt, tts=tts)
    await ask(again, "The caller wants to buy something.")
    second = await again.finished()
    assert again.transport.transfers == ["+31201234567"]
    assert words(await again.heard()) == words("Let me connect you with sales.")
    assert second.usage.tts_characters == 0


async def test_refused_transfer_is_reported_to_the_llm_and_the_call_goes_on(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(
        tool_call("transferCall", {"destination": "sip:support@example.com"}),
        Reply.say("Support is busy."),
    )
    clock = SystemClock()
    transport = MemoryTransport(clock, transfer_result=TransferResult(ok=False, detail="486 Busy"))
    call = await start_call(
        make_config(tools=(TRANSFER,)),
        http=http,
        llm=llm,
        stt=stt,
        tts=tts,
        clock=clock,
        transport=transport,
    )
    await ask(call, "The caller has a technical problem.")
    await call.idle_after(1, what="the answer after the refusal")
    outcome = await call.hang_up()

    assert transport.transfers == ["sip:support@example.com"]
    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.transferred_to is None
    assert tool_messages(fake_openai.requests[1]) == [
        {
            "role": "tool",
            "tool_call_id": CALL_ID,
            "content": json.dumps({"error": "the transfer failed: 486 Busy"}),
        }
    ]
    assert words(await call.heard()) == words("Support is busy.")


def test_reply_shapes_for_several_calls_in_one_request() -> None:
    calls = [ToolCall("a", "lookup", {}), ToolCall("b", "lookup", {})]
    keyed = parse_tool_reply(
        {"results": [{"toolCallId": "b", "result": "B"}, {"toolCallId": "a", "error": "no"}]},
        calls,
    )
    assert [(r.call_id, r.content, r.error) for r in keyed] == [
        ("a", '{"error": "no"}', "no"),
        ("b", "B", None),
    ]
    missing = parse_tool_reply({"results": [{"toolCallId": "a", "result": 1}]}, calls)
    assert missing[1].error == "the tool server sent no result for this call"
    assert [r.content for r in parse_tool_reply({"result": None}, calls)] == [
        "The tool ran and returned no data."
    ] * 2
    assert [r.content for r in parse_tool_reply(["x", 1], calls)] == ['["x",1]'] * 2
