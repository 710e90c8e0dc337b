"""One streaming client for every OpenAI chat-completions server.

OpenAI, Groq, xAI (text), Mistral, and local servers (Ollama, vLLM, llama.cpp
server) differ only by base URL, key and a few quirks. Wire protocol relied on
(OpenAI API reference, "chat completions" + "streaming"):

* ``POST {base_url}/chat/completions`` with ``stream: true``; the answer is an
  SSE stream of ``chat.completion.chunk`` objects ending with ``data: [DONE]``.
  Text arrives in ``choices[0].delta.content``; tool calls in
  ``choices[0].delta.tool_calls``, each fragment carrying an ``index`` (the
  first fragment of a call also has ``id`` and ``function.name``, later ones
  append to ``function.arguments``). ``finish_reason`` closes the choice.
* ``stream_options: {"include_usage": true}`` adds a last chunk with empty
  ``choices`` and ``usage``. Mistral rejects that field (HTTP 422
  ``extra_forbidden``) but reports usage on its last chunk anyway, so it is not
  sent for ``provider="mistral"``; Groq may report usage under
  ``x_groq.usage``. A server that sends no usage yields zero counts.
* A failure after the stream started arrives as ``data: {"error": {...}}``.
* Assistant tool calls go back as ``{"role": "assistant", "tool_calls": [{"id",
  "type": "function", "function": {"name", "arguments": "<json>"}}]}`` and
  results as ``{"role": "tool", "tool_call_id", "content"}``.
* ``json_mode`` sends ``response_format: {"type": "json_object"}``. OpenAI
  refuses that unless a message mentions JSON, so a short system line asking
  for a JSON object is added when none does.
* ``max_tokens`` is sent as ``max_completion_tokens`` to OpenAI (its
  reasoning models reject ``max_tokens``) and as ``max_tokens`` elsewhere.

Behaviour decided here:

* Tool calls are emitted as :class:`ToolCallReady` when their choice finishes
  (or the stream ends), in index order, with arguments parsed as JSON (empty
  arguments mean ``{}``). Arguments that are not a JSON object raise a
  non-retryable :class:`ProviderError`: calling a tool with guessed arguments
  is worse than failing the turn. A ``"stop"`` finish with tool calls (older
  Ollama) is reported as ``"tool_calls"``.
* Retries: one retry after ``retry_backoff`` seconds for retryable failures
  (429, 5xx, timeouts, dropped connections) only while no event has been
  yielded; after the first token, failures are raised unchanged.
* Timeouts: ``connect_timeout`` for the TCP/TLS connect, ``timeout`` as the
  longest wait for any byte (time to first byte and stalls between chunks).
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
from flireo.providers.http_errors import error_for_status
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
from flireo.providers.llm.sse import drain, open_sse, retry_before_first_event

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "xai": "https://api.x.ai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "ollama": "http://localhost:11434/v1",
}

#: hosted vendors refuse anonymous requests; local servers do not need a key
KEY_REQUIRED = frozenset({"openai", "groq", "xai", "mistral"})
_NO_STREAM_OPTIONS = frozenset({"mistral"})
_JSON_HINT = "Respond with a single JSON object."


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content or "",
        }
    if message.role == "assistant" and message.tool_calls:
        wire: dict[str, Any] = {"role": "assistant"}
        if message.content:
            wire["content"] = message.content
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
        return wire
    return {"role": message.role, "content": message.content or ""}


def parse_arguments(provider: str, name: str, raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(
            provider, f"tool call {name!r} has invalid JSON arguments: {raw[:200]!r}"
        ) from exc
    if not isinstance(value, dict):
        raise ProviderError(provider, f"tool call {name!r} arguments are not a JSON object")
    return value


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """What one streamed answer has accumulated so far."""

    provider: str
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    emitted_calls: bool = False
    finish_reason: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)

    def take_usage(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self.usage = TokenUsage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )

    def add_tool_fragments(self, fragments: list[dict[str, Any]]) -> None:
        for fragment in fragments:
            index = fragment.get("index")
            if not isinstance(index, int):  # servers that send whole calls without an index
                last = max(self.calls, default=-1)
                index = last + 1 if fragment.get("id") or last < 0 else last
            call = self.calls.setdefault(index, _PartialCall())
            if fragment.get("id"):
                call.id = fragment["id"]
            function = fragment.get("function") or {}
            if function.get("name") and not call.name:
                call.name = function["name"]
            if function.get("arguments"):
                call.arguments.append(function["arguments"])

    def ready_calls(self) -> list[ToolCallReady]:
        ready = [
            ToolCallReady(
                ToolCall(
                    id=call.id,
                    name=call.name,
                    arguments=parse_arguments(self.provider, call.name, "".join(call.arguments)),
                )
            )
            for _, call in sorted(self.calls.items())
        ]
        self.calls.clear()
        self.emitted_calls = self.emitted_calls or bool(ready)
        return ready

    def take_chunk(self, data: str) -> list[LLMEvent]:
        """Events carried by one ``chat.completion.chunk`` payload."""
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ProviderError(self.provider, f"malformed stream chunk: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            raise stream_error(self.provider, chunk)
        self.take_usage(chunk)
        out: list[LLMEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.append(TextDelta(delta["content"]))
            if delta.get("tool_calls"):
                self.add_tool_fragments(delta["tool_calls"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                out.extend(self.ready_calls())
        return out

    def completion(self) -> Completion:
        reason = self.finish_reason or "stop"
        if reason == "stop" and self.emitted_calls:
            reason = "tool_calls"
        return Completion(finish_reason=reason, usage=self.usage)


def stream_error(provider: str, payload: dict[str, Any]) -> ProviderError:
    """A ``{"error": {...}}`` payload received inside a 200 stream."""
    error = payload.get("error")
    if not isinstance(error, dict):
        return ProviderError(provider, f"stream error: {str(error)[:300]}")
    code = error.get("code")
    status = code if isinstance(code, int) else None
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or "unknown error")[:300]
    if status is not None:
        err = error_for_status(
            provider, status, json.dumps({"error": {"message": message}}).encode()
        )
        return ProviderError(
            provider, f"stream error: {err.message}", status=status, retryable=err.retryable
        )
    retryable = kind in {"server_error", "api_error", "overloaded_error", "rate_limit_error"}
    return ProviderError(
        provider, f"stream error ({kind or 'unknown'}): {message}", retryable=retryable
    )


class OpenAICompatibleLLM:
    """:class:`~flireo.providers.llm.base.LanguageModel` over OpenAI chat completions.

    Cancelling the task that consumes :meth:`stream` closes the HTTP response at
    once; a consumer that stops iterating early should ``aclose()`` the stream
    (``contextlib.aclosing``) for the same effect. One ``httpx.AsyncClient`` is
    kept (made here unless ``http`` is given) so turns reuse the connection;
    :meth:`aclose` closes a client made here.
    """

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        api_key: str | None,
        base_url: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        connect_timeout: float = 5.0,
        retries: int = 1,
        retry_backoff: float = 0.25,
        stream_usage: bool | None = None,
        clock: Clock | None = None,
        key_required: bool | None = None,
    ) -> None:
        """``key_required``: refuse to start without ``api_key`` (default: for the
        hosted vendors of :data:`KEY_REQUIRED`; a server an agent names by
        ``base_url`` is called without a key when none is set)."""
        if key_required is None:
            key_required = provider in KEY_REQUIRED
        if not api_key and key_required:
            raise MissingCredentials(provider)
        self.provider = provider
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._extra_body = dict(extra_body or {})
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._stream_usage = (
            stream_usage if stream_usage is not None else provider not in _NO_STREAM_OPTIONS
        )
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
        wire_messages = [message_to_wire(m) for m in messages]
        if json_mode and not any("json" in (m.content or "").lower() for m in messages):
            wire_messages.insert(0, {"role": "system", "content": _JSON_HINT})
        body: dict[str, Any] = {"model": self.model, "messages": wire_messages, "stream": True}
        if self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [tool_to_wire(t) for t in tools]
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            key = "max_completion_tokens" if self.provider == "openai" else "max_tokens"
            body[key] = max_tokens
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        body.update(self._extra_body)
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

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
        try:
            async with aclosing(attempts) as events:
                async for event in events:
                    yield event
        except ProviderError as exc:
            if exc.status in (401, 403) and not self._api_key:
                hint = (
                    f"{exc.message} (no key was sent: store this server's key with "
                    f'POST /byok {{"provider": "{self.provider}", "api_key": ...}})'
                )
                raise ProviderError(self.provider, hint, status=exc.status) from exc
            raise

    async def _stream_once(self, body: dict[str, Any]) -> AsyncGenerator[LLMEvent, None]:
        state = _StreamState(self.provider)
        sse = open_sse(
            self._http,
            self.provider,
            f"{self.base_url}/chat/completions",
            headers=self._headers(),
            body=body,
            http_timeout=self._timeout,
        )
        async with aclosing(sse) as events:
            done = False
            async for event in events:
                if event.data.strip() == "[DONE]":
                    done = True
                    break
                for item in state.take_chunk(event.data):
                    yield item
            if not done and state.finish_reason is None:
                raise ProviderError(
                    self.provider, "stream ended before the answer finished", retryable=True
                )
            for ready in state.ready_calls():
                yield ready
            yield state.completion()
            if done:
                await drain(events)
