"""One pacer for all sessions: every session of a clock is ticked by one task, each
keeps its own timestamp grid, a failing session stops alone, and caller frames can
be handed to a synchronous sink instead of the async iterator."""

from __future__ import annotations

import asyncio
import socket

import pytest

from flireo.media.frames import FRAME_BYTES
from flireo.media.ticker import TICK_S, ticker_for
from flireo.telephony.media_transport import SipMediaTransport
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.session import RtpSession
from tests.telephony.rtp_helpers import UdpSink, VirtualClock, audio_packets, until


async def test_fifty_sessions_share_one_pacer_and_keep_their_own_grids() -> None:
    clock = VirtualClock()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # never read
    sent: dict[int, list[tuple[RtpPacket, float]]] = {}
    sessions: list[RtpSession] = []

    def recorder(i: int) -> object:
        sent[i] = []
        return lambda packet, lateness: sent[i].append((packet, clock.monotonic() - lateness))

    try:
        for i in range(50):
            session = RtpSession(local_host="127.0.0.1", clock=clock, on_sent=recorder(i))  # type: ignore[arg-type]
            await session.bind()
            session.set_remote("127.0.0.1", sink.getsockname()[1])
            sessions.append(session)
        ticker = ticker_for(clock)
        for session in sessions[:25]:
            session.start()
        await until(lambda: len(sent[0]) >= 100, what="100 ticks")
        for session in sessions[25:]:  # joining a running pacer
            session.start()
        await until(lambda: len(sent[49]) >= 100, what="100 ticks of the late joiners")
        assert len(ticker) == 50
        wakeups = ticker.wakeups
        assert len(sent[0]) - 1 <= wakeups <= len(sent[0]) + 1  # one wake-up a tick, for all
    finally:
        for session in sessions:
            session.close()
        sink.close()
    assert len(ticker) == 0
    grid0 = sent[0][0][1]
    for packets in sent.values():
        ts0, seq0 = packets[0][0].timestamp, packets[0][0].sequence
        for n, (packet, deadline) in enumerate(packets):
            assert packet.timestamp == (ts0 + 160 * n) & 0xFFFFFFFF
            assert packet.sequence == (seq0 + n) & 0xFFFF
            ticks = (deadline - grid0) / TICK_S  # every deadline is on the one shared grid
            assert abs(ticks - round(ticks)) < 1e-6
    # the late joiners started on a later tick of the same grid, not a grid of their own
    assert sent[49][0][1] > sent[0][0][1]


async def test_a_session_whose_tick_fails_is_closed_and_the_others_go_on() -> None:
    clock = VirtualClock()
    far = await UdpSink.open()
    good = RtpSession(local_host="127.0.0.1", clock=clock)
    calls = 0

    def explode(_packet: RtpPacket, _lateness: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")

    bad = RtpSession(local_host="127.0.0.1", clock=clock, on_sent=explode)
    try:
        for session in (good, bad):
            await session.bind()
            session.set_remote("127.0.0.1", far.port)
            session.start()
        await until(lambda: bad.closed, what="the failing session closed")
        before = good.stats().packets_sent
        await until(lambda: good.stats().packets_sent > before + 20, what="the other goes on")
        assert not good.closed
        assert bad.stats().packets_sent == 3
    finally:
        good.close()
        bad.close()
        far.close()


async def test_frames_go_to_a_sink_in_the_tick_queued_ones_first() -> None:
    far = await UdpSink.open()
    session = RtpSession(local_host="127.0.0.1", jitter_ms=20)
    frames: list[bytes] = []
    try:
        await session.bind()
        assert session.local_port is not None
        session.start()
        await asyncio.sleep(0.1)  # a few silent frames queue up for frames()
        session.set_frame_sink(frames.append)
        queued = len(frames)
        assert queued >= 3  # handed over at once, nothing lost
        loud = bytes([0x20] * 160)  # a μ-law payload far from silence
        for packet in audio_packets(20, ssrc=7, payload=lambda _i: loud):
            far.send(packet, session.local_port)
            await asyncio.sleep(TICK_S)
        await asyncio.sleep(0.1)
        heard = [f for f in frames[queued:] if any(f)]
        assert len(heard) >= 15  # the speech arrived through the sink, a frame a tick
        assert all(len(f) == FRAME_BYTES for f in frames)
        session.set_frame_sink(None)  # back to the iterator
        count = len(frames)
        iterator = session.frames()
        first = await asyncio.wait_for(anext(iterator), 1.0)
        assert len(first) == FRAME_BYTES
        assert len(frames) == count
    finally:
        session.close()
        far.close()


@pytest.mark.parametrize("ending", ["close", "detach"])
async def test_media_transport_listen_ends_on_close_and_hands_frames_back_on_detach(
    ending: str,
) -> None:
    async def nothing() -> None:
        return None

    async def refuse(_destination: str) -> object:
        raise AssertionError("no transfer here")

    rtp = RtpSession(local_host="127.0.0.1")
    await rtp.bind()
    transport = SipMediaTransport(rtp, on_hangup=nothing, on_transfer=refuse)  # type: ignore[arg-type]
    heard: list[bytes] = []
    rtp.start()
    listening = asyncio.create_task(transport.listen(heard.append))
    await until(lambda: len(heard) >= 5, what="frames through the sink")
    assert not listening.done()
    if ending == "close":
        rtp.close()
        await asyncio.wait_for(listening, 1.0)
    else:
        transport.detach()  # a bridge takes the media: the engine stops hearing it
        await asyncio.wait_for(listening, 1.0)
        count = len(heard)
        frame = await asyncio.wait_for(anext(rtp.frames()), 1.0)  # the bridge's read
        assert len(frame) == FRAME_BYTES
        assert len(heard) == count
        assert not rtp.closed
        rtp.close()
