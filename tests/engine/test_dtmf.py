"""Keys: the caller's DTMF reaches the LLM as text; the agent presses keys with ``sendDtmf``."""

from __future__ import annotations

import asyncio
import json

import httpx

from flireo.clock import Clock, ManualClock, SystemClock
from flireo.engine.config import Dtmf, SendDtmfTool
from flireo.engine.dtmf import DtmfCollector
from flireo.engine.memory_transport import MemoryTransport
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import start_call
from tests.fakes.openai_chat import FakeOpenAI, FakeToolCall, Reply
from tests.speech import words


class KeypadTransport(MemoryTransport):
    """Also notes when (clock time) the agent pressed its keys."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.dtmf_at: list[float] = []

    async def send_dtmf(self, digits: str) -> None:
        self.dtmf_at.append(self._clock.monotonic())
        await super().send_dtmf(digits)


async def test_caller_keys_reach_the_llm_as_one_entry(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(Reply.say("Thank you, your code is correct."), Reply.say("Got it."))
    config = make_config(dtmf=Dtmf(inter_digit_timeout_s=0.3))
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)

    call.transport.press("1234#")  # "#" ends the entry at once
    await call.idle_after(1, what="the answer to the code")
    answered = call.transport.last_played_at
    call.transport.press("42")  # no "#": the pause ends it
    await call.until(lambda: len(fake_openai.requests) == 2, what="the second entry")
    outcome = await call.hang_up()

    first, second = fake_openai.requests
    assert first["messages"][-1] == {"role": "user", "content": "[DTMF] 1234#"}
    assert second["messages"][-1] == {"role": "user", "content": "[DTMF] 42"}
    assert words(await call.heard(until=answered)) == words("Thank you, your code is correct.")
    assert outcome.transcript.splitlines()[:2] == [
        "User: [DTMF] 1234#",
        "AI: Thank you, your code is correct.",
    ]
    assert [t.trigger for t in outcome.turns] == ["dtmf", "dtmf"]


async def test_agent_presses_keys_after_what_it_says(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(
        Reply.calls(FakeToolCall("sendDtmf", {"digits": "1"}, id="call_k1"), text="Pressing one."),
        Reply.calls(FakeToolCall("sendDtmf", {"digits": "12x"}, id="call_k2")),
        Reply.say("Done."),
    )
    clock = SystemClock()
    transport = KeypadTransport(clock)
    call = await start_call(
        make_config(tools=(SendDtmfTool(),)),
        http=http,
        llm=llm,
        stt=stt,
        tts=tts,
        clock=clock,
        transport=transport,
    )
    await call.session.control(
        {"type": "inject-context", "content": "A menu: press 1.", "trigger_response": True}
    )
    await call.idle_after(1, what="the menu turn")
    outcome = await call.hang_up()

    assert transport.dtmf_sent == ["1"]  # "12x" was refused
    # the words were played in full before the key
    assert words(await call.heard(until=transport.dtmf_at[0])) == words("Pressing one.")
    requests = fake_openai.requests
    assert len(requests) == 3
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["sendDtmf"]
    tools = [m for m in requests[2]["messages"] if m["role"] == "tool"]
    assert tools == [
        {"role": "tool", "tool_call_id": "call_k1", "content": "Pressed 1."},
        {
            "role": "tool",
            "tool_call_id": "call_k2",
            "content": json.dumps({"error": "invalid digits '12X': use 0-9, *, #, A-D"}),
        },
    ]
    assert outcome.turns[0].tool_calls == ["sendDtmf", "sendDtmf"]


def test_collector_on_a_manual_clock() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        entries: list[str] = []
        collector = DtmfCollector(clock, timeout_s=2.0, on_entry=entries.append)
        task = asyncio.create_task(collector.run())
        await clock.advance(0)
        for digit in "98":
            collector.press(digit)
            await clock.advance(1.5)  # each key within the timeout keeps the entry open
        collector.press("x")  # not a key: ignored
        assert entries == []
        await clock.advance(0.5)
        assert entries == ["[DTMF] 98"]
        collector.press("*")
        collector.press("#")
        assert entries == ["[DTMF] 98", "[DTMF] *#"]
        task.cancel()

    asyncio.run(scenario())
