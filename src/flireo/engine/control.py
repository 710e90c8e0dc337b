"""Live control of a call (resources.md §5): parsing, the per-call rate limit, errors.

The four commands are the domain models (:mod:`flireo.domain.calls`):
``inject-context`` (``content``, ``trigger_response``), ``say`` (``content``,
``end_after``), ``end-call`` (``message``) and ``transfer`` (``destination``,
``message``). :meth:`CallSession.control` accepts a model or its JSON dict,
checks the limit (``FLIREO_CONTROL_RATE_LIMIT_PER_MINUTE``, 10 by default, per
call, a sliding window on the injected clock; ``end-call`` is always accepted
and not counted, so a client over the limit can still hang up) and queues it;
commands run in order. Refusals raise
:class:`ControlRateLimited` (HTTP 429 with ``Retry-After``) or
:class:`CallNotActive` (HTTP 400 ``call_not_active``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from flireo.clock import Clock
from flireo.domain.calls import ControlCommand, EndCall, InjectContext, Say, Transfer
from flireo.errors import InvalidRequest, RateLimited

__all__ = [
    "CONTROL_LIMIT",
    "CONTROL_WINDOW_S",
    "CallNotActive",
    "ControlCommand",
    "ControlRateLimited",
    "ControlRateLimiter",
    "EndCall",
    "InjectContext",
    "Say",
    "Transfer",
    "parse_control",
]

CONTROL_LIMIT = 10
CONTROL_WINDOW_S = 60.0

_ADAPTER: TypeAdapter[ControlCommand] = TypeAdapter(ControlCommand)


class ControlRateLimited(RateLimited):
    """More than the limit of commands within a minute for this call."""

    def __init__(self, retry_after: int, limit: int = CONTROL_LIMIT) -> None:
        super().__init__(
            f"Too many control commands for this call (limit {limit} per minute; "
            "end-call is always accepted)",
            retry_after=retry_after,
        )


class CallNotActive(InvalidRequest):
    def __init__(self, message: str = "Call is not active") -> None:
        super().__init__(message, code="call_not_active")


def parse_control(data: Mapping[str, Any] | ControlCommand) -> ControlCommand:
    """A control command from its JSON form (raises ``pydantic.ValidationError``)."""
    if isinstance(data, InjectContext | Say | EndCall | Transfer):
        return data
    return _ADAPTER.validate_python(dict(data))


class ControlRateLimiter:
    """At most ``limit`` accepted commands in any ``window_s`` seconds."""

    def __init__(
        self, clock: Clock, *, limit: int = CONTROL_LIMIT, window_s: float = CONTROL_WINDOW_S
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._window_s = window_s
        self._accepted: deque[float] = deque()

    def acquire(self) -> None:
        """Count one command, or raise :class:`ControlRateLimited`."""
        now = self._clock.monotonic()
        while self._accepted and self._accepted[0] <= now - self._window_s:
            self._accepted.popleft()
        if len(self._accepted) >= self._limit:
            wait = self._accepted[0] + self._window_s - now
            raise ControlRateLimited(retry_after=max(1, math.ceil(wait)), limit=self._limit)
        self._accepted.append(now)
