"""What a fake LLM vendor answers: scripted replies shared by the OpenAI and
Anthropic fakes (each renders them in its own wire protocol).

A :class:`Reply` is plain text, tool calls, or a failure (HTTP error, dropped
connection, stall, in-stream error event). :class:`ScriptedLLM` holds the
queue of replies, the optional rule-based ``responder``, the received
requests, and the counters tests assert on. It is shared between the server
thread and the test, so everything mutable sits behind a lock.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

DEFAULT_TEXT = "Sure, I can help with that."


@dataclass(frozen=True)
class FakeToolCall:
    name: str
    #: a dict is sent as JSON; a str is sent verbatim (e.g. to test broken JSON)
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the class methods."""

    text: str = ""
    tool_calls: Sequence[FakeToolCall] = ()
    #: non-200: answer with this HTTP status and a vendor-shaped error body
    status: int = 200
    error_message: str = ""
    error_type: str | None = None
    #: seconds before the first piece, and between pieces
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    #: after this many pieces, stop until the test calls ``release()`` (a stall
    #: when it never does; the client's timeout or cancel ends it)
    hold_after: int | None = None
    #: after this many pieces, drop the TCP connection mid-body
    disconnect_after: int | None = None
    #: after this many pieces, send the vendor's in-stream error event
    stream_error_after: int | None = None
    stream_error_type: str = "server_error"
    #: (prompt, completion) tokens; None computes a word count
    usage: tuple[int, int] | None = None
    send_usage: bool = True
    finish_reason: str | None = None

    @classmethod
    def say(cls, text: str, **options: Any) -> Reply:
        return cls(text=text, **options)

    @classmethod
    def call(
        cls, name: str, arguments: dict[str, Any] | str | None = None, **options: Any
    ) -> Reply:
        return cls(tool_calls=(FakeToolCall(name, arguments or {}),), **options)

    @classmethod
    def calls(cls, *calls: FakeToolCall, text: str = "", **options: Any) -> Reply:
        return cls(text=text, tool_calls=tuple(calls), **options)

    @classmethod
    def error(cls, status: int, message: str = "error", error_type: str | None = None) -> Reply:
        return cls(status=status, error_message=message, error_type=error_type)

    @classmethod
    def disconnect(cls, text: str = "Hello there, I", after: int = 1) -> Reply:
        return cls(text=text, disconnect_after=after)

    @classmethod
    def stall(cls, text: str = "", after: int = 0) -> Reply:
        return cls(text=text, hold_after=after)

    @classmethod
    def stream_error(
        cls, text: str = "Hello", after: int = 1, error_type: str = "server_error"
    ) -> Reply:
        return cls(
            text=text,
            stream_error_after=after,
            stream_error_type=error_type,
            error_message="The server had an error while processing your request.",
        )

    def tokens(self) -> list[str]:
        """The text cut in token-sized pieces (a word with its leading space)."""
        return re.findall(r"\s*\S+|\s+$", self.text)

    def arguments_json(self, call: FakeToolCall) -> str:
        import json

        return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


Piece = tuple[Literal["text"], str] | tuple[Literal["tool"], int, FakeToolCall, str, bool]


