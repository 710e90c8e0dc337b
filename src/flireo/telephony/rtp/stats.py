"""Counters of one RTP session, and a histogram of how late its packets went out."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: histogram resolution and range: 0.1 ms bins up to 100 ms, then one overflow bin
_BIN_S = 0.0001
_BINS = 1000


@dataclass(frozen=True, slots=True)
class RtpStats:
    """A snapshot of :meth:`RtpSession.stats`."""

    packets_sent: int
    #: packets accepted from the peer: its audio stream and its RFC 4733 events
    #: (duplicates included: they are counted in ``packets_duplicate`` too)
    packets_received: int
    #: never arrived in time for their turn (played as silence)
    packets_lost: int
    #: arrived after their turn had passed (dropped)
    packets_late: int
    packets_duplicate: int
    #: dropped to bound the delay after a burst
    packets_discarded: int
    #: malformed, from another address or SSRC, or of a payload type not negotiated
    packets_ignored: int
    underruns: int
    #: packets that went out more than ``late_threshold_s`` after their deadline
    packets_sent_late: int
    late_threshold_s: float
    #: the worst and the mean (actual send time − deadline) of the packets sent
    max_send_lateness_s: float
    mean_send_lateness_s: float
    #: pacer ticks given up after a stalled event loop (no burst catch-up)
    ticks_skipped: int
    #: caller frames dropped because nobody read :meth:`RtpSession.frames`
    frames_dropped: int
    #: clock time of the last packet received from the far end
    last_received_at: float | None


class LatenessHistogram:
    """Send lateness in 0.1 ms bins up to 100 ms (then one overflow bin), so a
    ten-minute call's 30,000 packets cost a fixed 1,001 counters."""

    __slots__ = ("bins", "count", "max_s", "total_s")

    def __init__(self) -> None:
        self.bins = [0] * (_BINS + 1)
        self.count = 0
        self.max_s = 0.0
        self.total_s = 0.0

    def record(self, lateness_s: float) -> None:
        if lateness_s < 0.0:
            lateness_s = 0.0
        index = int(lateness_s / _BIN_S)
        self.bins[index if index < _BINS else _BINS] += 1
        self.count += 1
        self.total_s += lateness_s
        if lateness_s > self.max_s:
            self.max_s = lateness_s

    def merge(self, other: LatenessHistogram) -> None:
        for i, n in enumerate(other.bins):
            self.bins[i] += n
        self.count += other.count
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0

    def count_over(self, threshold_s: float) -> int:
        """Packets later than ``threshold_s`` (to the bin: 0.1 ms)."""
        first = min(_BINS, round(threshold_s / _BIN_S))
        return sum(self.bins[first:])

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in seconds, as the upper edge of its bin
        (the exact maximum once it falls in the overflow bin)."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q / 100.0 * self.count))
        seen = 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return self.max_s if i == _BINS else min(self.max_s, (i + 1) * _BIN_S)
        return self.max_s
