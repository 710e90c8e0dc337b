"""Anthropic Messages API, streamed.

Wire protocol relied on (Anthropic API reference, "Messages" and "Streaming
Messages", version ``2023-06-01``):

* ``POST {base_url}/v1/messages`` with headers ``x-api-key`` and
  ``anthropic-version: 2023-06-01``; body ``model``, ``max_tokens`` (required),
  ``messages``, ``stream: true``, optional ``system``, ``tools``
  (``{name, description, input_schema}``) and ``temperature``.
* Messages are ``user``/``assistant`` turns whose ``content`` is a list of
  blocks: ``text``, ``tool_use`` (``id``, ``name``, ``input`` object, in
  assistant turns) and ``tool_result`` (``tool_use_id``, ``content``, in user
  turns, placed before any text of that turn). Text blocks must not be empty.
* The stream is SSE: ``message_start`` (``message.usage.input_tokens``), then
  per content block ``content_block_start`` (``text`` or ``tool_use`` with
  ``id``/``name``), ``content_block_delta`` (``text_delta.text`` or
  ``input_json_delta.partial_json``), ``content_block_stop``; then
  ``message_delta`` (``delta.stop_reason``, cumulative ``usage.output_tokens``)
  and ``message_stop``. ``ping`` may come any time; ``error`` carries
  ``{"error": {"type", "message"}}`` (``overloaded_error`` is HTTP 529 when it
  comes as a status instead). Unknown events and block types (thinking,
  citations) are ignored, as the versioning policy asks.

Mapping to :mod:`flireo.providers.llm.base`:

* ``system`` messages are joined into the ``system`` field; ``tool`` messages
  become ``tool_result`` blocks in a user turn; consecutive turns of the same
  role are merged into one (the API wants alternating turns).
* ``json_mode`` adds an instruction to the system prompt (the API has no JSON
  mode).
* A ``tool_use`` block becomes :class:`ToolCallReady` at its
  ``content_block_stop``; invalid JSON input raises a non-retryable
  :class:`ProviderError`, as in the OpenAI-compatible client.
* ``stop_reason``: ``end_turn``/``stop_sequence`` → ``stop``, ``max_tokens`` →
  ``length``, ``tool_use`` → ``tool_calls``, ``refusal`` → ``content_filter``;
  others pass through. Prompt tokens include cache reads and writes.
* Retries: one retry for retryable failures (429, 5xx, 529, timeouts, dropped
  connections) only before the first event was yielded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from flireo.clock import Clock, SystemClock
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
from flireo.providers.llm.openai_compat import parse_arguments
from flireo.providers.llm.sse import drain, open_sse, retry_before_first_event

API_VERSION = "2023-06-01"
JSON_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: in-stream error types and the HTTP status they stand for
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content or "",
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content and message.content.strip():
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        blocks.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in message.tool_calls
        )
    return blocks


def to_anthropic(
    messages: Sequence[ChatMessage], *, json_mode: bool = False
) -> tuple[str | None, list[dict[str, Any]]]:
    """(system prompt, alternating user/assistant turns) for a chat history."""
    system_parts = [m.content for m in messages if m.role == "system" and m.content]
    if json_mode:
        system_parts.append(JSON_INSTRUCTION)
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results must open their user turn
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":
        for block in turns[-1]["content"]:  # a final assistant turn may not end in spaces
            if block["type"] == "text":
                block["text"] = block["text"].rstrip()
    return ("\n\n".join(system_parts) or None), turns


def stream_error(payload: dict[str, Any]) -> ProviderError:
    error = payload.get("error") or {}
    kind = str(error.get("type") or "error")
    status = _ERROR_STATUS.get(kind)
    message = str(error.get("message") or kind)[:300]
    retryable = status is not None and (status == 429 or status >= 500)
    return ProviderError(
        "anthropic", f"stream error ({kind}): {message}", status=status, retryable=retryable
    )


@dataclass
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    json_parts: list[str] = field(default_factory=list)
    initial_input: dict[str, Any] = field(default_factory=dict)


@dataclass
class _StreamState:
    blocks: dict[int, _Block] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stop_reason: str | None = None
    stopped: bool = False

    def take(self, data: dict[str, Any]) -> list[LLMEvent]:
        kind = data.get("type")
        if kind == "message_start":
            self._usage((data.get("message") or {}).get("usage") or {})
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            self.blocks[int(data.get("index", 0))] = _Block(
                kind=str(block.get("type")),
                id=str(block.get("id", "")),
                name=str(block.get("name", "")),
                initial_input=block.get("input") or {},
            )
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [TextDelta(delta["text"])]
            if delta.get("type") == "input_json_delta":
                current = self.blocks.get(int(data.get("index", 0)))
                if current is not None:
                    current.json_parts.append(str(delta.get("partial_json", "")))
        elif kind == "content_block_stop":
            done = self.blocks.pop(int(data.get("index", 0)), None)
            if done is not None and done.kind == "tool_use":
                raw = "".join(done.json_parts)
                arguments = (
                    parse_arguments("anthropic", done.name, raw)
                    if raw.strip()
                    else done.initial_input
                )
                return [ToolCallReady(ToolCall(id=done.id, name=done.name, arguments=arguments))]
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._usage(data.get("usage") or {})
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise stream_error(data)
        return []

    def _usage(self, usage: dict[str, Any]) -> None:
        prompt = sum(
            int(usage.get(key) or 0)
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        if prompt:
            self.prompt_tokens = prompt
        if usage.get("output_tokens") is not None:
            self.completion_tokens = int(usage["output_tokens"])

    def completion(self) -> Completion:
        reason = self.stop_reason or "end_turn"
        return Completion(
            finish_reason=_STOP_REASONS.get(reason, reason),
            usage=TokenUsage(self.prompt_tokens, self.completion_tokens),
        )


class AnthropicLLM:
    """:class:`~flireo.providers.llm.base.LanguageModel` over the Messages API."""

    provider = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str = "https://api.anthropic.com",
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        max_tokens_default: int = 1024,
        connect_timeout: float = 5.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials("anthropic")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._max_tokens_default = max_tokens_default
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._clock = clock or SystemClock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def request_body(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> dict[str, Any]:
        system, turns = to_anthropic(messages, json_mode=json_mode)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens or self._max_tokens_default,
            "messages": turns,
            "stream": True,
        }
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
        if temperature is not None:
            body["temperature"] = temperature
        return body

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> AsyncIterator[LLMEvent]:
        body = self.request_body(
            messages,
            tools=tools,
            temperature=temperature,
            max_tokens=max_tokens,
            json_mode=json_mode,
        )
        attempts = retry_before_first_event(
            lambda: self._stream_once(body),
            retries=self._retries,
            backoff=self._retry_backoff,
            clock=self._clock,
        )
        async with aclosing(attempts) as events:
            async for event in events:
                yield event

    async def _stream_once(self, body: dict[str, Any]) -> AsyncGenerator[LLMEvent, None]:
        state = _StreamState()
        sse = open_sse(
            self._http,
            self.provider,
            f"{self.base_url}/v1/messages",
            headers={
                "x-api-key": self._api_key,
                "anthropic-version": API_VERSION,
                "Accept": "text/event-stream",
            },
            body=body,
            http_timeout=self._timeout,
        )
        async with aclosing(sse) as events:
            async for event in events:
                try:
                    data = json.loads(event.data)
                except ValueError as exc:
                    raise ProviderError(
                        self.provider, f"malformed stream event: {event.data[:200]!r}"
                    ) from exc
                if not isinstance(data, dict):
                    continue
                for item in state.take(data):
                    yield item
                if state.stopped:
                    break
            if not state.stopped:
                raise ProviderError(
                    self.provider, "stream ended before message_stop", retryable=True
                )
            yield state.completion()
            await drain(events)