def pieces(reply: Reply) -> list[Piece]:
    """Ordered stream pieces: text tokens, then each tool call's argument
    fragments (``True`` marks a call's first fragment)."""
    out: list[Piece] = [("text", token) for token in reply.tokens()]
    for index, call in enumerate(reply.tool_calls):
        raw = reply.arguments_json(call)
        cut = max(1, len(raw) // 2)
        fragments = [raw[:cut], raw[cut:]] if len(raw) > 1 else [raw]
        for n, fragment in enumerate(fragments):
            out.append(("tool", index, call, fragment, n == 0))
    return out


class DropConnection(Exception):
    """Raised inside a streaming body: uvicorn then closes the socket mid-body."""


class _HideDeliberateDrops(logging.Filter):
    """Keep uvicorn from printing a traceback for a drop the test asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())


def text_of(content: Any) -> str:
    """Plain text of an OpenAI or Anthropic message content (string or parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ).strip()
    return ""


def last_user_text(request: dict[str, Any]) -> str:
    """The last thing the user said in a chat request (tool results skipped)."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            text = text_of(message.get("content"))
            if text:
                return text
    return ""


def word_count(request: dict[str, Any]) -> int:
    total = len(str(request.get("system", "")).split())
    for message in request.get("messages") or []:
        total += len(text_of(message.get("content")).split())
    return total


Responder = Callable[[dict[str, Any]], "Reply | str | None"]


class ScriptedLLM:
    """Queue of replies + rule-based responder + what the server received.

    ``requests`` holds every JSON body received, refused ones included.
    """

    id_prefix = "call_"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Responder | None = None,
        default_reply: Reply | None = None,
    ) -> None:
        self.api_key = api_key
        self.responder = responder
        self.default_reply = default_reply or Reply.say(DEFAULT_TEXT)
        self.url = ""
        self._lock = threading.Lock()
        self._queue: list[Reply] = []
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._client_ports: list[int | None] = []
        self._releases = threading.Semaphore(0)
        self._disconnects = 0
        self._completed = 0

    # --- scripting (called from the test) -----------------------------------
    def enqueue(self, *replies: Reply | str) -> None:
        """Append replies; each request takes the next one."""
        with self._lock:
            self._queue.extend(Reply.say(r) if isinstance(r, str) else r for r in replies)

    def script(self, *replies: Reply | str) -> None:
        """Replace whatever is queued with these replies."""
        with self._lock:
            self._queue.clear()
        self.enqueue(*replies)

    def release(self, times: int = 1) -> None:
        """Let a held reply (``hold_after``) continue."""
        for _ in range(times):
            self._releases.release()

    # --- observations --------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            return self._requests[-1]

    @property
    def headers(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._headers)

    @property
    def client_ports(self) -> list[int | None]:
        """The client's TCP port per request (equal ports: a reused connection)."""
        with self._lock:
            return list(self._client_ports)

    @property
    def disconnects(self) -> int:
        """Streams the client abandoned before the server finished them."""
        with self._lock:
            return self._disconnects

    @property
    def completed(self) -> int:
        """Streams the server sent to the end."""
        with self._lock:
            return self._completed

    async def wait_for_disconnects(self, count: int = 1, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while self.disconnects < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"server saw {self.disconnects} disconnects, wanted {count}")
            await asyncio.sleep(0.01)

    # --- used by the server ---------------------------------------------------
    def record(
        self, body: dict[str, Any], headers: dict[str, str], client_port: int | None = None
    ) -> None:
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
            self._client_ports.append(client_port)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                reply = self._queue.pop(0)
                return self._with_ids(reply)
        if self.responder is not None:
            answer = self.responder(body)
            if answer is not None:
                return self._with_ids(Reply.say(answer) if isinstance(answer, str) else answer)
        return self._with_ids(self.default_reply)

    def _with_ids(self, reply: Reply) -> Reply:
        calls = tuple(
            c if c.id else replace(c, id=f"{self.id_prefix}{uuid.uuid4().hex[:12]}")
            for c in reply.tool_calls
        )
        return replace(reply, tool_calls=calls)

    def note_finished(self, *, completed: bool) -> None:
        with self._lock:
            if completed:
                self._completed += 1
            else:
                self._disconnects += 1

    async def hold(self) -> None:
        # the semaphore is released from the test's thread: poll it
        while not self._releases.acquire(blocking=False):  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def play(
        self,
        reply: Reply,
        render: Callable[[Piece], list[bytes]],
        finish: Callable[[], list[bytes]],
        error_event: Callable[[], bytes],
    ) -> AsyncIterator[bytes]:
        """Stream a reply's pieces with its pacing and failure, then ``finish``.

        Position ``len(pieces)`` is the finishing step, so a reply with no text
        can still be held, dropped or failed before it ends.
        """
        items = pieces(reply)
        outcome: bool | None = False
        try:
            for position in range(len(items) + 1):
                delay = reply.first_token_delay if position == 0 else reply.chunk_delay
                if delay:
                    await asyncio.sleep(delay)
                if reply.hold_after == position:
                    await self.hold()
                if reply.disconnect_after == position:
                    outcome = None
                    raise DropConnection
                if reply.stream_error_after == position:
                    yield error_event()
                    outcome = True
                    return
                chunks = finish() if position == len(items) else render(items[position])
                for chunk in chunks:
                    yield chunk
            outcome = True
        finally:
            if outcome is not None:
                self.note_finished(completed=outcome)

    def usage_for(self, reply: Reply, body: dict[str, Any]) -> tuple[int, int]:
        if reply.usage is not None:
            return reply.usage
        return word_count(body), len(pieces(reply))
