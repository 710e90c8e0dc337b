"""ASGI middleware: per-key rate limits with ``X-RateLimit-*`` headers on every
response, and a cap on request body size (413)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flireo.api.errors import error_body
from flireo.api.ratelimit import RateLimiter


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


class RateLimitMiddleware:
    """Counts requests per API key (per client address without a key)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        limit: Callable[[], int],
        exempt_prefixes: tuple[str, ...] = ("/docs", "/redoc", "/healthz"),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app, self.limiter, self.limit = app, limiter, limit
        self.exempt = exempt_prefixes
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        auth = _header(scope, b"authorization")
        if auth:
            identity = "k:" + hashlib.sha256(auth).hexdigest()[:32]
        else:
            client = scope.get("client")
            identity = "ip:" + (client[0] if client else "unknown")
        window = await self.limiter.hit(identity, self.limit())
        headers = [
            (b"x-ratelimit-limit", str(window.limit).encode()),
            (b"x-ratelimit-remaining", str(window.remaining).encode()),
            (b"x-ratelimit-reset", str(window.reset_at).encode()),
        ]
        if not window.allowed:
            retry = window.retry_after(self.now())
            body = error_body(
                "rate_limit_exceeded",
                f"Too many requests. Please retry after {retry} seconds.",
                type_="rate_limit_error",
            )
            await _send_json(send, 429, body, [*headers, (b"retry-after", str(retry).encode())])
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
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
