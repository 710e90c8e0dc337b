"""One mapping from vendor HTTP/WebSocket failures to :class:`ProviderError`,
shared by every vendor client."""

from __future__ import annotations

import json

import httpx

from flireo.errors import ProviderError

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def _vendor_message(body: bytes) -> str:
    """Best-effort human message out of a vendor error body (never the whole body)."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "no error body"
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("type") or json.dumps(err)[:300]
        if isinstance(err, str):
            return err[:300]
    return text.strip()[:300]


def error_for_status(provider: str, status: int, body: bytes = b"") -> ProviderError:
    message = f"HTTP {status}: {_vendor_message(body)}"
    return ProviderError(provider, message, status=status, retryable=status in _RETRYABLE_STATUS)


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Raise a :class:`ProviderError` for a non-2xx response (reads a streamed body)."""
    if response.is_success:
        return
    body = await response.aread()
    raise error_for_status(provider, response.status_code, body)


def error_for_transport(provider: str, exc: Exception) -> ProviderError:
    """Timeouts and connection failures: always retryable."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderError(provider, f"timed out ({type(exc).__name__})", retryable=True)
    return ProviderError(provider, f"connection failed: {exc!r}"[:300], retryable=True)
