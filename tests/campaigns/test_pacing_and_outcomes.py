"""Pure parts of the dialer: token bucket, capacity, outcome → lead status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flireo.campaigns.capacity import ActiveCalls, Limits, free_slots
from flireo.campaigns.outcomes import after_attempt, classify
from flireo.campaigns.pacing import TokenBucket
from flireo.campaigns.personalization import call_overrides
from flireo.clock import ManualClock
from flireo.domain.calls import DialEndedReason


async def test_token_bucket_paces_to_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=4.0, burst=2.0)
    assert bucket.available() == 1  # starts with one token
    bucket.take(1)
    assert bucket.seconds_until(1) == pytest.approx(0.25)
    taken = 0
    for _ in range(40):  # 10 s in 0.25 s steps
        await clock.advance(0.25)
        n = bucket.available()
        bucket.take(n)
        taken += n
    assert taken == 40
    await clock.advance(60)
    assert bucket.available() == 2  # never more than the burst


def test_free_slots_respects_every_cap_and_the_inbound_reserve() -> None:
    idle = ActiveCalls(campaign=0, trunk=0, org=0)
    assert free_slots(Limits(campaign=5, trunk=None, org=None), idle) == 5
    assert free_slots(Limits(campaign=5, trunk=3, org=None), idle) == 3
    assert free_slots(Limits(campaign=5, trunk=None, org=4, reserved_inbound=2), idle) == 2
    busy = ActiveCalls(campaign=1, trunk=2, org=3)
    assert free_slots(Limits(campaign=5, trunk=10, org=6, reserved_inbound=1), busy) == 2
    assert free_slots(Limits(campaign=1, trunk=None, org=None), busy) == 0
    assert free_slots(Limits(campaign=9, trunk=None, org=3, reserved_inbound=1), busy) == 0


def test_outcomes_of_finished_calls() -> None:
    assert classify(DialEndedReason.BUSY, answered=False) == "busy"
    assert classify(DialEndedReason.NO_ANSWER, answered=False) == "no-answer"
    assert classify(DialEndedReason.FAILED, answered=False) == "failed"
    assert classify(DialEndedReason.INTERRUPTED, answered=False) == "failed"
    assert classify("voicemail", answered=True) == "voicemail"
    assert classify("customer-ended-call", answered=True) == "completed"
    assert classify("silence-timed-out", answered=True) == "completed"


def test_retry_until_max_attempts_and_answered_is_final() -> None:
    ended = datetime(2026, 5, 4, 10, tzinfo=UTC)
    again = after_attempt(
        "busy", attempts=1, max_attempts=3, retry_delay_seconds=600, ended_at=ended
    )
    assert (again.status, again.next_attempt_at) == ("pending", ended + timedelta(minutes=10))
    last = after_attempt(
        "no-answer", attempts=3, max_attempts=3, retry_delay_seconds=600, ended_at=ended
    )
    assert (last.status, last.next_attempt_at) == ("no-answer", None)
    done = after_attempt(
        "completed", attempts=1, max_attempts=3, retry_delay_seconds=600, ended_at=ended
    )
    assert done.status == "completed"
    stop = after_attempt(
        "voicemail",
        attempts=1,
        max_attempts=3,
        retry_delay_seconds=600,
        ended_at=ended,
        do_not_call=True,
    )
    assert stop.status == "do-not-call"


def test_lead_variables_fill_the_prompt_and_greeting() -> None:
    overrides, greeting = call_overrides(
        "You call {{name}} of {{company}} about {{topic}}.",
        "Hi {{ name }}!",
        {"name": "John", "company": "Acme Corp"},
    )
    assert overrides["system_message"] == "You call John of Acme Corp about {{topic}}."
    assert greeting == overrides["firstMessage"] == "Hi John!"
    assert call_overrides(None, None, {})[1] is None
