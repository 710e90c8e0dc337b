"""Received RFC 4733 telephone-events → digits, exactly once per key press.

All packets of one press share its RTP timestamp: the start packet, updates
with a growing duration, the end packet sent three times, and whatever the
sender retransmits. So a press is known by ``(timestamp, event)`` and reported
on the first of its packets that arrives (a lost start packet does not lose
the digit). The same key can come again with the very same timestamp when a
recording is replayed (sipp plays the same pcap for every "1"); such a repeat
counts as a new press when

* it starts over after that press ended: not an end packet, a duration of at
  most :data:`FRESH_DURATION` (a start), and at least :data:`REORDER_GUARD_S`
  after the end packet (a straggler reordered behind the end is not a press); or
* nothing of that press was heard for :data:`IDLE_S`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flireo.telephony.rtp.dtmf import ToneEvent

#: timestamp units (8 kHz): a packet this early in an event is its start
FRESH_DURATION: Final = 320
REORDER_GUARD_S: Final = 0.04
IDLE_S: Final = 1.0
_KEEP: Final = 16


@dataclass(slots=True)
class _Press:
    last_at: float
    ended_at: float | None = None


class DigitDetector:
    __slots__ = ("_presses",)

    def __init__(self) -> None:
        self._presses: dict[tuple[int, int], _Press] = {}

    def feed(self, timestamp: int, payload: bytes, now: float) -> str | None:
        """The digit this packet starts, or None (a repeat, or not a digit)."""
        try:
            event = ToneEvent.parse(payload)
        except ValueError:
            return None
        digit = event.digit
        if digit is None:
            return None
        key = (timestamp, event.event)
        press = self._presses.get(key)
        new = press is None or now - press.last_at >= IDLE_S
        if press is not None and not new and press.ended_at is not None:
            new = (
                not event.end
                and event.duration <= FRESH_DURATION
                and now - press.ended_at >= REORDER_GUARD_S
            )
        if new:
            press = self._presses[key] = _Press(now)
            self._forget_old()
        assert press is not None
        press.last_at = now
        if event.end and press.ended_at is None:
            press.ended_at = now
        return digit if new else None

    def _forget_old(self) -> None:
        if len(self._presses) > _KEEP:
            oldest = min(self._presses, key=lambda k: self._presses[k].last_at)
            del self._presses[oldest]
