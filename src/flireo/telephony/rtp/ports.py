"""Even RTP ports from a configured range, handed out round-robin.

RTP goes on an even port and RTCP on the next odd one (RFC 3550 §11), so only
even ports ``p`` with ``p + 1`` still inside the range are used. A released
port goes to the back of the line: the least recently used port is reused
first, so stray packets of a finished call rarely reach the next one.
"""

from __future__ import annotations

from collections import deque

DEFAULT_LOW = 10_000
DEFAULT_HIGH = 20_000


class PortsExhausted(RuntimeError):
    """Every port of the range is in use."""


class PortAllocator:
    """Hands out even ports from ``low``..``high`` (inclusive); not thread-safe,
    use it from the event loop that owns the sessions."""

    __slots__ = ("_free", "_used", "high", "low")

    def __init__(
        self, low: int = DEFAULT_LOW, high: int = DEFAULT_HIGH, *, start: int | None = None
    ) -> None:
        """``start``: the port to hand out first (default ``low``); a server passes
        a random one so a restart does not go straight back to the ports its last
        run, or a neighbour, may still hold."""
        if not 1024 <= low < high <= 65_535:
            raise ValueError(f"RTP port range must be within 1024-65535, got {low}-{high}")
        first = low + (low & 1)
        ports = range(first, high, 2)  # p + 1 <= high
        if not ports:
            raise ValueError(f"RTP port range {low}-{high} holds no even port pair")
        self.low = low
        self.high = high
        self._free: deque[int] = deque(ports)
        if start is not None and low <= start <= high:
            self._free.rotate(-((start - first + 1) // 2 % len(ports)))
        self._used: set[int] = set()

    @property
    def capacity(self) -> int:
        return len(self._free) + len(self._used)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def acquire(self) -> int:
        """The least recently used free port; :class:`PortsExhausted` if none is left."""
        if not self._free:
            raise PortsExhausted(f"all {self.capacity} RTP ports of {self.low}-{self.high} in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give ``port`` back; releasing a port twice (or a foreign one) does nothing."""
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)
