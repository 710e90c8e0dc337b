"""The built-in tools on the speech-to-speech path, against the local xAI realtime
fake: ``endCall`` hangs up after the goodbye, ``transferCall`` says its line and
hands the caller over (or tells the model it failed). The same outcome and the
same record as the cascade's tests in ``test_tools.py``.
"""

from __future__ import annotations

import json

import httpx

from flireo.clock import SystemClock
from flireo.engine import ended_reasons
from flireo.engine.config import EndCallTool, TransferCallTool, TransferDestination
from flireo.engine.events import ToolCallFinished, TransferAttempted
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.realtime_session import VERBATIM
from flireo.engine.transport import TransferResult
from flireo.providers.realtime.xai import XaiRealtimeModel
from tests.engine.conftest import make_config, spoken_reply
from tests.engine.harness import Call, agent_record, start_call
from tests.fakes.xai_realtime import FakeXaiRealtime, SpokenReply
from tests.speech import words

GOODBYE = "Thanks for calling, goodbye!"
SALES_LINE = "Let me connect you with sales."
TRANSFER = TransferCallTool(
    destinations=(
        TransferDestination("+31201234567", "Sales", SALES_LINE),
        TransferDestination("sip:support@example.com", "Technical support"),
    )
)


async def ask(call: Call, content: str) -> None:
    """A turn without speech: silent context plus an immediate response."""
    await call.session.control(
        {"type": "inject-context", "content": content, "trigger_response": True}
    )


def tool_outputs(fake: FakeXaiRealtime) -> list[dict[str, str]]:
    """The function results the session sent back to the vendor."""
    return [
        e["item"]
        for e in fake.received_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]


async def test_end_call_tool_hangs_up_after_the_goodbye(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    # one response: the goodbye (words and audio), then the endCall function call
    fake.enqueue_response(await spoken_reply(GOODBYE, function_call=("endCall", {}, "call_end")))
    call = await start_call(make_config(tools=(EndCallTool(),)), http=http, realtime=realtime_model)
    await ask(call, "The caller said goodbye.")
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.ASSISTANT_ENDED_CALL
    assert call.transport.hung_up
    assert call.hung_up_after_the_last_word()  # the whole goodbye was played first
    assert words(await call.heard()) == words(GOODBYE)
    assert [t["name"] for t in fake.session["tools"]] == ["endCall"]
    # the goodbye is recorded with its endCall, before the result (as in the cascade)
    assert agent_record(outcome.messages) == [
        ("assistant", GOODBYE, ["endCall"]),
        ("tool", "The call is ending.", []),
    ]
    assert outcome.transcript == f"AI: {GOODBYE}"
    assert tool_outputs(fake) == []  # the call ended: no result goes back to the model
    assert [(f.name, f.error) for f in call.of(ToolCallFinished)] == [("endCall", None)]
    [turn] = outcome.turns
    assert (turn.trigger, turn.tool_calls) == ("control", ["endCall"])


async def test_transfer_call_tool_says_the_line_and_transfers(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    fake.enqueue_response(
        SpokenReply(text="", function_call=("transferCall", {"destination": "+31201234567"}, "t1")),
        await spoken_reply(SALES_LINE),  # the destination's message, said verbatim
    )
    call = await start_call(make_config(tools=(TRANSFER,)), http=http, realtime=realtime_model)
    await ask(call, "The caller wants to buy something.")
    outcome = await call.finished()

    assert call.transport.transfers == ["+31201234567"]
    assert outcome.ended_reason == ended_reasons.ASSISTANT_FORWARDED_CALL
    assert outcome.transferred_to == "+31201234567"
    assert outcome.details["transferredTo"] == "+31201234567"
    assert [(t.destination, t.ok) for t in call.of(TransferAttempted)] == [("+31201234567", True)]
    assert words(await call.heard()) == words(SALES_LINE)
    assert call.hung_up_after_the_last_word()  # transferred after the line was played
    instructions = [
        (e.get("response") or {}).get("instructions") for e in fake.received_of("response.create")
    ]
    assert instructions == [None, VERBATIM.format(SALES_LINE)]
    assert agent_record(outcome.messages) == [
        ("assistant", None, ["transferCall"]),
        ("assistant", SALES_LINE, []),
        ("tool", "Transferred to +31201234567.", []),
    ]
    [spec] = fake.session["tools"]
    assert spec["name"] == "transferCall"
    assert spec["parameters"]["properties"]["destination"]["enum"] == [
        "+31201234567",
        "sip:support@example.com",
    ]
    assert tool_outputs(fake) == []


async def test_refused_transfer_goes_back_to_the_model_and_the_call_goes_on(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    fake.enqueue_response(
        SpokenReply(
            text="",
            function_call=("transferCall", {"destination": "sip:support@example.com"}, "t2"),
        ),
        await spoken_reply("Support is busy."),  # the answer to the failed result
    )
    transport = MemoryTransport(
        SystemClock(), transfer_result=TransferResult(ok=False, detail="486 Busy")
    )
    call = await start_call(
        make_config(tools=(TRANSFER,)), http=http, realtime=realtime_model, transport=transport
    )
    await ask(call, "The caller has a technical problem.")
    await call.idle_after(1, what="the answer after the refusal")
    assert call.session.active
    outcome = await call.hang_up()

    assert transport.transfers == ["sip:support@example.com"]
    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.transferred_to is None
    failed = json.dumps({"error": "the transfer failed: 486 Busy"})
    assert tool_outputs(fake) == [
        {"type": "function_call_output", "call_id": "t2", "output": failed}
    ]
    assert words(await call.heard()) == words("Support is busy.")
    assert agent_record(outcome.messages) == [
        ("assistant", None, ["transferCall"]),
        ("tool", failed, []),
        ("assistant", "Support is busy.", []),
    ]
    [turn] = outcome.turns  # the call and the answer to its result are one turn
    assert turn.tool_calls == ["transferCall"]
