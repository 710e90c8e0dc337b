from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flireo.clock import ManualClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.llm.anthropic import JSON_INSTRUCTION, AnthropicLLM
from flireo.providers.llm.base import (
    ChatMessage,
    Completion,
    TokenUsage,
    ToolCall,
    ToolCallReady,
    ToolSpec,
)
from tests.fakes.anthropic import FakeAnthropic, FakeToolCall, Reply
from tests.providers.llm.streams import (
    calls_of,
    collect,
    completion_of,
    run_with_clock,
    text_of,
)

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)
HELLO = [ChatMessage("system", "You are a phone agent."), ChatMessage("user", "Hello?")]


@pytest.fixture
async def llm(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicLLM]:
    client = AnthropicLLM(
        model="claude-sonnet-4-5",
        api_key=fake_anthropic.api_key,
        base_url=fake_anthropic.url,
        timeout=5.0,
    )
    yield client
    await client.aclose()


async def test_streamed_text_usage_and_stop_reason(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(Reply.say("Hello, you reached Acme support.", usage=(31, 7)))

    events = await collect(llm.stream(HELLO))

    assert text_of(events) == "Hello, you reached Acme support."
    assert completion_of(events) == Completion("stop", TokenUsage(31, 7))
    headers = fake_anthropic.headers[-1]
    assert headers["x-api-key"] == fake_anthropic.api_key
    assert headers["anthropic-version"] == "2023-06-01"
    body = fake_anthropic.last_request
    assert body["stream"] is True
    assert body["max_tokens"] == 1024
    assert body["system"] == "You are a phone agent."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello?"}]}]


async def test_first_delta_arrives_while_the_server_is_still_streaming(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(Reply.say("One two three", hold_after=1))
    stream = llm.stream(HELLO)

    first = await asyncio.wait_for(anext(stream), 5)

    assert fake_anthropic.completed == 0
    fake_anthropic.release()
    assert text_of([first, *await collect(stream)]) == "One two three"


async def test_parallel_tool_use_blocks_become_tool_calls(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(
        Reply.calls(
            FakeToolCall("lookup_order", {"order_id": "A1"}, id="toolu_1"),
            FakeToolCall("lookup_order", {"order_id": "B2"}, id="toolu_2"),
            text="One moment.",
        )
    )

    events = await collect(llm.stream(HELLO, tools=[LOOKUP]))

    assert text_of(events) == "One moment."
    assert calls_of(events) == [
        ToolCallReady(ToolCall("toolu_1", "lookup_order", {"order_id": "A1"})),
        ToolCallReady(ToolCall("toolu_2", "lookup_order", {"order_id": "B2"})),
    ]
    assert completion_of(events).finish_reason == "tool_calls"
    assert fake_anthropic.last_request["tools"] == [
        {"name": "lookup_order", "description": "Find an order", "input_schema": LOOKUP.parameters}
    ]


async def test_multi_turn_tool_use_is_sent_as_alternating_anthropic_turns(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    history = [
        ChatMessage("system", "You are a phone agent."),
        ChatMessage("user", "Where are orders A1 and B2?"),
        ChatMessage(
            "assistant",
            "Checking both.",
            tool_calls=[
                ToolCall("toolu_1", "lookup_order", {"order_id": "A1"}),
                ToolCall("toolu_2", "lookup_order", {"order_id": "B2"}),
            ],
        ),
        ChatMessage("tool", "shipped", tool_call_id="toolu_1", name="lookup_order"),
        ChatMessage("tool", "packing", tool_call_id="toolu_2", name="lookup_order"),
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "And hurry please."),
    ]
    fake_anthropic.enqueue("A1 shipped, B2 is being packed.")

    events = await collect(llm.stream(history, tools=[LOOKUP], temperature=0.3, max_tokens=300))

    assert text_of(events) == "A1 shipped, B2 is being packed."
    assert fake_anthropic.last_request == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "stream": True,
        "temperature": 0.3,
        "system": "You are a phone agent.\n\nBe brief.",
        "tools": [
            {
                "name": "lookup_order",
                "description": "Find an order",
                "input_schema": LOOKUP.parameters,
            }
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Where are orders A1 and B2?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "lookup_order",
                        "input": {"order_id": "A1"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "lookup_order",
                        "input": {"order_id": "B2"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "packing"},
                    {"type": "text", "text": "And hurry please."},
                ],
            },
        ],
    }


async def test_json_mode_is_an_instruction_in_the_system_prompt(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue('{"booked": true}')

    events = await collect(llm.stream(HELLO, json_mode=True))

    assert text_of(events) == '{"booked": true}'
    assert fake_anthropic.last_request["system"] == f"You are a phone agent.\n\n{JSON_INSTRUCTION}"


async def test_max_tokens_stop_reason_is_reported_as_length(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(Reply.say("Cut off", finish_reason="max_tokens"))

    events = await collect(llm.stream(HELLO))

    assert completion_of(events).finish_reason == "length"


async def test_wrong_key_is_a_non_retryable_401(fake_anthropic: FakeAnthropic) -> None:
    llm = AnthropicLLM(model="claude-sonnet-4-5", api_key="bad", base_url=fake_anthropic.url)

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert (err.value.status, err.value.retryable) == (401, False)
    assert "invalid x-api-key" in err.value.message
    assert len(fake_anthropic.requests) == 1
    await llm.aclose()


async def test_overloaded_529_is_retried_once_before_the_first_token(
    fake_anthropic: FakeAnthropic,
) -> None:
    clock = ManualClock()
    llm = AnthropicLLM(
        model="claude-sonnet-4-5",
        api_key=fake_anthropic.api_key,
        base_url=fake_anthropic.url,
        clock=clock,
    )
    fake_anthropic.enqueue(Reply.error(529, "Overloaded"), "Second attempt.")

    events = await run_with_clock(collect(llm.stream(HELLO)), clock)

    assert text_of(events) == "Second attempt."
    assert len(fake_anthropic.requests) == 2
    await llm.aclose()


async def test_rate_limit_twice_is_raised_as_retryable(fake_anthropic: FakeAnthropic) -> None:
    clock = ManualClock()
    llm = AnthropicLLM(
        model="claude-sonnet-4-5",
        api_key=fake_anthropic.api_key,
        base_url=fake_anthropic.url,
        clock=clock,
    )
    fake_anthropic.enqueue(Reply.error(429, "rate limited"), Reply.error(429, "rate limited"))

    with pytest.raises(ProviderError) as err:
        await run_with_clock(collect(llm.stream(HELLO)), clock)

    assert (err.value.status, err.value.retryable) == (429, True)
    assert len(fake_anthropic.requests) == 2
    await llm.aclose()


async def test_server_error_is_retryable(fake_anthropic: FakeAnthropic) -> None:
    llm = AnthropicLLM(
        model="claude-sonnet-4-5",
        api_key=fake_anthropic.api_key,
        base_url=fake_anthropic.url,
        retries=0,
    )
    fake_anthropic.enqueue(Reply.error(500, "Internal server error"))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert (err.value.status, err.value.retryable) == (500, True)
    await llm.aclose()


async def test_overloaded_error_event_mid_stream_is_raised_without_retry(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(
        Reply.stream_error("Sure thing", after=1, error_type="overloaded_error"), "never used"
    )

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert (err.value.status, err.value.retryable) == (529, True)
    assert "overloaded_error" in err.value.message
    assert len(fake_anthropic.requests) == 1


async def test_mid_stream_disconnect_is_a_provider_error(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(Reply.disconnect("I will transfer you", after=2))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert "interrupted" in err.value.message
    assert len(fake_anthropic.requests) == 1


async def test_stall_times_out_and_the_server_sees_the_disconnect(
    fake_anthropic: FakeAnthropic,
) -> None:
    llm = AnthropicLLM(
        model="claude-sonnet-4-5",
        api_key=fake_anthropic.api_key,
        base_url=fake_anthropic.url,
        timeout=0.3,
    )
    fake_anthropic.enqueue(Reply.stall("Hmm", after=1))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert "timed out" in err.value.message
    await fake_anthropic.wait_for_disconnects(1)
    await llm.aclose()


async def test_cancelling_the_consumer_closes_the_http_stream(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    fake_anthropic.enqueue(Reply.say("This will be cut short", hold_after=1))
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream(HELLO):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 5)
    task.cancel()

    await fake_anthropic.wait_for_disconnects(1)
    assert fake_anthropic.completed == 0


async def test_consecutive_turns_reuse_one_connection(
    fake_anthropic: FakeAnthropic, llm: AnthropicLLM
) -> None:
    await collect(llm.stream(HELLO))
    await collect(llm.stream(HELLO))

    ports = fake_anthropic.client_ports
    assert len(ports) == 2
    assert ports[0] == ports[1]


def test_missing_key_is_missing_credentials() -> None:
    with pytest.raises(MissingCredentials) as err:
        AnthropicLLM(model="claude-sonnet-4-5", api_key=None)
    assert err.value.provider == "anthropic"
