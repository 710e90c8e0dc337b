"""ASGI middleware: rate limits with ``X-RateLimit-*`` headers on every response,
and a cap on request body size (413).

Requests that carry an ``Authorization`` header are counted by the auth
dependency (:func:`flireo.api.auth.principal`) on the key's id, or on the
failed-authentication budget of the address; this middleware counts the others
per client address and puts the headers of whichever window applied on the
response."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flireo.api.auth import STATE_WINDOW
from flireo.api.errors import error_body
from flireo.api.ratelimit import RateLimiter, Window


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing re-raises
    it unchanged and the error handlers turn it into the documented 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


async def _send_json(
    send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _window_headers(window: Window) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(window.limit).encode()),
        (b"x-ratelimit-remaining", str(window.remaining).encode()),
        (b"x-ratelimit-reset", str(window.reset_at).encode()),
    ]


class RateLimitMiddleware:
    """Counts requests without credentials per client address; the others are
    counted by the auth dependency (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        limit: Callable[[], int],
        exempt_prefixes: tuple[str, ...] = ("/docs", "/redoc", "/healthz"),
        unauthenticated_paths: frozenset[str] = frozenset({"/api/v1/openapi.json"}),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app, self.limiter, self.limit = app, limiter, limit
        self.exempt = exempt_prefixes
        #: paths no key is checked on (the OpenAPI document): always counted here
        self.unauthenticated = unauthenticated_paths
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        state: dict[str, object] = scope.setdefault("state", {})
        window: Window | None = None
        if not _header(scope, b"authorization") or scope["path"] in self.unauthenticated:
            client = scope.get("client")
            window = await self.limiter.hit(
                "ip:" + (client[0] if client else "unknown"), self.limit()
            )
            if not window.allowed:
                retry = window.retry_after(self.now())
                body = error_body(
                    "rate_limit_exceeded",
                    f"Too many requests. Please retry after {retry} seconds.",
                    type_="rate_limit_error",
                )
                headers = [*_window_headers(window), (b"retry-after", str(retry).encode())]
                await _send_json(send, 429, body, headers)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                applied = state.get(STATE_WINDOW, window)
                if isinstance(applied, Window):
                    extra = _window_headers(applied)
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: Callable[[], int]) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = _header(scope, b"content-length")
        too_large = error_body(
            "payload_too_large",
            f"Request body exceeds {limit} bytes",
            type_="invalid_request_error",
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_large, [])
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, too_large, [])
