from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flireo.clock import ManualClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.llm.base import (
    ChatMessage,
    Completion,
    LLMEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallReady,
    ToolSpec,
)
from flireo.providers.llm.openai_compat import DEFAULT_BASE_URLS, OpenAICompatibleLLM
from tests.fakes.openai_chat import (
    QUOTA_MESSAGE,
    FakeOpenAI,
    FakeToolCall,
    Reply,
    last_user_text,
)
from tests.fakes.server import free_port, serve
from tests.providers.llm.streams import (
    calls_of,
    collect,
    completion_of,
    run_with_clock,
    text_of,
)

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
HELLO = [ChatMessage("system", "You are a phone agent."), ChatMessage("user", "Hello?")]


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAICompatibleLLM]:
    client = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        timeout=5.0,
    )
    yield client
    await client.aclose()


async def test_streamed_text_arrives_as_deltas_and_ends_with_usage(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.say("Good morning, this is Flireo.", usage=(42, 6)))

    events = await collect(llm.stream(HELLO))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 5
    assert text_of(events) == "Good morning, this is Flireo."
    assert completion_of(events) == Completion("stop", TokenUsage(42, 6))
    body = fake_openai.last_request
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake_openai.headers[-1]["authorization"] == f"Bearer {fake_openai.api_key}"


async def test_first_delta_arrives_while_the_server_is_still_streaming(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.say("One two three", hold_after=1))
    stream = llm.stream(HELLO)

    first = await asyncio.wait_for(anext(stream), 5)

    assert first == TextDelta("One")
    assert fake_openai.completed == 0  # the server is parked mid-answer
    fake_openai.release()
    rest = await collect(stream)
    assert text_of([first, *rest]) == "One two three"
    assert fake_openai.completed == 1


async def test_parallel_tool_calls_are_emitted_in_order_with_parsed_arguments(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(
        Reply.calls(
            FakeToolCall("get_weather", {"city": "Paris"}, id="call_a"),
            FakeToolCall("get_weather", {"city": "Oslo", "units": ["c", "f"]}, id="call_b"),
            text="Let me check.",
        )
    )

    events = await collect(llm.stream(HELLO, tools=[WEATHER]))

    assert text_of(events) == "Let me check."
    assert calls_of(events) == [
        ToolCallReady(ToolCall("call_a", "get_weather", {"city": "Paris"})),
        ToolCallReady(ToolCall("call_b", "get_weather", {"city": "Oslo", "units": ["c", "f"]})),
    ]
    assert completion_of(events).finish_reason == "tool_calls"


async def test_multi_turn_tool_use_is_sent_in_openai_shape(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    history = [
        ChatMessage("system", "You are a phone agent."),
        ChatMessage("assistant", "Hi, how can I help?"),
        ChatMessage("user", "Weather in Paris and Oslo?"),
        ChatMessage(
            "assistant",
            None,
            tool_calls=[
                ToolCall("call_a", "get_weather", {"city": "Paris"}),
                ToolCall("call_b", "get_weather", {"city": "Oslo"}),
            ],
        ),
        ChatMessage("tool", "18C sunny", tool_call_id="call_a", name="get_weather"),
        ChatMessage("tool", "4C rain", tool_call_id="call_b", name="get_weather"),
    ]
    fake_openai.enqueue("Paris is sunny, Oslo is rainy.")

    events = await collect(llm.stream(history, tools=[WEATHER], temperature=0.2, max_tokens=200))

    assert text_of(events) == "Paris is sunny, Oslo is rainy."
    assert fake_openai.last_request == {
        "model": "gpt-4o-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_completion_tokens": 200,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        "messages": [
            {"role": "system", "content": "You are a phone agent."},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "18C sunny"},
            {"role": "tool", "tool_call_id": "call_b", "content": "4C rain"},
        ],
    }


async def test_json_mode_asks_for_a_json_object(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue('{"sentiment": "positive"}')
    messages = [ChatMessage("user", "Rate the call sentiment.")]

    events = await collect(llm.stream(messages, json_mode=True))

    assert text_of(events) == '{"sentiment": "positive"}'
    body = fake_openai.last_request
    assert body["response_format"] == {"type": "json_object"}
    # OpenAI refuses json_object unless a message mentions JSON: a hint is added
    assert body["messages"][0] == {
        "role": "system",
        "content": "Respond with a single JSON object.",
    }


async def test_server_without_usage_gives_zero_counts(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.say("Fine.", send_usage=False))

    events = await collect(llm.stream(HELLO))

    assert completion_of(events) == Completion("stop", TokenUsage(0, 0))


async def test_keepalive_comments_between_chunks_are_ignored(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.keepalive_comments = True
    fake_openai.enqueue("Still here.")

    assert text_of(await collect(llm.stream(HELLO))) == "Still here."


async def test_consecutive_turns_reuse_one_connection(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    await collect(llm.stream(HELLO))
    await collect(llm.stream(HELLO))

    ports = fake_openai.client_ports
    assert len(ports) == 2
    assert ports[0] == ports[1]


async def test_invalid_tool_arguments_fail_the_turn(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.call("get_weather", '{"city": "Par'))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO, tools=[WEATHER]))

    assert "invalid JSON arguments" in err.value.message
    assert err.value.retryable is False


async def test_wrong_key_is_a_non_retryable_401(fake_openai: FakeOpenAI) -> None:
    llm = OpenAICompatibleLLM(
        provider="openai", model="gpt-4o-mini", api_key="sk-wrong", base_url=fake_openai.url
    )

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert (err.value.status, err.value.retryable) == (401, False)
    assert "Incorrect API key" in err.value.message
    assert len(fake_openai.requests) == 1  # never retried
    await llm.aclose()


async def test_rate_limit_is_retried_once_after_a_backoff(fake_openai: FakeOpenAI) -> None:
    clock = ManualClock()
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        retry_backoff=0.5,
        clock=clock,
    )
    fake_openai.enqueue(Reply.error(429, "Rate limit reached"), "Second try worked.")

    events = await run_with_clock(collect(llm.stream(HELLO)), clock)

    assert text_of(events) == "Second try worked."
    assert len(fake_openai.requests) == 2
    assert clock.monotonic() >= 0.5
    await llm.aclose()


async def test_rate_limit_twice_is_raised_as_retryable(fake_openai: FakeOpenAI) -> None:
    clock = ManualClock()
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        clock=clock,
    )
    fake_openai.enqueue(Reply.error(429, "slow down"), Reply.error(429, "slow down"), "never")

    with pytest.raises(ProviderError) as err:
        await run_with_clock(collect(llm.stream(HELLO)), clock)

    assert (err.value.status, err.value.retryable) == (429, True)
    assert len(fake_openai.requests) == 2
    await llm.aclose()


