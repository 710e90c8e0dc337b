"""The fake vendors refuse what the real APIs refuse and answer non-streaming
requests too (post-call analysis uses those)."""

from __future__ import annotations

import json

import httpx

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai_chat import FakeOpenAI, Reply


def post_openai(fake: FakeOpenAI, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{fake.url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {fake.api_key}"},
    )


def post_anthropic(fake: FakeAnthropic, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{fake.url}/v1/messages",
        json=body,
        headers={"x-api-key": str(fake.api_key), "anthropic-version": "2023-06-01"},
    )


def test_openai_fake_answers_non_streaming_requests_with_a_completion(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.enqueue(Reply.call("score_call", {"score": 4}, usage=(10, 3)))

    response = post_openai(
        fake_openai,
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Score it in JSON"}]},
    )

    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"score": 4}
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}


def test_openai_fake_refuses_json_mode_without_the_word_json(fake_openai: FakeOpenAI) -> None:
    response = post_openai(
        fake_openai,
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Summarise"}],
            "response_format": {"type": "json_object"},
        },
    )

    assert response.status_code == 400
    assert "json" in response.json()["error"]["message"]


def test_openai_fake_refuses_a_tool_result_without_its_call(fake_openai: FakeOpenAI) -> None:
    response = post_openai(
        fake_openai,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_x", "content": "42"},
            ],
        },
    )

    assert response.status_code == 400
    assert "role 'tool'" in response.json()["error"]["message"]


def test_anthropic_fake_answers_non_streaming_requests_with_a_message(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.enqueue(Reply.say('{"summary": "ok"}', usage=(9, 4)))

    response = post_anthropic(
        fake_anthropic,
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Summarise"}],
        },
    )

    assert response.status_code == 200
    data = response.json()
    assert data["type"] == "message"
    assert data["content"] == [{"type": "text", "text": '{"summary": "ok"}'}]
    assert data["usage"] == {"input_tokens": 9, "output_tokens": 4}


def test_anthropic_fake_refuses_an_unanswered_tool_use(fake_anthropic: FakeAnthropic) -> None:
    response = post_anthropic(
        fake_anthropic,
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Find A1"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
                },
                {"role": "user", "content": "well?"},
            ],
        },
    )

    assert response.status_code == 400
    assert "without `tool_result`" in response.json()["error"]["message"]


def test_anthropic_fake_requires_the_version_header(fake_anthropic: FakeAnthropic) -> None:
    response = httpx.post(
        f"{fake_anthropic.url}/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": str(fake_anthropic.api_key)},
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
