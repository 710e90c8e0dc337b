"""The expectation checks on a finished call's evidence (softphone result + call record)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from flireo.softphone import CallResult, TranscriptLine
from flireo.testing.expectations import CallEvidence, check_all
from flireo.testing.suite import Expectation


def evidence(
    record: dict[str, Any] | None, *, by: str = "you", seconds: float = 12.0
) -> CallEvidence:
    result = CallResult("+31850835037", "sip:x@y", answered=True, status=200)
    result.transcript = [
        TranscriptLine("agent", "Hello, this is Anna.", 0.5),
        TranscriptLine("you", "Book me in.", 3.0),
        TranscriptLine("agent", "Booked for Monday at nine.", 5.0),
    ]
    result.hung_up_by = "agent" if by == "agent" else "you"
    result.duration_s = seconds
    return CallEvidence(result, record)


RECORD: dict[str, Any] = {
    "id": "call-1",
    "messages": [
        {"role": "assistant", "content": "Hello, this is Anna."},
        {"role": "user", "content": "Book me in."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "book",
                        "arguments": json.dumps({"day": "monday", "time": "09:00"}),
                    },
                }
            ],
        },
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": "Booked for Monday, 9 o'clock."},
        {"source": "transfer-update", "transfer": {"destination": "+3120", "status": "failed"}},
    ],
    "metrics": {
        "turns": [
            {"trigger": "first-message", "first_audio_ms": 50.0},
            {"trigger": "user", "first_audio_ms": 900.0},
            {"trigger": "tool", "first_audio_ms": 5000.0},
            {"trigger": "dtmf", "first_audio_ms": 1300.0},
        ]
    },
}


async def run(expect: list[dict[str, Any]], ev: CallEvidence) -> list[tuple[bool, str, str]]:
    async with httpx.AsyncClient() as http:
        checks = await check_all(
            [Expectation.model_validate(e) for e in expect], ev, http, judge_endpoint=None
        )
    return [(c.passed, c.name, c.detail) for c in checks]


async def test_says_reads_the_record_by_default_and_the_line_on_request() -> None:
    got = await run(
        [
            {"agent_says": "9 o'clock"},  # the record's exact words
            {"agent_says": {"contains": "9 o'clock", "source": "heard"}},  # Whisper wrote "nine"
            {"agent_says": {"contains": "nine", "source": "heard"}},
            {"agent_says": {"regex": r"monday,\s+9"}},
            {"agent_says": {"contains": "sorry", "never": True}},
            {"agent_says": {"contains": "booked", "never": True}},
        ],
        evidence(RECORD),
    )
    assert [passed for passed, _, _ in got] == [True, False, True, True, True, False]
    assert "agent said (heard): 'Hello, this is Anna. | Booked for Monday at nine.'" in got[1][2]
    assert got[5][1] == "agent_says never contains 'booked'"


async def test_tool_arguments_are_a_subset_match() -> None:
    got = await run(
        [
            {"tool_called": "book"},
            {"tool_called": {"name": "book", "arguments": {"day": "monday"}}},
            {"tool_called": {"name": "book", "arguments": {"day": "tuesday"}}},
            {"tool_called": "cancel"},
        ],
        evidence(RECORD),
    )
    assert [passed for passed, _, _ in got] == [True, True, False, False]
    assert got[2][2] == 'called with {"day": "monday", "time": "09:00"}'
    assert got[3][2] == "not called (tool calls: book)"


async def test_transfer_hang_up_and_latency() -> None:
    got = await run(
        [
            {"transfer_attempted": True},
            {"transfer_attempted": {"destination": "+3120"}},
            {"transfer_attempted": {"destination": "+3199"}},
            {"agent_hangs_up": {"within_s": 20}},
            # caller turns only (user and dtmf): 900 and 1300 ms
            {"latency": {"max_ms": 1300, "p50_ms": 1000}},
            {"latency": {"p95_ms": 1200}},
        ],
        evidence(RECORD, by="agent", seconds=12.0),
    )
    assert [passed for passed, _, _ in got] == [True, True, False, True, True, False]
    assert got[0][2] == "to +3120: failed"
    assert got[2][2] == "tried +3120"
    assert got[5][2] == "p95 over the bound (2 turns: p50 900, p95 1300, max 1300 ms)"
    late = await run([{"agent_hangs_up": {"within_s": 10}}], evidence(RECORD, by="agent"))
    assert late == [(False, "agent_hangs_up within 10 s", "the agent hung up after 12.0 s")]


async def test_without_a_record_the_record_checks_fail_and_say_why() -> None:
    got = await run(
        [
            {"agent_says": "monday"},
            {"tool_called": "book"},
            {"transfer_attempted": True},
            {"latency": {"max_ms": 5000}},
        ],
        evidence(None),
    )
    # agent_says falls back to what was heard; the others need the record
    assert got[0][0] is True
    assert got[0][2].endswith("(heard)")
    assert all(not passed and "no call record" in detail for passed, _, detail in got[1:])
