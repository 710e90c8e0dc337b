"""The ``Retry-After`` header (RFC 9110 §10.2.3): delay seconds or an HTTP date.

Read by the webhook deliverer (a customer's endpoint asks to wait) and by the
vendor clients (a 429 carries it in :class:`~flireo.errors.ProviderError`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
