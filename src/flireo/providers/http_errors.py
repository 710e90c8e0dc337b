"""One mapping from vendor HTTP/WebSocket failures to :class:`ProviderError`,
shared by every vendor client.

A 429 is retryable unless the vendor says why it is not a passing limit
(OpenAI's ``insufficient_quota``: the account is out of credit). A refusal's
``Retry-After`` header, HTTP or websocket handshake alike, is carried as
``ProviderError.retry_after`` (seconds); the clients do not wait it out
themselves, a live call cannot.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.exceptions import InvalidStatus

from flireo.errors import ProviderError
from flireo.retry_after import retry_after_seconds

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: vendor error codes (``error.code`` or ``error.type``) that no retry can fix
_FINAL_ERROR_CODES = frozenset({"insufficient_quota"})


def _vendor_error(body: bytes) -> tuple[str, frozenset[str]]:
    """Best-effort human message out of a vendor error body (never the whole body),
    and the error's ``code``/``type`` when it names them."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "no error body", frozenset()
    codes: frozenset[str] = frozenset()
    if isinstance(data, dict):
        err: Any = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            codes = frozenset(str(err[k]) for k in ("code", "type") if err.get(k))
            err = err.get("message") or err.get("type") or json.dumps(err)[:300]
        if isinstance(err, str):
            return err[:300], codes
    return text.strip()[:300], codes


def error_for_status(
    provider: str, status: int, body: bytes = b"", *, retry_after: str | None = None
) -> ProviderError:
    """A refused request; ``retry_after`` is the answer's ``Retry-After`` header."""
    message, codes = _vendor_error(body)
    return ProviderError(
        provider,
        f"HTTP {status}: {message}",
        status=status,
        retryable=status in _RETRYABLE_STATUS and not codes & _FINAL_ERROR_CODES,
        retry_after=retry_after_seconds(retry_after),
    )


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Raise a :class:`ProviderError` for a non-2xx response (reads a streamed body)."""
    if response.is_success:
        return
    body = await response.aread()
    raise error_for_status(
        provider, response.status_code, body, retry_after=response.headers.get("retry-after")
    )


def error_for_handshake(provider: str, exc: InvalidStatus) -> ProviderError:
    """A websocket upgrade refused with an HTTP status (401, 429...)."""
    response = exc.response
    return error_for_status(
        provider,
        response.status_code,
        bytes(response.body or b""),
        retry_after=response.headers.get("Retry-After"),
    )


def error_for_transport(provider: str, exc: Exception) -> ProviderError:
    """Timeouts and connection failures: always retryable."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderError(provider, f"timed out ({type(exc).__name__})", retryable=True)
    return ProviderError(provider, f"connection failed: {exc!r}"[:300], retryable=True)
