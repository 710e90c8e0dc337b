"""Post-call analysis against a fake OpenAI-compatible server over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from flireo.analysis import analyze_call
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from tests.fakes.openai_chat import FakeOpenAI, Reply

MESSAGES = [
    {"role": "system", "content": "You book dental appointments."},
    {"role": "assistant", "content": "Hello, Smile Dental, how can I help?"},
    {"role": "user", "content": "I'd like an appointment on Monday."},
    {"role": "assistant", "content": "Monday at ten works. Booked!"},
    {"role": "user", "content": "Great, thanks."},
]
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "integer", "minimum": 1, "maximum": 10},
        "primary_intent": {"enum": ["support", "sales", "appointment", "other"]},
    },
    "required": ["sentiment", "primary_intent"],
}


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAICompatibleLLM]:
    client = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
    )
    yield client
    await client.aclose()


def plan(**parts: object) -> dict[str, object]:
    return {"structuredDataPlan": {"enabled": True, "schema": SCHEMA}, **parts}


async def test_summary_and_valid_structured_data(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(
        Reply.say("The caller booked a Monday appointment."),
        Reply.say(json.dumps({"sentiment": 8, "primary_intent": "appointment"})),
    )
    outcome = await analyze_call(
        plan(), messages=MESSAGES, ended_reason="customer-ended-call", llm=llm
    )
    assert outcome.errors == {}
    assert outcome.summary == "The caller booked a Monday appointment."
    analysis = outcome.analysis()
    assert analysis["sentiment"] == 8
    assert analysis["structuredData"] == {"sentiment": 8, "primary_intent": "appointment"}
    assert analysis["summary"] == outcome.summary
    extraction = fake_openai.requests[1]
    assert extraction["response_format"] == {"type": "json_object"}
    text = json.dumps(extraction["messages"])
    assert "I'd like an appointment on Monday." in text  # {{transcript}}
    assert "customer-ended-call" in text  # {{endedReason}}
    assert '\\"primary_intent\\"' in text  # {{schema}}


async def test_invalid_answer_is_repaired_once(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(
        Reply.say("Summary."),
        Reply.say(json.dumps({"sentiment": 14, "primary_intent": "appointment"})),
        Reply.say(json.dumps({"sentiment": 9, "primary_intent": "appointment"})),
    )
    outcome = await analyze_call(plan(), messages=MESSAGES, ended_reason=None, llm=llm)
    assert outcome.structured_data == {"sentiment": 9, "primary_intent": "appointment"}
    repair = fake_openai.requests[2]["messages"]
    assert repair[-2]["role"] == "assistant"
    assert "sentiment: 14 is greater than the maximum of 10" in repair[-1]["content"]


async def test_still_invalid_is_recorded_and_summary_kept(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(
        Reply.say("Summary."), Reply.say("not json at all"), Reply.say('{"sentiment": 3}')
    )
    outcome = await analyze_call(plan(), messages=MESSAGES, ended_reason=None, llm=llm)
    assert outcome.summary == "Summary."
    assert outcome.structured_data is None
    assert "'primary_intent' is a required property" in outcome.errors["structuredData"]


async def test_vendor_failures(fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM) -> None:
    fake_openai.enqueue(Reply.error(500, "boom"), Reply.error(500, "boom"), Reply.say("Recovered."))
    outcome = await analyze_call(
        {"summaryPlan": {"enabled": True}}, messages=MESSAGES, ended_reason=None, llm=llm
    )
    assert outcome.summary == "Recovered."
    fake_openai.enqueue(Reply.error(401, "bad key"), Reply.error(401, "bad key"))
    outcome = await analyze_call(plan(), messages=MESSAGES, ended_reason=None, llm=llm)
    assert set(outcome.errors) == {"summary", "structuredData"}
    assert "401" in outcome.errors["summary"]


async def test_below_threshold_sends_nothing(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    outcome = await analyze_call(
        plan(minMessagesThreshold=5), messages=MESSAGES, ended_reason=None, llm=llm
    )
    assert outcome.skipped_reason == "4 messages, below minMessagesThreshold 5"
    assert fake_openai.requests == []


async def test_voicemail_summary_needs_no_model(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    messages = [
        {"role": "user", "content": "Please leave a message after the beep."},
        {"role": "assistant", "content": "Hi, this is Acme, please call us back."},
    ]
    outcome = await analyze_call(plan(), messages=messages, ended_reason="voicemail", llm=llm)
    assert (
        outcome.summary
        == "Voicemail detected. Left message: Hi, this is Acme, please call us back."
    )
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("rubric", "answer", "expected"),
    [
        ("PassFail", True, True),
        ("NumericScale", 7, 7),
        ("PercentageScale", 82.5, 82.5),
        ("DescriptiveScale", "Good", "Good"),
        ("LikertScale", "Strongly Agree", "Strongly Agree"),
        (
            "Checklist",
            {"booked": True, "confirmed time": True},
            {"booked": True, "confirmed time": True},
        ),
        ("Matrix", {"politeness": "Excellent"}, {"politeness": "Excellent"}),
        ("AutomaticRubric", {"clarity": 8}, {"clarity": 8}),
    ],
)
async def test_success_rubrics(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM, rubric: str, answer: object, expected: object
) -> None:
    fake_openai.enqueue(Reply.say("Summary."), Reply.say(json.dumps({"result": answer})))
    outcome = await analyze_call(
        {"successEvaluationPlan": {"enabled": True, "rubric": rubric}},
        messages=MESSAGES,
        ended_reason=None,
        llm=llm,
    )
    assert outcome.errors == {}
    assert outcome.analysis()["successEvaluation"] == expected
    prompt = json.dumps(fake_openai.requests[1]["messages"])
    assert rubric in prompt
    assert "You book dental appointments." in prompt  # {{systemPrompt}}


async def test_rubric_answer_of_the_wrong_shape_is_repaired(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(
        Reply.say("Summary."),
        Reply.say(json.dumps({"result": 11})),
        Reply.say(json.dumps({"result": 6})),
    )
    outcome = await analyze_call(
        {"successEvaluationPlan": {"rubric": "NumericScale"}},
        messages=MESSAGES,
        ended_reason=None,
        llm=llm,
    )
    assert outcome.success_evaluation == 6


async def test_custom_plan_messages_with_both_placeholder_spellings(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.say("Short."))
    custom = {
        "summaryPlan": {
            "messages": [
                {
                    "role": "system",
                    "content": "Summarise. Reason: {{ended_reason}} / {{endedReason}} {{other}}",
                },
                {"role": "user", "content": "{{transcript}}"},
            ]
        }
    }
    await analyze_call(custom, messages=MESSAGES, ended_reason="silence-timed-out", llm=llm)
    sent = fake_openai.requests[0]["messages"]
    assert (
        sent[0]["content"] == "Summarise. Reason: silence-timed-out / silence-timed-out {{other}}"
    )
    assert sent[1]["content"].startswith("AI: Hello, Smile Dental")
