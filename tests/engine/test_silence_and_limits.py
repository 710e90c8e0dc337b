"""Silence handling and the call's time limit.

The live-call tests shorten the intervals through :class:`SilenceHandling`;
the documented schedule itself (7 s, then every 12 s, 3 checks, then goodbye)
is checked on a manual clock against the watchdog the session runs.
"""

from __future__ import annotations

import asyncio

import httpx

from flireo.clock import ManualClock
from flireo.engine import ended_reasons
from flireo.engine.config import SilenceHandling
from flireo.engine.silence import CHECK_PROMPTS, GOODBYE_PROMPT, SilenceWatchdog
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import start_call
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import words

CHECKS = ("Still there?", "I'm here.", "Hello?")


async def test_silent_caller_gets_three_checks_then_goodbye_and_hang_up(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    fake_openai.enqueue(*CHECKS, "Bye!")
    silence = SilenceHandling(enabled=True, first_check_s=0.5, interval_s=0.7, max_checks=3)
    call = await start_call(make_config(silence=silence), http=http, llm=llm, stt=stt, tts=tts)
    outcome = await call.finished(within=30)

    assert outcome.ended_reason == ended_reasons.SILENCE_TIMED_OUT
    assert call.transport.hung_up
    requests = fake_openai.requests
    assert len(requests) == 4
    assert [r["messages"][-1]["content"] for r in requests] == [*CHECK_PROMPTS, GOODBYE_PROMPT]
    # silence handling gives the agent endCall; the goodbye itself may not call tools
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["endCall"]
    assert "tools" not in requests[3]
    said = [m["content"] for m in outcome.messages if m["role"] == "assistant"]
    assert said == [*CHECKS, "Bye!"]
    assert words(await call.heard()) == words(" ".join([*CHECKS, "Bye!"]))
    # each check comes after the configured silence, counted from when the agent stopped
    assert call.early_checks(outcome, first_s=0.5, interval_s=0.7) == []
    assert [t.trigger for t in outcome.turns] == ["silence"] * 4


async def test_silence_timeout_without_checks_hangs_up_quietly(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    config = make_config(silence=SilenceHandling(timeout_s=1.0))
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.SILENCE_TIMED_OUT
    assert 1.0 <= outcome.duration_seconds < 5.0
    assert fake_openai.requests == []
    assert call.transport.played == []


async def test_max_duration_cuts_in_with_its_message_and_ends_the_call(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    greeting = (
        "Hello, this is Anna from the dental practice, thank you for calling us today. "
        "I can help you with appointments, opening hours and prices."
    )
    config = make_config(
        first_message=greeting,
        max_duration_seconds=2.0,
        max_duration_message="Time is up, goodbye.",
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.EXCEEDED_MAX_DURATION
    assert outcome.duration_seconds >= 2.0
    first, last = [m for m in outcome.messages if m["role"] == "assistant"]
    assert first["interrupted"] is True
    assert last["content"] == "Time is up, goodbye."
    assert 1.9 <= last["secondsFromStart"] < 3.0
    since = outcome.started_monotonic + last["secondsFromStart"]
    assert words(await call.heard(since=since)) == words("Time is up, goodbye.")
    assert call.transport.hung_up


def test_documented_schedule_on_a_manual_clock() -> None:
    """7 s → check 1, +12 s → check 2, +12 s → check 3, +12 s → the end; caller
    speech starts over; agent speech pauses the count."""

    async def scenario() -> None:
        clock = ManualClock()
        fired: list[tuple[str, float]] = []

        async def on_check(n: int) -> None:
            fired.append((f"check {n}", clock.monotonic()))

        async def on_end() -> None:
            fired.append(("end", clock.monotonic()))

        watchdog = SilenceWatchdog(
            SilenceHandling(enabled=True), clock, on_check=on_check, on_end=on_end
        )
        task = asyncio.create_task(watchdog.run())
        await clock.advance(6.9)
        assert fired == []
        await clock.advance(0.1)
        assert fired == [("check 1", 7.0)]
        await clock.advance(5.0)
        watchdog.caller_active()  # the caller answered at 12 s: start over
        watchdog.pause()
        await clock.advance(3.0)  # ... and talked for 3 s
        watchdog.resume()
        await clock.advance(6.9)
        assert fired == [("check 1", 7.0)]
        await clock.advance(0.1)  # 7 s after the caller stopped at 15 s
        assert fired[-1] == ("check 1", 22.0)
        watchdog.pause()  # the agent talks for 2 s
        await clock.advance(2.0)
        watchdog.resume()
        await clock.advance(12.0)
        assert fired[-1] == ("check 2", 36.0)
        await clock.advance(12.0)
        assert fired[-1] == ("check 3", 48.0)
        await clock.advance(11.9)
        assert fired[-1] == ("check 3", 48.0)
        await clock.advance(0.1)
        assert fired[-1] == ("end", 60.0)
        await asyncio.wait_for(task, 1)

    asyncio.run(scenario())
