"""The speech-to-speech pipeline against the local xAI realtime fake: the same first
message, caller turn, tools, control commands, transcript and outcome as the cascade.

The fake "speaks" Piper audio (at its 24 kHz), so what the caller hears is
transcribed back with Whisper like in the cascade tests.
"""

from __future__ import annotations

import json

import httpx
import pytest

from flireo.engine import ended_reasons
from flireo.engine.config import FunctionTool, PromptMessage
from flireo.engine.control import CallNotActive
from flireo.engine.events import CallerInterrupted, ControlApplied, ToolCallFinished
from flireo.engine.realtime_session import VERBATIM
from flireo.providers.realtime.xai import XaiRealtimeModel
from tests.engine.conftest import ToolReply, ToolServer, make_config, spoken_reply
from tests.engine.harness import Call, start_call
from tests.fakes.xai_realtime import RATE, FakeXaiRealtime
from tests.speech import words

GREETING = "Hi, I'm Anna."
ANSWER = "We open at nine."
LOOKED_UP = "Table seven is yours."
SAID = "Your booking is done."
BYE = "Goodbye."


async def played_out(call: Call, turns: int) -> None:
    await call.idle_after(turns, what=f"{turns} realtime responses played")


async def test_realtime_call_with_first_message_turn_tool_and_control(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
    tool_server: ToolServer,
    spoken: dict[str, bytes],
) -> None:
    fake = fake_xai_realtime
    fake.enqueue_response(
        await spoken_reply(GREETING),  # answers the first message's response.create
        await spoken_reply(LOOKED_UP),  # answers the tool result
        await spoken_reply(SAID),  # control "say"
        await spoken_reply(BYE),  # control "end-call" message
    )
    answer = await spoken_reply(ANSWER)
    tool_server.script(ToolReply({"result": {"table": 7}}))
    lookup = FunctionTool(
        name="lookup_booking",
        description="Find a booking",
        parameters={"type": "object", "properties": {"name": {"type": "string"}}},
        url=tool_server.url,
    )
    config = make_config(
        first_message=GREETING,
        tools=(lookup,),
        voice="ara",
        messages=(PromptMessage("system", "You are Anna, a friendly receptionist."),),
    )
    call = await start_call(config, http=http, realtime=realtime_model)

    # 1. the first message, said verbatim
    await played_out(call, 1)
    greeting_end = call.transport.last_played_at
    session = fake.session
    assert session["instructions"] == "You are Anna, a friendly receptionist."
    assert session["voice"] == "ara"
    assert [t["name"] for t in session["tools"]] == ["lookup_booking"]
    [create] = fake.received_of("response.create")
    assert create["response"]["instructions"] == VERBATIM.format(GREETING)

    # 2. a caller turn: our audio goes up, the vendor's VAD, transcript and answer come down
    await call.caller_turn(spoken["Hello?"])
    assert len(fake.audio_in) > 0.5 * RATE * 2  # the caller's speech, resampled to 24 kHz
    fake.speech_started()
    fake.speech_stopped()
    fake.user_transcript("Hello? When do you open?")
    fake.say(answer.text, answer.pcm)
    await played_out(call, 2)
    answer_end = call.transport.last_played_at
    assert answer_end is not None

    # 3. a tool call: the same tool-calls webhook, the result goes back as function output
    fake.function_call("lookup_booking", {"name": "Jan"}, call_id="call_rt_1")
    await call.until(lambda: len(call.of(ToolCallFinished)) == 1, what="the tool result")
    await call.until(lambda: LOOKED_UP in call.said(), what="the answer after the tool")
    await played_out(call, 3)
    [hook] = tool_server.requests
    assert hook.json["message"]["call"]["pipeline"] == "realtime"
    assert hook.json["message"]["toolCallList"][0]["function"] == {
        "name": "lookup_booking",
        "arguments": {"name": "Jan"},
    }
    outputs = [
        e["item"]
        for e in fake.received_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    assert outputs == [
        {"type": "function_call_output", "call_id": "call_rt_1", "output": '{"table":7}'}
    ]

    # 4. control: silent context, an exact sentence, then end the call with a message
    await call.session.control({"type": "inject-context", "content": "Jan is a VIP."})
    await call.session.control({"type": "say", "content": SAID})
    await call.until(lambda: SAID in call.said() and call.agent_idle(), what="the said sentence")
    await call.session.control({"type": "end-call", "message": BYE})
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.MANUALLY_ENDED
    with pytest.raises(CallNotActive):
        await call.session.control({"type": "say", "content": "Too late."})
    system_items = [
        e["item"]
        for e in fake.received_of("conversation.item.create")
        if e["item"].get("role") == "system"
    ]
    assert system_items == [
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Jan is a VIP."}],
        }
    ]
    instructions = [
        (e.get("response") or {}).get("instructions") for e in fake.received_of("response.create")
    ]
    assert instructions == [
        VERBATIM.format(GREETING),
        None,  # after the tool result
        VERBATIM.format(SAID),
        VERBATIM.format(BYE),
    ]
    assert [(a.command, a.ok) for a in call.of(ControlApplied)] == [
        ("inject-context", True),
        ("say", True),
        ("end-call", True),
    ]

    # the same record as a cascade call
    assert outcome.transcript.splitlines() == [
        f"AI: {GREETING}",
        "User: Hello? When do you open?",
        f"AI: {ANSWER}",
        f"AI: {LOOKED_UP}",
        f"AI: {SAID}",
        f"AI: {BYE}",
    ]
    roles = [(m["role"], m.get("source")) for m in outcome.messages]
    assert roles == [
        ("system", "prompt"),
        ("assistant", "first-message"),
        ("user", None),
        ("assistant", None),
        ("assistant", None),  # the tool call
        ("tool", None),
        ("assistant", None),
        ("system", "control"),
        ("assistant", "control"),
        ("assistant", "goodbye"),
    ]
    call_message = outcome.messages[4]
    assert call_message["tool_calls"] == [
        {
            "id": "call_rt_1",
            "type": "function",
            "function": {"name": "lookup_booking", "arguments": json.dumps({"name": "Jan"})},
        }
    ]
    assert outcome.messages[5]["content"] == '{"table":7}'
    assert all("time" in m and "secondsFromStart" in m for m in outcome.messages)
    assert words(await call.heard(until=greeting_end)) == words(GREETING)
    assert words(await call.heard(since=answer_end + 0.01)) == words(f"{LOOKED_UP} {SAID} {BYE}")
    assert outcome.usage.realtime_input_seconds > 1.0
    assert outcome.usage.realtime_output_seconds > 3.0
    assert outcome.usage.llm_completion_tokens > 0
    # a tool call and the answer to its result are one turn, as in the cascade
    assert [(t.trigger, t.tool_calls) for t in outcome.turns] == [
        ("first-message", []),
        ("user", []),
        ("vendor", ["lookup_booking"]),
    ]
    assert all(t.first_audio_ms is not None for t in outcome.turns)
    assert call.transport.hung_up


