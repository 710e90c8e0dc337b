"""The pacer: absolute 20 ms deadlines of a monotonic clock, so a 10-minute call
does not drift; late wake-ups catch up without bursts; timestamps stay on the grid.

The long runs use a virtual clock whose sleeps overshoot (as real timers do),
so 30,000 packets take about a second; one short run uses the real clock."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time

from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.session import MAX_BURST, TICK_S, RtpSession
from tests.telephony.rtp_helpers import UdpSink, VirtualClock, noise, until

TEN_MINUTES = 30_000  # packets


async def paced_run(
    clock: VirtualClock, packets: int, speech: bytes = b""
) -> tuple[RtpSession, list[tuple[RtpPacket, float, float]]]:
    """Run a session on ``clock`` until it has sent ``packets``; returns what it sent
    as (packet, deadline, sent_at)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # never read: the kernel drops what overflows
    sent: list[tuple[RtpPacket, float, float]] = []
    done = asyncio.Event()
    session: RtpSession

    def on_sent(packet: RtpPacket, lateness: float) -> None:
        now = clock.monotonic()
        sent.append((packet, now - lateness, now))
        if len(sent) == packets:
            session.close()
            done.set()

    session = RtpSession(local_host="127.0.0.1", clock=clock, on_sent=on_sent)
    try:
        await session.bind()
        session.set_remote("127.0.0.1", sink.getsockname()[1])
        await session.send(speech)
        session.start()
        await asyncio.wait_for(done.wait(), timeout=120)
        await session.aclose()
    finally:
        sink.close()
    return session, sent


def ticks(deadlines: list[float], start: float) -> list[float]:
    return [(d - start) / TICK_S for d in deadlines]


async def test_ten_minutes_of_packets_stay_on_the_20ms_grid_without_drift() -> None:
    jitter = random.Random(42)
    clock = VirtualClock(oversleep=lambda _n: jitter.uniform(0.0, 0.004))  # timer slack
    speech = noise(16_000, 600.0, amplitude=3000)
    session, sent = await paced_run(clock, TEN_MINUTES, speech)

    start = sent[0][1]
    positions = ticks([deadline for _, deadline, _ in sent], start)
    assert all(abs(p - n) < 1e-6 for n, p in enumerate(positions))  # deadline n is start + n·20 ms
    ts0, seq0 = sent[0][0].timestamp, sent[0][0].sequence
    assert all(
        p.timestamp == (ts0 + 160 * n) & 0xFFFFFFFF and p.sequence == (seq0 + n) & 0xFFFF
        for n, (p, _, _) in enumerate(sent)
    )
    # the last packet went out 10 minutes after the first, give or take one timer slack
    # (sleeping 20 ms each time instead would have drifted by ~60 s here)
    last_sent = sent[-1][2]
    assert 599.98 - 1e-6 <= last_sent - start <= 599.98 + 0.004
    assert all(0.0 <= at - deadline <= 0.004 + 1e-9 for _, deadline, at in sent)
    stats = session.stats()
    assert stats.packets_sent == TEN_MINUTES
    assert stats.ticks_skipped == 0
    assert stats.packets_sent_late == 0
    assert 0.0 < stats.max_send_lateness_s <= 0.004 + 1e-9
    assert session.played_samples == 30_000 * 320  # every 20 ms of speech went out once
    assert session.lateness.count == TEN_MINUTES


async def test_a_stalled_loop_catches_up_without_bursts_and_timestamps_keep_to_the_grid() -> None:
    def oversleep(n: int) -> float:
        if n % 1000 == 0:
            return 0.150  # the loop stalled for 150 ms
        if n % 97 == 0:
            return 0.031  # woke up one and a half ticks late
        return 0.001

    clock = VirtualClock(oversleep=oversleep)
    session, sent = await paced_run(clock, TEN_MINUTES)

    start = sent[0][1]
    ts0, seq0 = sent[0][0].timestamp, sent[0][0].sequence
    skipped = 0
    for i, (packet, deadline, at) in enumerate(sent):
        n = round((deadline - start) / TICK_S)
        assert abs((deadline - start) / TICK_S - n) < 1e-6  # still on the grid
        assert packet.timestamp == (ts0 + 160 * n) & 0xFFFFFFFF  # timestamps follow the clock
        assert packet.sequence == (seq0 + i) & 0xFFFF  # no sequence gap for skipped ticks
        assert at - deadline < MAX_BURST * TICK_S + 0.001  # never more than a burst behind
        skipped = n - i
    stats = session.stats()
    assert stats.ticks_skipped == skipped > 0
    # never more than MAX_BURST packets at the same instant
    burst, longest = 1, 1
    for (_, _, a), (_, _, b) in itertools.pairwise(sent):
        burst = burst + 1 if b == a else 1
        longest = max(longest, burst)
    assert longest == MAX_BURST
    # after 30,000 packets plus the skipped ticks, the schedule has not slipped
    last_deadline = sent[-1][1]
    assert abs(last_deadline - start - (TEN_MINUTES - 1 + skipped) * TICK_S) < 1e-6
    assert stats.packets_sent_late == sum(1 for _, d, a in sent if a - d > 0.020)


async def test_real_clock_two_seconds_give_about_100_packets_160_timestamps_apart() -> None:
    far = await UdpSink.open()
    session = RtpSession(local_host="127.0.0.1")
    try:
        await session.bind()
        session.set_remote("127.0.0.1", far.port)
        began = time.monotonic()
        session.start()
        await asyncio.sleep(2.0)
        await session.aclose()
        elapsed = time.monotonic() - began  # 2 s, more if this machine is very busy
        stats = session.stats()
        await until(lambda: len(far.received) >= stats.packets_sent, within=5)
    finally:
        await session.aclose()
        far.close()
    packets = far.packets
    # one tick per 20 ms: sent, or skipped after a stall (never burst out)
    assert abs(len(packets) + stats.ticks_skipped - elapsed / TICK_S) <= 5
    assert len(packets) + stats.ticks_skipped >= 95
    assert len(packets) >= 80
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(packets)]
    assert all(s % 160 == 0 and s > 0 for s in steps)  # a skipped tick jumps by another 160
    assert sum((s - 160) // 160 for s in steps) == stats.ticks_skipped
    seqs = [p.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
