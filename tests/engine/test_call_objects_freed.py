"""A finished call's objects are freed by reference counting, not left in reference
cycles for the garbage collector: under call churn, a full collection walks every
cyclic leftover and stalls the event loop (and every call's RTP) for 100 ms and more."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from flireo.engine.cascade import CascadeConversation
from flireo.engine.context import CallContext
from flireo.engine.outcome import CallOutcome
from flireo.engine.session import CallSession
from flireo.engine.turns import TurnTaker
from flireo.media.vad import VoiceActivityDetector
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply

PER_CALL = (CallSession, CallContext, CascadeConversation, TurnTaker, VoiceActivityDetector)


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive() -> dict[str, int]:
    """Instances still in memory (garbage in cycles included: nothing collects it)."""
    counts = {cls.__name__: 0 for cls in PER_CALL}
    for obj in gc.get_objects():
        for cls in PER_CALL:
            if type(obj) is cls:
                counts[cls.__name__] += 1
    return counts


async def test_a_finished_call_leaves_no_reference_cycles(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    during: dict[str, int] = {}

    async def one_call() -> CallOutcome:
        call = await start_call(
            make_config(first_message="Hello, this is Anna."), http=http, llm=llm, stt=stt, tts=tts
        )
        await call.until(lambda: call.turns_done() == 1 and call.agent_idle(), what="greeting")
        await call.transport.caller_says(spoken["What are your opening hours?"] + silence(0.6))
        await call.until(lambda: call.turns_done() == 2 and call.agent_idle(), what="answer")
        during.update(alive())
        return await call.hang_up()

    with collector_off():
        before = alive()
        outcome = await one_call()
        for _ in range(5):  # let cancelled helpers finish
            await asyncio.sleep(0)
        after = alive()
    assert outcome.ended_reason == "customer-ended-call"
    assert all(during[name] > before[name] for name in during)  # the call had them all
    assert after == before
