"""Synchronous webhooks: ``assistant-request`` (5 s) and ``tool-calls`` (10 s).

The caller is waiting, so these are sent once and never blindly retried: a
timeout, a connection error or a non-2xx answer is reported to the caller,
which falls back (stored agent config, a tool error the LLM sees).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from flireo.webhooks.signing import webhook_headers
from flireo.webhooks.ssrf import UnsafeUrl, check_url

ASSISTANT_REQUEST_TIMEOUT = 5.0
TOOL_CALLS_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SyncReply:
    ok: bool
    status: int | None
    #: the parsed JSON reply (None when absent or not JSON)
    body: Any
    error: str | None
    seconds: float


async def post_sync_webhook(
    http: httpx.AsyncClient,
    *,
    url: str,
    event_type: str,
    payload: dict[str, Any],
    secret: str | None,
    deadline_seconds: float,
    allow_private: bool,
    now: float | None = None,
) -> SyncReply:
    started = time.monotonic()
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = webhook_headers(
        event=event_type,
        webhook_id=str(uuid.uuid4()),
        timestamp=int(now if now is not None else time.time()),
        body=body,
        secret=secret,
    )
    try:
        await check_url(url, allow_private=allow_private)
        response = await http.post(url, content=body, headers=headers, timeout=deadline_seconds)
    except UnsafeUrl as exc:
        return SyncReply(False, None, None, f"refused: {exc}", time.monotonic() - started)
    except httpx.TimeoutException:
        return SyncReply(
            False,
            None,
            None,
            f"no answer within {deadline_seconds:g} s",
            time.monotonic() - started,
        )
    except httpx.HTTPError as exc:
        return SyncReply(
            False, None, None, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - started
        )
    try:
        parsed = response.json() if response.content else None
    except ValueError:
        parsed = None
    ok = response.is_success
    error = None if ok else f"HTTP {response.status_code}"
    return SyncReply(ok, response.status_code, parsed, error, time.monotonic() - started)
