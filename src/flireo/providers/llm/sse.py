"""Consuming a vendor's server-sent-event stream over httpx.

Small pieces shared by the OpenAI-compatible and Anthropic clients:

* :class:`SseDecoder` — the WHATWG ``text/event-stream`` line format: ``data:``
  lines of one event are joined with ``\\n``, ``event:`` names it, lines starting
  with ``:`` are comments (keep-alives), a blank line ends the event. An event
  left open when the stream ends is still delivered (some servers close right
  after ``data: [DONE]`` without the final blank line).
* :func:`open_sse` — POST a JSON body and yield events, with vendor failures
  mapped to :class:`~flireo.errors.ProviderError` through
  :mod:`flireo.providers.http_errors`. httpx's *read* timeout is the stall
  timeout: no byte for that long (before or between chunks) fails the stream.
  Leaving the iterator (consumer cancelled, ``break`` + ``aclose``) closes the
  response and with it the connection.
* :func:`drain` — after the vendor's end marker, read the rest of the body
  (bounded) so the keep-alive connection is reused by the next turn.
* :func:`retry_before_first_event` — one retry with a small backoff for
  retryable failures, only while nothing has been handed to the consumer yet.
  Once the first event is out, a failure is raised as is: repeating would
  duplicate speech the caller may already have heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from flireo.clock import Clock
from flireo.errors import ProviderError
from flireo.providers.http_errors import error_for_transport, raise_for_status

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SseDecoder:
    """Feed it lines (without their line break); it returns complete events."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """End the current event (blank line or end of stream)."""
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id)
        self._data = []
        self._event = ""
        return event


async def iter_sse(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = SseDecoder()
    async for line in lines:
        event = decoder.decode(line.rstrip("\r\n"))
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last


async def open_sse(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    headers: dict[str, str],
    body: dict[str, Any],
    http_timeout: httpx.Timeout,
) -> AsyncGenerator[ServerSentEvent, None]:
    """POST ``body`` and yield the response's events (ProviderError on failure)."""
    try:
        async with client.stream(
            "POST", url, json=body, headers=headers, timeout=http_timeout
        ) as response:
            await raise_for_status(provider, response)
            async for event in iter_sse(response.aiter_lines()):
                yield event
    except httpx.TimeoutException as exc:
        raise error_for_transport(provider, exc) from exc
    except httpx.RemoteProtocolError as exc:
        raise ProviderError(provider, f"stream interrupted: {exc}"[:300], retryable=True) from exc
    except httpx.TransportError as exc:
        raise error_for_transport(provider, exc) from exc


async def drain(events: AsyncIterator[ServerSentEvent], seconds: float = 1.0) -> None:
    """Read what follows the end marker, so the connection goes back to the
    pool for the next turn instead of being closed (a new TLS handshake costs
    a phone call 100+ ms)."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass
    except (TimeoutError, ProviderError):
        pass


async def retry_before_first_event(
    attempt: Callable[[], AsyncGenerator[T, None]],
    *,
    retries: int,
    backoff: float,
    clock: Clock,
) -> AsyncGenerator[T, None]:
    """Run ``attempt()``; on a retryable ProviderError raised before it yielded
    anything, wait ``backoff * n`` seconds and start over (at most ``retries``
    times)."""
    failures = 0
    while True:
        started = False
        try:
            async with aclosing(attempt()) as items:
                async for item in items:
                    started = True
                    yield item
            return
        except ProviderError as exc:
            if started or not exc.retryable or failures >= retries:
                raise
            failures += 1
        await clock.sleep(backoff * failures)