async def test_rate_limit_for_an_exhausted_quota_is_raised_at_once(fake_openai: FakeOpenAI) -> None:
    clock = ManualClock()
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        clock=clock,
    )
    fake_openai.enqueue(Reply.error(429, QUOTA_MESSAGE, "insufficient_quota"), "never")

    with pytest.raises(ProviderError) as err:
        await run_with_clock(collect(llm.stream(HELLO)), clock)

    assert (err.value.status, err.value.retryable) == (429, False)
    assert len(fake_openai.requests) == 1  # credit does not come back in a second
    await llm.aclose()


async def test_server_error_is_retryable(fake_openai: FakeOpenAI) -> None:
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        retries=0,
    )
    fake_openai.enqueue(Reply.error(500, "The server had an error"))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert (err.value.status, err.value.retryable) == (500, True)
    await llm.aclose()


async def test_disconnect_after_output_started_is_raised_not_retried(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.disconnect("Your order is on its way", after=2), "Retried!")
    seen: list[LLMEvent] = []

    async def consume() -> None:
        async for event in llm.stream(HELLO):
            seen.append(event)

    with pytest.raises(ProviderError) as err:
        await consume()

    assert text_of(seen) == "Your order"
    assert "interrupted" in err.value.message
    assert len(fake_openai.requests) == 1


async def test_stall_between_chunks_times_out(fake_openai: FakeOpenAI) -> None:
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        timeout=0.3,
    )
    fake_openai.enqueue(Reply.stall("Let me think", after=1))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert "timed out" in err.value.message
    assert len(fake_openai.requests) == 1  # output had started: no retry
    await fake_openai.wait_for_disconnects(1)
    await llm.aclose()


async def test_stall_before_the_first_token_is_retried(fake_openai: FakeOpenAI) -> None:
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        timeout=0.3,
        retry_backoff=0.0,
    )
    fake_openai.enqueue(Reply.stall(after=0), "Back again.")

    events = await collect(llm.stream(HELLO))

    assert text_of(events) == "Back again."
    assert len(fake_openai.requests) == 2
    await llm.aclose()


