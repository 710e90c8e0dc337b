"""DTMF: RFC 4733 telephone-event packets in and out, and SIP INFO bodies
(``application/dtmf-relay``, ``application/dtmf``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class ToneEvent:
    event: int
    end: bool
    volume: int
    duration: int  # in timestamp units (8 kHz samples)

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None

    def serialize(self) -> bytes:
        return _EVENT.pack(
            self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration & 0xFFFF
        )

    @classmethod
    def parse(cls, payload: bytes) -> ToneEvent:
        if len(payload) < 4:
            raise ValueError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)


class DtmfReceiver:
    """Turns telephone-event packets into digits, once per event.

    An event is identified by its RTP timestamp (all its packets, including the
    redundant end packets, share it); the digit is reported on the first packet
    seen for that timestamp, so lost start packets still yield the digit.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: list[tuple[int, int]] = []

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        try:
            ev = ToneEvent.parse(payload)
        except ValueError:
            return None
        digit = ev.digit
        key = (timestamp, ev.event)
        if digit is None or key in self._seen:
            return None
        self._seen.append(key)
        if len(self._seen) > 32:
            del self._seen[0]
        return digit


def event_packets(
    digit: str, *, duration_ms: int = 100, volume: int = 10, ptime_ms: int = 20
) -> list[ToneEvent]:
    """The payloads for one digit: a packet per ``ptime`` with growing duration,
    then the end packet three times (RFC 4733 §2.5.1.4)."""
    event = EVENTS.index(digit.upper())
    step = 8 * ptime_ms
    total = 8 * duration_ms
    out = [
        ToneEvent(event, False, volume, d) for d in range(step, total, step)
    ]  # 160, 320, ... < total
    out += [ToneEvent(event, True, volume, total)] * 3
    return out


def parse_info_body(content_type: str, body: bytes) -> str | None:
    """The digit carried by a SIP INFO, or None."""
    text = body.decode("utf-8", "replace")
    if content_type == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                return _digit(value.strip())
        return None
    if content_type == "application/dtmf":
        return _digit(text.strip())
    return None


def _digit(value: str) -> str | None:
    if value.isdigit() and len(value) <= 2 and int(value) < len(EVENTS):
        return EVENTS[int(value)] if len(value) == 2 else value
    value = value.upper()
    return value if len(value) == 1 and value in EVENTS else None


def info_body(digit: str, duration_ms: int = 160) -> bytes:
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
