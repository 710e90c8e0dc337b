"""Shared pieces for the RTP tests: a virtual clock, a UDP sink, packet makers, tones."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from flireo.telephony.rtp.dtmf import ToneEvent
from flireo.telephony.rtp.packet import RtpPacket


class VirtualClock:
    """Time moves only by sleeping: ``sleep(d)`` jumps ``d`` plus an injected
    oversleep (scheduler jitter, a stalled loop) and yields to the loop once.
    A 10-minute call then runs in about a second, and exactly reproducibly."""

    def __init__(self, oversleep: Callable[[int], float] | None = None) -> None:
        self.t = 1000.0
        self.sleeps = 0
        self._oversleep = oversleep or (lambda _n: 0.0)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.t += max(0.0, seconds) + self._oversleep(self.sleeps)
        await asyncio.sleep(0)


@dataclass
class Received:
    at: float
    addr: tuple[str, int]
    packet: RtpPacket


@dataclass
class UdpSink(asyncio.DatagramProtocol):
    """A far end on 127.0.0.1 that records every RTP packet it gets and can send raw bytes."""

    received: list[Received] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0

    @classmethod
    async def open(cls) -> UdpSink:
        sink = cls()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: sink, local_addr=("127.0.0.1", 0)
        )
        sink.transport = transport
        sink.port = int(transport.get_extra_info("sockname")[1])
        return sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.received.append(Received(time.monotonic(), addr, RtpPacket.parse(data)))

    def send(self, data: bytes | RtpPacket, port: int) -> None:
        assert self.transport is not None
        raw = data.serialize() if isinstance(data, RtpPacket) else data
        self.transport.sendto(raw, ("127.0.0.1", port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def packets(self) -> list[RtpPacket]:
        return [r.packet for r in self.received]


async def until(condition: Callable[[], object], within: float = 10.0, what: str = "") -> None:
    """Wait (real time, polling) until ``condition()`` holds; generous by default."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


def tone(rate: int, seconds: float, hz: float = 440.0, amplitude: float = 8_000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


def noise(rate: int, seconds: float, seed: int = 7, amplitude: int = 6_000) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-amplitude, amplitude, int(rate * seconds)).astype("<i2").tobytes()


def audio_packets(
    count: int,
    *,
    pt: int = 0,
    ssrc: int = 0x1234,
    seq: int = 100,
    ts: int = 5_000,
    payload: Callable[[int], bytes] | None = None,
) -> list[RtpPacket]:
    """``count`` consecutive 20 ms packets; the payload of packet ``i`` is ``payload(i)``
    (default: 160 bytes of the value ``i``, so each packet is recognizable)."""
    make = payload or (lambda i: bytes([i & 0xFF]) * 160)
    return [
        RtpPacket(pt, (seq + i) & 0xFFFF, (ts + 160 * i) & 0xFFFFFFFF, ssrc, make(i))
        for i in range(count)
    ]


def digit_packets(
    event: int,
    *,
    seq: int,
    ts: int,
    ssrc: int = 0x1234,
    pt: int = 101,
    steps: int = 4,
) -> list[RtpPacket]:
    """One RFC 4733 event as a peer sends it: ``steps`` growing packets, then the end x3."""
    out = [
        RtpPacket(
            pt, seq + i, ts, ssrc, ToneEvent(event, False, 10, 160 * (i + 1)).serialize(), i == 0
        )
        for i in range(steps)
    ]
    end = ToneEvent(event, True, 10, 160 * (steps + 1)).serialize()
    out += [RtpPacket(pt, seq + steps + i, ts, ssrc, end) for i in range(3)]
    return out


def seeded(seed: int) -> random.Random:
    return random.Random(seed)
