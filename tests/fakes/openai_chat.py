"""A local OpenAI chat-completions server speaking the real streaming protocol.

Usage in a test (import the fixture into your package's ``conftest.py`` with
``from tests.fakes.openai_chat import fake_openai  # noqa: F401``)::

    async def test_agent_answers(fake_openai: FakeOpenAI) -> None:
        fake_openai.enqueue(
            Reply.say("Hello! How can I help?", chunk_delay=0.01),
            Reply.call("book_slot", {"day": "monday"}),
            Reply.error(429, "Rate limit reached"),
        )
        # or answer by rule: the last user message decides
        fake_openai.responder = lambda req: (
            Reply.call("end_call") if "bye" in last_user_text(req) else None
        )
        llm = OpenAICompatibleLLM(provider="openai", model="gpt-4o-mini",
                                  api_key=fake_openai.api_key, base_url=fake_openai.url)
        ...
        assert fake_openai.last_request["messages"][-1] == {"role": "user", ...}

Outside the fixture: ``with serve(FakeOpenAI().app()) as srv: fake.url = f"{srv.url}/v1"``.

Queued replies are used first, then ``responder`` (returning a Reply, a str,
or None), then ``default_reply``. ``stream: false`` gets a ``chat.completion``
object; ``stream: true`` gets ``chat.completion.chunk`` events and
``data: [DONE]`` (plus the usage chunk when ``stream_options.include_usage``).
Requests a real server would refuse get a 400 (a ``tool`` message not answering
a preceding ``tool_calls``, unanswered tool calls, ``json_object`` without the
word JSON), and a wrong or missing ``Authorization: Bearer`` key gets a 401
when ``api_key`` is set.
"""

from __future__ import annotations

import asyncio
import json
import time
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

__all__ = ["FakeOpenAI", "FakeToolCall", "Reply", "fake_openai", "last_user_text"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


#: OpenAI's 429 for an account out of credit: ``type`` and ``code`` both say so
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def error_body(
    status: int, message: str, error_type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = error_type or _ERROR_TYPES.get(status, "server_error")
    code = code or ("invalid_api_key" if status == 401 else None)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def quota_error_body() -> dict[str, Any]:
    """The body of OpenAI's ``insufficient_quota`` 429."""
    return error_body(429, QUOTA_MESSAGE, "insufficient_quota", "insufficient_quota")


def request_problem(body: dict[str, Any]) -> str | None:
    """Why the real API would refuse this request (None: it would accept it)."""
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}].role: invalid role {role!r}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"messages[{i}]: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'"
                )
            pending.discard(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {sorted(pending)}"
            )
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if not call.get("id") or not function.get("name"):
                    return f"messages[{i}].tool_calls: id and function.name are required"
                if not isinstance(function.get("arguments"), str):
                    return f"messages[{i}].tool_calls: function.arguments must be a string"
                pending.add(call["id"])
        elif message.get("content") is None:
            return f"messages[{i}].content is required"
    format_type = (body.get("response_format") or {}).get("type")
    if format_type == "json_object" and not any(
        "json" in json.dumps(m.get("content")).lower() for m in messages
    ):
        return (
            "'messages' must contain the word 'json' in some form, to use "
            "'response_format' of type 'json_object'."
        )
    return None


class FakeOpenAI(ScriptedLLM):
    """Scriptable OpenAI-compatible server; see the module docstring."""

    id_prefix = "call_"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Responder | None = None,
        default_reply: Reply | None = None,
        keepalive_comments: bool = False,
        usage_on_last_chunk: bool = False,
    ) -> None:
        super().__init__(api_key=api_key, responder=responder, default_reply=default_reply)
        #: send ``: keep-alive`` comment lines between chunks
        self.keepalive_comments = keepalive_comments
        #: Mistral's way: usage rides on the finishing chunk, without stream_options
        self.usage_on_last_chunk = usage_on_last_chunk

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])]
        )

    async def _completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(error_body(400, "We could not parse the JSON body."), 400)
        port = request.client.port if request.client else None
        self.record(body, dict(request.headers), port)
        if self.api_key is not None:
            header = request.headers.get("authorization", "")
            if header != f"Bearer {self.api_key}":
                return JSONResponse(error_body(401, "Incorrect API key provided."), status_code=401)
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

    async def _complete(self, body: dict[str, Any], reply: Reply) -> JSONResponse:
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": reply.arguments_json(call)},
                }
                for call in reply.tool_calls
            ]
        prompt, completion = self.usage_for(reply, body)
        self.note_finished(completed=True)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": self._finish_reason(reply),
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )

    @staticmethod
    def _finish_reason(reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    async def _stream(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def usage_of() -> dict[str, int]:
            prompt, completion = self.usage_for(reply, body)
            return {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }

        def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if with_usage or usage is not None:
                chunk["usage"] = usage
            keepalive = b": keep-alive\n\n" if self.keepalive_comments else b""
            return keepalive + f"data: {json.dumps(chunk)}\n\n".encode()

        def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
            return event(
                [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]
            )

        def render(piece: Piece) -> list[bytes]:
            if piece[0] == "text":
                return [delta({"content": piece[1]})]
            _, index, call, fragment, first = piece
            out = []
            if first:
                head = {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                out.append(delta({"tool_calls": [head]}))
            out.append(
                delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            )
            return out

        def finish() -> list[bytes]:
            choice = {"index": 0, "delta": {}, "logprobs": None}
            choice["finish_reason"] = self._finish_reason(reply)
            last_usage = usage_of() if self.usage_on_last_chunk and reply.send_usage else None
            out = [event([choice], last_usage)]
            if with_usage and reply.send_usage:
                out.append(event([], usage_of()))
            out.append(b"data: [DONE]\n\n")
            return out

        def error_event() -> bytes:
            payload = error_body(500, reply.error_message, reply.stream_error_type)
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield delta({"role": "assistant", "content": ""})
        async for chunk in self.play(reply, render, finish, error_event):
            yield chunk


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake per test; ``.url`` is the base URL (ends in ``/v1``) and
    ``.api_key`` the key it accepts."""
    fake = FakeOpenAI(api_key="sk-fake-openai")
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        yield fake
