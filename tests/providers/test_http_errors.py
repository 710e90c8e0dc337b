"""The one mapping from a vendor's refusal to ``ProviderError`` (pure, no server):
what is retryable, and the ``Retry-After`` the vendor named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from flireo.providers.http_errors import error_for_status
from flireo.retry_after import retry_after_seconds


def body(error: dict[str, object]) -> bytes:
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (
            {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
            True,
        ),
        ({"message": "Out of credit", "type": "insufficient_quota", "code": None}, False),
        ({"message": "Out of credit", "type": "requests", "code": "insufficient_quota"}, False),
    ],
    ids=["rate-limit", "quota-by-type", "quota-by-code"],
)
def test_a_429_is_retryable_unless_the_quota_is_exhausted(
    error: dict[str, object], retryable: bool
) -> None:
    refused = error_for_status("openai", 429, body(error))

    assert (refused.status, refused.retryable) == (429, retryable)
    assert refused.message == f"HTTP 429: {error['message']}"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    in_ninety = format_datetime(now + timedelta(seconds=90), usegmt=True)

    assert retry_after_seconds("20", now) == 20.0
    assert retry_after_seconds(in_ninety, now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    assert error_for_status("xai_realtime", 429, b"", retry_after="7").retry_after == 7.0
    assert error_for_status("xai_realtime", 429, b"").retry_after is None