async def test_error_event_inside_the_stream_is_raised(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.stream_error("Hello there", after=1))

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert "server_error" in err.value.message
    assert err.value.retryable is True


async def test_unreachable_server_is_a_retryable_connection_error() -> None:
    llm = OpenAICompatibleLLM(
        provider="ollama",
        model="llama3",
        api_key=None,
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        retries=0,
    )

    with pytest.raises(ProviderError) as err:
        await collect(llm.stream(HELLO))

    assert err.value.retryable is True
    assert "connection failed" in err.value.message
    await llm.aclose()


async def test_cancelling_the_consumer_closes_the_http_stream(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.enqueue(Reply.say("This answer will be interrupted", hold_after=1))
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream(HELLO):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 5)
    task.cancel()

    await fake_openai.wait_for_disconnects(1)
    assert fake_openai.completed == 0
    assert task.cancelled()


async def test_rule_based_responder_answers_by_last_user_message(
    fake_openai: FakeOpenAI, llm: OpenAICompatibleLLM
) -> None:
    fake_openai.responder = lambda req: (
        Reply.call("end_call") if "bye" in last_user_text(req) else None
    )

    hello = await collect(llm.stream([ChatMessage("user", "hi")]))
    bye = await collect(llm.stream([ChatMessage("user", "ok bye")]))

    assert text_of(hello) == "Sure, I can help with that."
    assert [c.call.name for c in calls_of(bye)] == ["end_call"]


def test_hosted_provider_without_key_is_missing_credentials() -> None:
    with pytest.raises(MissingCredentials) as err:
        OpenAICompatibleLLM(
            provider="groq", model="llama", api_key=None, base_url=DEFAULT_BASE_URLS["groq"]
        )
    assert err.value.provider == "groq"


def test_known_vendors_have_their_documented_base_urls() -> None:
    assert DEFAULT_BASE_URLS == {
        "openai": "https://api.openai.com/v1",
        "groq": "https://api.groq.com/openai/v1",
        "xai": "https://api.x.ai/v1",
        "mistral": "https://api.mistral.ai/v1",
        "ollama": "http://localhost:11434/v1",
    }


@pytest.mark.parametrize(
    ("provider", "model", "sends_stream_options"),
    [
        ("groq", "llama-3.3-70b-versatile", True),
        ("xai", "grok-4-fast", True),
        ("mistral", "mistral-small-latest", False),
        ("ollama", "llama3.2", True),
        ("openai-compatible", "Qwen/Qwen2.5-7B-Instruct", True),
    ],
)
async def test_other_vendors_are_only_configuration(
    provider: str, model: str, sends_stream_options: bool
) -> None:
    key = None if provider in ("ollama", "openai-compatible") else f"{provider}-key"
    fake = FakeOpenAI(api_key=key, usage_on_last_chunk=not sends_stream_options)
    fake.enqueue(Reply.call("get_weather", {"city": "Rome"}, text="Checking.", usage=(9, 4)))
    with serve(fake.app()) as srv:
        llm = OpenAICompatibleLLM(
            provider=provider, model=model, api_key=key, base_url=f"{srv.url}/v1/"
        )
        events = await collect(llm.stream(HELLO, tools=[WEATHER], max_tokens=50))
        await llm.aclose()

    assert text_of(events) == "Checking."
    assert calls_of(events)[0].call.arguments == {"city": "Rome"}
    assert completion_of(events) == Completion("tool_calls", TokenUsage(9, 4))
    body = fake.last_request
    assert body["model"] == model
    assert ("stream_options" in body) is sends_stream_options
    assert body["max_tokens"] == 50
    assert ("authorization" in fake.headers[-1]) is (key is not None)


async def test_extra_body_is_merged_into_the_request(fake_openai: FakeOpenAI) -> None:
    llm = OpenAICompatibleLLM(
        provider="openai",
        model="gpt-4o-mini",
        api_key=fake_openai.api_key,
        base_url=fake_openai.url,
        extra_body={"seed": 7, "parallel_tool_calls": False},
    )

    await collect(llm.stream(HELLO))

    assert fake_openai.last_request["seed"] == 7
    assert fake_openai.last_request["parallel_tool_calls"] is False
    await llm.aclose()
