"""RTP sessions over loopback UDP: audio both ways, symmetric RTP, SSRC handling,
malformed input, DTMF in and out on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from flireo.media.frames import FRAME_BYTES
from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from flireo.media.resample import Resampler
from flireo.telephony.rtp.codec import PCMA, PCMU
from flireo.telephony.rtp.dtmf import ToneEvent
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.session import SSRC_SWITCH_PACKETS, RtpSession
from tests.telephony.rtp_helpers import UdpSink, audio_packets, digit_packets, noise, until

CODEC_FUNCTIONS = {PCMU: (ulaw_encode, ulaw_decode), PCMA: (alaw_encode, alaw_decode)}


async def collect(frames: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for frame in frames:
        into.append(frame)


async def opened(**kw: object) -> RtpSession:
    session = RtpSession(local_host="127.0.0.1", **kw)  # type: ignore[arg-type]
    await session.bind()
    return session


@pytest.mark.parametrize("codec_pt", [PCMU, PCMA])
async def test_speech_sent_on_one_session_arrives_as_frames_on_the_other(codec_pt: int) -> None:
    encode, decode = CODEC_FUNCTIONS[codec_pt]
    sent: list[RtpPacket] = []
    received: list[RtpPacket] = []
    a = await opened(codec_pt=codec_pt, on_sent=lambda p, _late: sent.append(p))
    # a deep jitter buffer: a stalled loop on a busy machine must not cause underruns here
    b = await opened(
        codec_pt=codec_pt, jitter_ms=200, max_jitter_ms=400, on_received=received.append
    )
    assert a.local_port is not None
    assert b.local_port is not None
    a.set_remote("127.0.0.1", b.local_port)
    b.set_remote("127.0.0.1", a.local_port)
    frames: list[bytes] = []
    reader = asyncio.create_task(collect(b.frames(), frames))
    speech = noise(16_000, 0.6)
    await a.send(speech)
    a.start()
    b.start()
    await until(lambda: a.queued_samples == 0, what="all speech sent")
    await asyncio.sleep(0.6)  # the tail plays out of b's buffer
    await a.aclose()
    await b.aclose()
    await reader

    # the bytes arrived unchanged and in order...
    assert len(received) >= 30
    assert [p.payload for p in received] == [p.payload for p in sent[: len(received)]]
    # ...and decode to exactly the 8 kHz samples a converted and encoded
    resampler = Resampler(16_000, 8_000)
    pcm8 = b"".join(resampler.process(speech[i : i + FRAME_BYTES]) for i in range(0, 19_200, 640))
    want = np.frombuffer(decode(encode(pcm8)), dtype="<i2")
    heard = np.frombuffer(decode(b"".join(p.payload for p in received[:31])), dtype="<i2")
    lead = 1  # the resampler's delay: one sample of silence starts the spurt
    assert np.array_equal(heard[lead : lead + len(want)], want)

    # b played them as 16 kHz frames: the speech is in there, loud and whole
    assert all(len(f) == FRAME_BYTES for f in frames)
    pcm = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.int32)
    loud = np.count_nonzero(np.abs(pcm) > 1000)
    expected = np.count_nonzero(np.abs(np.frombuffer(speech, dtype="<i2")) > 1000)
    assert abs(loud - expected) < 0.1 * expected
    assert b.stats().packets_lost == 0


async def test_audio_flows_both_ways_at_once() -> None:
    a = await opened()
    b = await opened()
    assert a.local_port is not None
    assert b.local_port is not None
    a.set_remote("127.0.0.1", b.local_port)
    b.set_remote("127.0.0.1", a.local_port)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    readers = [
        asyncio.create_task(collect(a.frames(), got_a)),
        asyncio.create_task(collect(b.frames(), got_b)),
    ]
    await a.send(noise(16_000, 0.3, seed=1))
    await b.send(noise(16_000, 0.3, seed=2))
    a.start()
    b.start()
    await until(lambda: a.queued_samples == 0 and b.queued_samples == 0)
    await asyncio.sleep(0.3)
    for s in (a, b):
        await s.aclose()
    await asyncio.gather(*readers)
    for got in (got_a, got_b):
        pcm = np.frombuffer(b"".join(got), dtype="<i2")
        assert np.count_nonzero(np.abs(pcm) > 1000) > 0.2 * 16_000
    assert a.stats().packets_received > 20
    assert b.stats().packets_received > 20


async def test_symmetric_rtp_latches_onto_the_address_packets_come_from() -> None:
    session = await opened()
    nat = (
        await UdpSink.open()
    )  # the caller behind NAT: SDP says one port, packets come from another
    try:
        session.set_remote("127.0.0.1", 9)  # the discard port from the SDP: wrong
        session.start()
        assert session.local_port is not None
        for packet in audio_packets(3):
            nat.send(packet, session.local_port)
        await until(lambda: session.remote == ("127.0.0.1", nat.port), what="latch")
        await until(lambda: len(nat.received) >= 3, what="packets sent to the latched address")
        stranger = await UdpSink.open()
        stranger.send(audio_packets(1, ssrc=0x1234, seq=200)[0], session.local_port)
        await asyncio.sleep(0.1)
        stranger.close()
        assert session.remote == ("127.0.0.1", nat.port)
        assert session.stats().packets_ignored == 1
    finally:
        await session.aclose()
        nat.close()


async def test_without_symmetric_rtp_it_keeps_sending_to_the_sdp_address() -> None:
    session = await opened(symmetric=False)
    sdp_peer = await UdpSink.open()
    other = await UdpSink.open()
    try:
        session.set_remote("127.0.0.1", sdp_peer.port)
        session.start()
        assert session.local_port is not None
        other.send(audio_packets(1)[0], session.local_port)
        await until(lambda: len(sdp_peer.received) >= 3)
        assert other.received == []
        assert session.remote == ("127.0.0.1", sdp_peer.port)
    finally:
        await session.aclose()
        sdp_peer.close()
        other.close()


async def test_other_ssrcs_are_ignored_until_a_new_stream_clearly_takes_over() -> None:
    got: list[RtpPacket] = []
    session = await opened(on_received=got.append)
    peer = await UdpSink.open()
    try:
        assert session.local_port is not None
        port = session.local_port
        first = audio_packets(4, ssrc=1, seq=10)
        intruder = audio_packets(2, ssrc=2, seq=5000)
        # the intruder's packets interleave with the stream: never 3 in a row
        for packet in (first[0], intruder[0], first[1], intruder[1], first[2], first[3]):
            peer.send(packet, port)
        await until(lambda: len(got) == 4)
        assert {p.ssrc for p in got} == {1}
        # the peer restarts its stream with a new SSRC: it takes over after 3 packets
        second = audio_packets(5, ssrc=3, seq=40_000)
        for packet in second:
            peer.send(packet, port)
        await until(lambda: len(got) == 4 + 5 - (SSRC_SWITCH_PACKETS - 1))
        assert [p.ssrc for p in got[4:]] == [3] * 3
        assert session.stats().packets_ignored == 2 + SSRC_SWITCH_PACKETS - 1
    finally:
        await session.aclose()
        peer.close()


async def test_malformed_and_foreign_datagrams_are_dropped_silently() -> None:
    got: list[RtpPacket] = []
    session = await opened(on_received=got.append, dtmf_pt=101)
    peer = await UdpSink.open()
    try:
        assert session.local_port is not None
        good = audio_packets(2)
        garbage = [
            b"\x80",
            b"\x00" * 20,  # version 0
            b"\x40" + bytes(19),  # version 1
            b"\xbf\x00" + bytes(10),  # CSRC count runs past the end
            b"\x80\xc8" + bytes(30),  # RTCP sender report
            RtpPacket(96, 1, 1, 0x1234, b"x").serialize(),  # payload type not negotiated
        ]
        peer.send(good[0], session.local_port)
        for data in garbage:
            peer.send(data, session.local_port)
        peer.send(good[1], session.local_port)
        await until(lambda: len(got) == 2)
        await until(lambda: session.stats().packets_ignored == len(garbage))
        assert session.stats().packets_received == 2
    finally:
        await session.aclose()
        peer.close()


async def test_digits_arrive_once_each_in_order_despite_repeats_and_retransmissions() -> None:
    digits: list[str] = []
    session = await opened(dtmf_pt=101)
    session.on_dtmf = digits.append
    peer = await UdpSink.open()
    try:
        assert session.local_port is not None
        one = digit_packets(1, seq=10, ts=8_000)
        two = digit_packets(2, seq=17, ts=9_600)
        one_again = digit_packets(1, seq=24, ts=11_200)  # the same key pressed again
        stream = [
            *audio_packets(2, seq=8, ts=7_680),
            *one,
            one[-1],  # a retransmitted end packet
            *two[1:],  # the start packet of "2" was lost
            *one_again,
            *one_again[-3:],  # the whole end retransmitted
        ]
        for packet in stream:
            peer.send(packet, session.local_port)
        await until(
            lambda: session.stats().packets_received + session.stats().packets_duplicate >= 21
        )
        await asyncio.sleep(0.05)
        assert digits == ["1", "2", "1"]
    finally:
        await session.aclose()
        peer.close()


async def test_digits_sent_appear_on_the_wire_as_rfc4733_events() -> None:
    session = await opened(dtmf_pt=101)
    far = await UdpSink.open()
    try:
        session.set_remote("127.0.0.1", far.port)
        session.start()
        await asyncio.wait_for(session.send_dtmf("9*"), timeout=10)
        await until(lambda: sum(r.packet.payload_type == 101 for r in far.received) >= 14)
    finally:
        await session.aclose()
        far.close()
    events = [r.packet for r in far.received if r.packet.payload_type == 101]
    assert len(events) == 14
    tones = [ToneEvent.parse(p.payload) for p in events]
    assert [t.digit for t in tones] == ["9"] * 7 + ["*"] * 7
    assert [t.end for t in tones] == ([False] * 4 + [True] * 3) * 2
    assert len({p.timestamp for p in events[:7]}) == 1
    assert len({p.timestamp for p in events[7:]}) == 1
    assert events[0].marker
    assert events[7].marker
    assert len({p.ssrc for p in far.packets}) == 1


async def test_frames_end_when_the_session_closes() -> None:
    session = await opened()
    session.start()
    frames: list[bytes] = []
    reader = asyncio.create_task(collect(session.frames(), frames))
    await until(lambda: len(frames) >= 5)
    await session.aclose()
    await asyncio.wait_for(reader, timeout=5)
    assert set(frames) == {bytes(FRAME_BYTES)}  # nothing received: silence, one per tick


async def test_digits_with_their_own_ssrc_count_without_disturbing_the_audio_stream() -> None:
    """sipp plays its RFC 4733 recordings with their own SSRC, between or during audio."""
    digits: list[str] = []
    session = await opened(dtmf_pt=101)
    session.on_dtmf = digits.append
    peer = await UdpSink.open()
    try:
        assert session.local_port is not None
        audio = audio_packets(20, ssrc=0xDEE0EE8F, seq=59_133)
        one = digit_packets(1, seq=7_984, ts=13_280, ssrc=0x0E05384E)
        pound = digit_packets(11, seq=8_436, ts=92_640, ssrc=0x0E05384E)
        stream = [*audio[:5], *one[:3], *audio[5:8], *one[3:], *audio[8:14], *pound, *audio[14:]]
        for packet in stream:
            peer.send(packet, session.local_port)
        await until(lambda: session.stats().packets_received >= 34, what="all packets")
        stats = session.stats()
        assert digits == ["1", "#"]
        assert stats.packets_ignored == 0  # the audio stream never gave way to the digits
        assert stats.packets_duplicate == 0  # nor did they land in its jitter buffer
    finally:
        await session.aclose()
        peer.close()
