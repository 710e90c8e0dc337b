"""A local Anthropic Messages API speaking the real streaming protocol.

Usage in a test (import the fixture into your package's ``conftest.py`` with
``from tests.fakes.anthropic import fake_anthropic  # noqa: F401``)::

    async def test_claude_calls_a_tool(fake_anthropic: FakeAnthropic) -> None:
        fake_anthropic.enqueue(Reply.call("lookup_order", {"order_id": "A1"}, text="One moment."))
        llm = AnthropicLLM(model="claude-sonnet-4-5", api_key=fake_anthropic.api_key,
                           base_url=fake_anthropic.url)
        events = [e async for e in llm.stream(messages)]
        assert fake_anthropic.last_request["messages"][0]["role"] == "user"

Outside the fixture: ``with serve(FakeAnthropic().app()) as srv: fake.url = srv.url``.

Scripting is the same as the OpenAI fake (:mod:`tests.fakes.llm_script`):
queued :class:`Reply` objects, then ``responder(request_json)``, then
``default_reply``. Streams are ``message_start``, ``ping``, one
``content_block_*`` run per text/tool_use block, ``message_delta`` and
``message_stop``; ``Reply.stream_error(error_type="overloaded_error")`` sends
an ``error`` event. ``stream: false`` gets a ``message`` object. Requests the
real API refuses get a 400: missing ``anthropic-version`` or ``max_tokens``,
a ``system`` role inside ``messages``, empty text blocks, ``tool_result``
blocks that do not answer the previous turn's ``tool_use`` (or are not first
in their turn), unanswered ``tool_use``. A wrong ``x-api-key`` gets a 401.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.llm_script import (
    FakeToolCall,
    Piece,
    Reply,
    Responder,
    ScriptedLLM,
    last_user_text,
)
from tests.fakes.server import serve

__all__ = ["FakeAnthropic", "FakeToolCall", "Reply", "fake_anthropic", "last_user_text"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    kind = error_type or _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def request_problem(body: dict[str, Any]) -> str | None:
    """Why the real API would refuse this request (None: it would accept it)."""
    if not body.get("model"):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for tool in body.get("tools") or []:
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            return "tools: each tool needs a name and an input_schema"
    open_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f'messages.{i}.role: Input should be "user" or "assistant"'
        blocks = _blocks(message.get("content"))
        if not blocks:
            return f"messages.{i}: content must not be empty"
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        for block in blocks:
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                return f"messages.{i}: text content blocks must be non-empty"
        if results:
            if role != "user":
                return f"messages.{i}: tool_result blocks are only allowed in user messages"
            unexpected = [r for r in results if r not in open_tool_uses]
            if unexpected:
                return (
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {unexpected}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
            first_other = next(
                (n for n, b in enumerate(blocks) if b.get("type") != "tool_result"), len(blocks)
            )
            if any(b.get("type") == "tool_result" for b in blocks[first_other:]):
                return f"messages.{i}.content: tool_result blocks must come first"
        missing = open_tool_uses - set(results)
        if missing:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {sorted(missing)}"
            )
        open_tool_uses = {
            str(b.get("id")) for b in blocks if b.get("type") == "tool_use" and role == "assistant"
        }
    return None  # a trailing assistant tool_use is a prefill the API accepts


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class FakeAnthropic(ScriptedLLM):
    """Scriptable Anthropic Messages server; see the module docstring."""

    id_prefix = "toolu_"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Responder | None = None,
        default_reply: Reply | None = None,
    ) -> None:
        super().__init__(api_key=api_key, responder=responder, default_reply=default_reply)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    async def _messages(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(error_body(400, "invalid JSON body"), status_code=400)
        port = request.client.port if request.client else None
        self.record(body, dict(request.headers), port)
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return JSONResponse(error_body(401, "invalid x-api-key"), status_code=401)
        if not request.headers.get("anthropic-version"):
            return JSONResponse(
                error_body(400, "anthropic-version: header is required"), status_code=400
            )
        problem = request_problem(body)
        if problem is not None:
            return JSONResponse(error_body(400, problem), status_code=400)
        reply = self.next_reply(body)
        if reply.status != 200:
            if reply.first_token_delay:
                await asyncio.sleep(reply.first_token_delay)
            return JSONResponse(
                error_body(reply.status, reply.error_message, reply.error_type),
                status_code=reply.status,
            )
        if not body.get("stream"):
            return await self._complete(body, reply)
        return StreamingResponse(
            self._stream(body, reply),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")

    @staticmethod
    def _input(reply: Reply, call: FakeToolCall) -> Any:
        try:
            return json.loads(reply.arguments_json(call))
        except ValueError:
            return {}

    async def _complete(self, body: dict[str, Any], reply: Reply) -> JSONResponse:
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": self._input(reply, c)}
            for c in reply.tool_calls
        )
        prompt, completion = self.usage_for(reply, body)
        self.note_finished(completed=True)
        return JSONResponse(
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": self._stop_reason(reply),
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion},
            }
        )

    async def _stream(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        prompt, completion = self.usage_for(reply, body)
        state = {"index": -1, "open": ""}

        def close_block() -> list[bytes]:
            if not state["open"]:
                return []
            state["open"] = ""
            return [_sse({"type": "content_block_stop", "index": state["index"]})]

        def open_block(kind: str, block: dict[str, Any]) -> list[bytes]:
            out = close_block()
            state["index"] = int(state["index"]) + 1
            state["open"] = kind
            out.append(
                _sse(
                    {"type": "content_block_start", "index": state["index"], "content_block": block}
                )
            )
            return out

        def render(piece: Piece) -> list[bytes]:
            out: list[bytes] = []
            if piece[0] == "text":
                if state["open"] != "text":
                    out += open_block("text", {"type": "text", "text": ""})
                delta = {"type": "text_delta", "text": piece[1]}
            else:
                _, _, call, fragment, first = piece
                if first:
                    out += open_block(
                        "tool_use",
                        {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                    )
                delta = {"type": "input_json_delta", "partial_json": fragment}
            event = {"type": "content_block_delta", "index": state["index"], "delta": delta}
            out.append(_sse(event))
            return out

        def finish() -> list[bytes]:
            return [
                *close_block(),
                _sse(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                        "usage": {"output_tokens": completion if reply.send_usage else 0},
                    }
                ),
                _sse({"type": "message_stop"}),
            ]

        def error_event() -> bytes:
            kind = reply.stream_error_type
            kind = "api_error" if kind == "server_error" else kind
            return _sse(error_body(500, reply.error_message or "Overloaded", kind))

        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt if reply.send_usage else 0, "output_tokens": 1},
            },
        }
        yield _sse(start)
        yield _sse({"type": "ping"})
        async for chunk in self.play(reply, render, finish, error_event):
            yield chunk


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A fresh fake per test; ``.url`` is the base URL and ``.api_key`` the key."""
    fake = FakeAnthropic(api_key="sk-ant-fake")
    with serve(fake.app()) as srv:
        fake.url = srv.url
        yield fake
