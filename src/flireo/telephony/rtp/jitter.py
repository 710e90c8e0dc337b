"""The receive jitter buffer: packets in arrival order, slots out in sequence order.

Pure and clock-free: :meth:`JitterBuffer.push` is called when a packet arrives,
:meth:`JitterBuffer.pop` once per playout tick (every 20 ms). Sequence numbers
are extended past the 16-bit wrap (65535 → 0) by choosing the value nearest to
the highest one seen, as RFC 3550 appendix A.1 does.

Policy, fixed depth:

* playout starts once ``prefetch`` packets' worth of sequence numbers is
  buffered (3 × 20 ms = 60 ms by default) and starts over after an underrun;
* a duplicate, or a packet whose turn has passed (late), is dropped;
* a missing packet whose turn comes while later ones are waiting is lost: pop
  returns :data:`LOST` and the caller plays silence in its place;
* more than ``max_depth`` buffered (a burst after a stall, or a faster sender
  clock) drops the oldest down to ``prefetch``, bounding the delay;
* a jump of more than :data:`MAX_DROPOUT` sequence numbers is a restarted
  stream only once a second, consecutive packet confirms it (probation).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from flireo.telephony.rtp.packet import RtpPacket

#: a forward jump this large (or a step back past MAX_MISORDER) is not reordering
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100


class Lost(enum.Enum):
    LOST = "lost"


#: returned by :meth:`JitterBuffer.pop` for a packet that never came in time
LOST: Final = Lost.LOST


class Push(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    #: a big sequence jump held on probation (dropped unless the next one follows it)
    PROBATION = "probation"
    #: the jump was confirmed: the buffer restarted on the new sequence
    RESTARTED = "restarted"


@dataclass(frozen=True, slots=True)
class Slot:
    sequence: int  # extended (not wrapped) sequence number
    timestamp: int
    payload_type: int
    payload: bytes


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    duplicate: int = 0
    late: int = 0
    lost: int = 0
    #: dropped to bound the delay after a burst
    discarded: int = 0
    underruns: int = 0
    restarts: int = 0


class JitterBuffer:
    __slots__ = (
        "_highest",
        "_next",
        "_packets",
        "_probe",
        "_started",
        "_virgin",
        "max_depth",
        "prefetch",
        "stats",
    )

    def __init__(self, prefetch: int = 3, max_depth: int = 8) -> None:
        if prefetch < 1 or max_depth < prefetch:
            raise ValueError(f"need 1 <= prefetch <= max_depth, got {prefetch}, {max_depth}")
        self.prefetch = prefetch
        self.max_depth = max_depth
        self.stats = JitterStats()
        self._packets: dict[int, Slot] = {}
        self._highest: int | None = None  # extended
        self._next = 0  # extended sequence number to play next
        self._started = False
        self._virgin = True  # nothing played of this stream yet: earlier packets still fit
        self._probe: int | None = None  # 16-bit sequence that would confirm a jump

    @property
    def depth(self) -> int:
        """Sequence numbers from the next to play to the highest received (gaps included)."""
        if self._highest is None:
            return 0
        return max(0, self._highest - self._next + 1)

    def reset(self) -> None:
        """Forget the stream (a new SSRC); the statistics stay."""
        self._packets.clear()
        self._highest = None
        self._next = 0
        self._started = False
        self._virgin = True
        self._probe = None

    def push(self, packet: RtpPacket) -> Push:
        seq = packet.sequence & 0xFFFF
        highest = self._highest
        if highest is None:
            self._begin(packet)
            return Push.ACCEPTED
        delta = (seq - highest) & 0xFFFF
        ext = highest + delta if delta < 0x8000 else highest - (0x10000 - delta)
        if ext - highest > MAX_DROPOUT or self._next - ext > MAX_MISORDER:
            if self._probe is not None and seq == self._probe:
                self.stats.restarts += 1
                self.reset()
                self._begin(packet)
                return Push.RESTARTED
            self._probe = (seq + 1) & 0xFFFF
            return Push.PROBATION
        self._probe = None
        if ext < self._next:
            if not self._virgin:
                self.stats.late += 1
                return Push.LATE
            self._next = ext  # reordered before the first packet: still in time

        if ext in self._packets:
            self.stats.duplicate += 1
            return Push.DUPLICATE
        self._store(ext, packet)
        if ext > highest:
            self._highest = ext
        self._trim()
        return Push.ACCEPTED

    def pop(self) -> Slot | Lost | None:
        """The next slot to play, :data:`LOST`, or None (prefetching or ran dry)."""
        depth = self.depth
        if not self._started:
            if depth < self.prefetch:
                return None
            self._started = True
        if depth == 0:
            self._started = False
            self.stats.underruns += 1
            return None
        slot = self._packets.pop(self._next, None)
        self._next += 1
        self._virgin = False
        if slot is None:
            self.stats.lost += 1
            return LOST
        return slot

    def _begin(self, packet: RtpPacket) -> None:
        ext = packet.sequence & 0xFFFF
        self._highest = ext
        self._next = ext
        self._store(ext, packet)

    def _store(self, ext: int, packet: RtpPacket) -> None:
        self.stats.received += 1
        self._packets[ext] = Slot(ext, packet.timestamp, packet.payload_type, packet.payload)

    def _trim(self) -> None:
        if self.depth <= self.max_depth:
            return
        assert self._highest is not None
        keep_from = self._highest - self.prefetch + 1
        while self._next < keep_from:
            if self._packets.pop(self._next, None) is not None:
                self.stats.discarded += 1
            else:
                self.stats.lost += 1
            self._next += 1
