"""The call-level parts on the speech-to-speech path, against the local xAI realtime
fake: the ``transfer`` control command, silence handling and the time limit. The
same behaviour as the cascade's tests in ``test_control.py`` and
``test_silence_and_limits.py``; the session asks the model to say fixed lines
verbatim, and the fake speaks them with Piper.
"""

from __future__ import annotations

import httpx

from flireo.engine import ended_reasons
from flireo.engine.config import SilenceHandling
from flireo.engine.events import CallerInterrupted, ControlApplied, TransferAttempted
from flireo.engine.realtime_session import VERBATIM
from flireo.engine.silence import CHECK_PROMPTS, GOODBYE_PROMPT
from flireo.providers.realtime.xai import XaiRealtimeModel
from tests.engine.conftest import make_config, spoken_reply
from tests.engine.harness import agent_record, start_call
from tests.fakes.xai_realtime import FakeXaiRealtime
from tests.speech import words

CHECKS = ("Still there?", "I'm here.", "Hello?")
GREETING = (
    "Hello, this is Anna from the dental practice, thank you for calling us today. "
    "I can help you with appointments, opening hours and prices."
)


def instructions(fake: FakeXaiRealtime) -> list[str | None]:
    """The one-off instructions of each ``response.create`` the session sent."""
    return [
        (e.get("response") or {}).get("instructions") for e in fake.received_of("response.create")
    ]


def system_items(fake: FakeXaiRealtime) -> list[str]:
    """The silent context the session added to the vendor's conversation."""
    return [
        e["item"]["content"][0]["text"]
        for e in fake.received_of("conversation.item.create")
        if e["item"].get("role") == "system"
    ]


async def test_transfer_command_says_the_message_and_hands_the_caller_over(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    line = "I will put you through to a colleague."
    fake_xai_realtime.enqueue_response(await spoken_reply(line))
    call = await start_call(make_config(), http=http, realtime=realtime_model)
    await call.session.control({"type": "transfer", "destination": "+31201234567", "message": line})
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.ASSISTANT_FORWARDED_CALL
    assert call.transport.transfers == ["+31201234567"]
    assert outcome.transferred_to == "+31201234567"
    assert [(t.destination, t.ok) for t in call.of(TransferAttempted)] == [("+31201234567", True)]
    assert words(await call.heard()) == words(line)
    assert call.hung_up_after_the_last_word()  # handed over after the line was played
    assert instructions(fake_xai_realtime) == [VERBATIM.format(line)]
    assert [
        (m["content"], m.get("source")) for m in outcome.messages if m["role"] == "assistant"
    ] == [(line, "transfer")]
    assert [(a.command, a.ok) for a in call.of(ControlApplied)] == [("transfer", True)]


async def test_silent_caller_gets_three_checks_then_goodbye_and_hang_up(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    fake.enqueue_response(*[await spoken_reply(text) for text in (*CHECKS, "Bye!")])
    silence = SilenceHandling(enabled=True, first_check_s=0.5, interval_s=0.7, max_checks=3)
    call = await start_call(make_config(silence=silence), http=http, realtime=realtime_model)
    outcome = await call.finished(within=30)

    assert outcome.ended_reason == ended_reasons.SILENCE_TIMED_OUT
    assert call.transport.hung_up
    # each check is silent context plus a response the model words itself
    assert system_items(fake) == [*CHECK_PROMPTS, GOODBYE_PROMPT]
    assert instructions(fake) == [None] * 4
    assert [t["name"] for t in fake.session["tools"]] == ["endCall"]
    assert agent_record(outcome.messages) == [("assistant", text, []) for text in (*CHECKS, "Bye!")]
    assert words(await call.heard()) == words(" ".join([*CHECKS, "Bye!"]))
    # each check comes after the configured silence, counted from when the agent stopped
    assert call.early_checks(outcome, first_s=0.5, interval_s=0.7) == []
    assert [t.trigger for t in outcome.turns] == ["silence"] * 4


async def test_max_duration_cuts_in_with_its_message_and_ends_the_call(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    limit = "Time is up, goodbye."
    # the greeting comes in real time (40 ms of audio per 40 ms), so it still plays at 2 s
    fake.enqueue_response(await spoken_reply(GREETING, delta_delay=0.04), await spoken_reply(limit))
    config = make_config(
        first_message=GREETING, max_duration_seconds=2.0, max_duration_message=limit
    )
    call = await start_call(config, http=http, realtime=realtime_model)
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.EXCEEDED_MAX_DURATION
    assert outcome.duration_seconds >= 2.0
    first, last = [m for m in outcome.messages if m["role"] == "assistant"]
    assert first["interrupted"] is True
    assert words(GREETING)[: len(words(first["content"]))] == words(first["content"])
    assert len(words(first["content"])) < len(words(GREETING))
    assert (last["content"], last["source"]) == (limit, "goodbye")
    assert last["secondsFromStart"] >= 2.0
    await fake.wait_for("response.cancel")  # the vendor was told to stop the greeting
    assert instructions(fake) == [VERBATIM.format(GREETING), VERBATIM.format(limit)]
    [cut] = call.of(CallerInterrupted)
    assert cut.at - outcome.started_monotonic >= 2.0
    since = outcome.started_monotonic + last["secondsFromStart"]
    assert words(await call.heard(since=since)) == words(limit)
    assert call.transport.hung_up