async def test_realtime_barge_in_cancels_the_response_and_truncates(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    long = (
        "Our opening hours are from nine in the morning until five in the afternoon, "
        "and on Saturdays from ten until four."
    )
    # sent in real time (40 ms per 40 ms delta), like a vendor speaking
    fake.enqueue_response(await spoken_reply(long, delta_delay=0.04))
    call = await start_call(make_config(first_message=long), http=http, realtime=realtime_model)
    await call.agent_says_something(within=5)
    start = call.transport.first_played_at
    assert start is not None
    await call.until(lambda: call.frames()[-1].at - start > 1.5, what="1.5 s played")
    fake.speech_started()
    await call.until(lambda: bool(call.interruptions()), what="barge-in")
    await fake.wait_for("response.cancel")
    await call.until(lambda: call.turns_done() == 1, what="the response closed")
    outcome = await call.hang_up()

    [barge] = call.of(CallerInterrupted)
    assert call.frames(since=barge.at + 0.1) == []
    [said] = [m for m in outcome.messages if m["role"] == "assistant"]
    assert said["interrupted"] is True
    assert 3 <= len(words(said["content"])) < len(words(long))
    assert words(long)[: len(words(said["content"]))] == words(said["content"])
    heard = await call.heard(until=barge.at)
    assert abs(len(words(heard)) - len(words(said["content"]))) <= 3, (heard, said)
    assert outcome.turns[0].interrupted
