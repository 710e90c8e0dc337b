"""Calls per second: a token bucket on the injected clock."""

from __future__ import annotations

from flireo.clock import Clock


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.

    The bucket starts with one token, so the first call goes out at once and
    the long-run rate is exactly ``rate`` however often it is asked.
    """

    def __init__(self, clock: Clock, rate: float, burst: float = 1.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._clock = clock
        self.rate, self.burst = rate, burst
        self._tokens = 1.0
        self._at = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def reconfigure(self, rate: float, burst: float) -> None:
        """Change the rate (tokens already earned are kept, up to the new burst)."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._refill()
        self.rate, self.burst = rate, burst
        self._tokens = min(self._tokens, burst)

    def available(self) -> int:
        """Whole tokens that may be taken now."""
        self._refill()
        return int(self._tokens + 1e-9)

    def take(self, n: int) -> None:
        self._refill()
        self._tokens -= n

    def seconds_until(self, n: int = 1) -> float:
        """How long until ``n`` tokens are available (0 when they are)."""
        self._refill()
        missing = n - self._tokens
        return max(0.0, missing / self.rate) if missing > 1e-9 else 0.0
