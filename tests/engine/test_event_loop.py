"""Nothing on the call path blocks the event loop: one whole conversation (greeting,
caller turn through VAD and Whisper, a tool webhook, Piper answers, a barge-in) runs
under asyncio debug mode with ``slow_callback_duration`` 50 ms, and a callback that
kept the loop for 50 ms fails the test.

asyncio times a callback by the wall clock, so on this shared 2-core machine a
callback that was merely *waiting for a CPU* (Piper's and Whisper's threads, other
processes) looks slow too. Linux tells the two apart: the loop thread's
``/proc/thread-self/schedstat`` counts the time it sat runnable in the run queue.
A callback holds the loop when its wall time minus that queueing is 50 ms or
more. When its own CPU time (``time.thread_time``) is 50 ms, that is work on the
loop, a bug: the test fails. Otherwise the thread held the loop without running:
a blocking wait (sleep, file or socket I/O, a lock), also a bug, or the host
stalling this VM (memory paged back in, seen here right after a long test run).
A blocking call on the call path is there on every run, a host stall is not, so
then the conversation runs once more and fails the test if it holds the loop
again. Where schedstat is missing, every slow-callback warning fails.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from flireo.engine.config import FunctionTool
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import ToolReply, ToolServer, make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, FakeToolCall, Reply

SLOW_S = 0.05
LONG_ANSWER = (
    "We are open from nine in the morning until five in the afternoon on weekdays, "
    "and on Saturdays from ten until four. On Sundays the office is closed."
)


@dataclass
class SlowCallback:
    what: str
    wall_s: float
    #: runnable but not running (preempted, waiting for a core)
    queued_s: float
    #: the loop thread's own CPU time in the callback
    cpu_s: float = 0.0
    #: pages the loop thread had to read back from disk meanwhile
    major_faults: int = 0

    @property
    def held_s(self) -> float:
        """What the callback itself kept the loop for: CPU work or a blocking wait."""
        return self.wall_s - self.queued_s


@contextmanager
def slow_callbacks() -> Iterator[list[SlowCallback] | None]:
    """Time every loop callback, with the loop thread's run-queue wait (Linux)."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        yield None
        return

    def queued_ns() -> int:
        return int(os.pread(fd, 64, 0).split()[1])

    found: list[SlowCallback] = []
    original = asyncio.events.Handle._run

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_THREAD).ru_majflt

    def timed(handle: asyncio.Handle) -> None:
        wall0, queue0, cpu0, faults0 = (
            time.perf_counter(),
            queued_ns(),
            time.thread_time(),
            faults(),
        )
        original(handle)
        wall = time.perf_counter() - wall0
        if wall >= SLOW_S:
            found.append(
                SlowCallback(
                    repr(handle)[:300],
                    wall,
                    (queued_ns() - queue0) / 1e9,
                    time.thread_time() - cpu0,
                    faults() - faults0,
                )
            )

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    try:
        yield found
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
        os.close(fd)


def describe(slow: list[SlowCallback]) -> str:
    return "\n".join(
        f"{s.held_s * 1000:.0f} ms held ({s.wall_s * 1000:.0f} ms wall, "
        f"{s.queued_s * 1000:.0f} ms waiting for a CPU, {s.cpu_s * 1000:.0f} ms on the CPU, "
        f"{s.major_faults} major page faults): {s.what}"
        for s in slow
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
    """A callback that spent 50 ms on the CPU fails at once. One that held the loop
    without running (a blocking wait, or the host stalling the VM: memory paged
    back in, the GIL held by a native library) fails when the conversation, run
    again, shows it again: a blocking call on the call path is there every time,
    a stall of the host is not."""
    caplog.set_level(logging.WARNING, logger="asyncio")
    first = await _conversation(fake_openai, llm, stt, tts, http, spoken, tool_server)
    if first is None:  # no schedstat: asyncio's own warnings decide
        warnings = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
        assert warnings == [], "blocking calls on the event loop:\n" + "\n".join(warnings)
        return
    busy = [s for s in first if s.cpu_s >= SLOW_S]
    assert busy == [], "callbacks that kept the loop busy:\n" + describe(busy)
    if not [s for s in first if s.held_s >= SLOW_S]:
        return
    again = await _conversation(fake_openai, llm, stt, tts, http, spoken, tool_server)
    assert again is not None
    held = [s for s in again if s.held_s >= SLOW_S]
    assert held == [], (
        "callbacks that held the event loop, in two runs:\n"
        + describe([s for s in first if s.held_s >= SLOW_S])
        + "\nthen\n"
        + describe(held)
    )


async def _conversation(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
    tool_server: ToolServer,
) -> list[SlowCallback] | None:
    """Greeting, a caller turn, a tool call, a long answer cut off by barge-in; the
    slow callbacks seen meanwhile (None where Linux's schedstat is missing)."""
    # what the test process piled up so far (models, other tests' objects) is not the
    # call's: keep it out of the collector, as a server does after start-up, so a
    # full collection of that heap is not mistaken for a blocking call
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_S
    requests_before = len(tool_server.requests)
    tool_server.script(ToolReply({"result": "open"}))
    fake_openai.enqueue(
        Reply.calls(FakeToolCall("opening_hours", {"day": "today"})),
        Reply.say(LONG_ANSWER, chunk_delay=0.02),
        Reply.say("Sure, go ahead."),
    )
    hours = FunctionTool(name="opening_hours", description="Hours", url=tool_server.url)
    config = make_config(first_message="Hi.", tools=(hours,))
    try:
        with slow_callbacks() as measured:
            call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
            await call.idle_after(1, what="the greeting")
            await call.caller_turn(spoken["Hello?"])
            await call.agent_says_something()
            await asyncio.sleep(0.5)
            call.transport.push_caller_audio(
                spoken["Wait, stop. I have a question."] + silence(0.6)
            )
            await call.until(lambda: bool(call.interruptions()), what="barge-in")
            await call.idle_after(3, what="the last answer")
            outcome = await call.hang_up()
    finally:
        loop.set_debug(False)
        gc.unfreeze()
    assert len(tool_server.requests) == requests_before + 1
    assert outcome.transcript.splitlines()[-1] == "AI: Sure, go ahead."
    return measured
