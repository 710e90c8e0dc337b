"""The jitter buffer and the receive chain, without sockets: reordering, duplicates,
loss, late packets, wrap-around, and one engine frame per 20 ms whatever happens."""

from __future__ import annotations

import numpy as np

from flireo.media.frames import FRAME_BYTES
from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from flireo.media.resample import Resampler
from flireo.telephony.rtp.jitter import LOST, JitterBuffer, Push, Slot
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.playout import Playout
from tests.telephony.rtp_helpers import audio_packets, digit_packets, tone


def drain(buffer: JitterBuffer, ticks: int) -> list[int | str | None]:
    """Pop ``ticks`` times: the first payload byte of each slot, 'lost', or None."""
    out: list[int | str | None] = []
    for _ in range(ticks):
        slot = buffer.pop()
        if slot is None:
            out.append(None)
        elif slot is LOST:
            out.append("lost")
        else:
            assert isinstance(slot, Slot)
            out.append(slot.payload[0])
    return out


def test_waits_for_the_prefetch_depth_then_plays_in_order() -> None:
    buffer = JitterBuffer(prefetch=3)
    packets = audio_packets(5)
    buffer.push(packets[0])
    buffer.push(packets[1])
    assert buffer.pop() is None  # 40 ms buffered: still filling
    buffer.push(packets[2])
    assert drain(buffer, 3) == [0, 1, 2]
    buffer.push(packets[3])
    buffer.push(packets[4])
    assert drain(buffer, 2) == [3, 4]


def test_reordered_packets_come_out_in_sequence_order() -> None:
    buffer = JitterBuffer(prefetch=3)
    packets = audio_packets(6)
    for i in (1, 0, 3, 2, 5, 4):
        assert buffer.push(packets[i]) is Push.ACCEPTED
    assert drain(buffer, 6) == [0, 1, 2, 3, 4, 5]
    assert buffer.stats.lost == 0


def test_duplicates_are_dropped() -> None:
    buffer = JitterBuffer(prefetch=2)
    packets = audio_packets(3)
    assert buffer.push(packets[0]) is Push.ACCEPTED
    assert buffer.push(packets[0]) is Push.DUPLICATE
    buffer.push(packets[1])
    assert buffer.push(packets[1]) is Push.DUPLICATE
    buffer.push(packets[2])
    assert drain(buffer, 4) == [0, 1, 2, None]
    assert buffer.stats.duplicate == 2
    assert buffer.stats.received == 3


def test_a_missing_packet_is_lost_when_its_turn_comes_and_dropped_if_it_comes_later() -> None:
    buffer = JitterBuffer(prefetch=3)
    packets = audio_packets(6)
    for i in (0, 1, 3, 4):
        buffer.push(packets[i])
    assert drain(buffer, 3) == [0, 1, "lost"]
    assert buffer.push(packets[2]) is Push.LATE  # its turn has passed
    buffer.push(packets[5])
    assert drain(buffer, 3) == [3, 4, 5]
    assert buffer.stats.lost == 1
    assert buffer.stats.late == 1


def test_sequence_numbers_wrap_from_65535_to_0() -> None:
    buffer = JitterBuffer(prefetch=3)
    packets = audio_packets(8, seq=65_532)  # 65532 ... 65535, 0 ... 3
    assert [p.sequence for p in packets[3:5]] == [65_535, 0]
    for i in (0, 1, 2, 4, 3, 6, 5, 7):  # reordered across the wrap
        assert buffer.push(packets[i]) is Push.ACCEPTED
    assert drain(buffer, 8) == list(range(8))
    late = audio_packets(1, seq=65_534)[0]
    assert buffer.push(late) is Push.LATE


def test_an_underrun_plays_nothing_and_waits_to_refill() -> None:
    buffer = JitterBuffer(prefetch=2)
    packets = audio_packets(4)
    buffer.push(packets[0])
    buffer.push(packets[1])
    assert drain(buffer, 3) == [0, 1, None]
    buffer.push(packets[2])
    assert buffer.pop() is None  # refilling to the prefetch depth again
    buffer.push(packets[3])
    assert drain(buffer, 2) == [2, 3]
    assert buffer.stats.underruns == 1
    assert buffer.stats.lost == 0  # a pause in the stream is not a loss


def test_a_burst_beyond_the_maximum_depth_drops_the_oldest() -> None:
    buffer = JitterBuffer(prefetch=3, max_depth=5)
    for packet in audio_packets(12):
        buffer.push(packet)
    assert buffer.depth == 3  # trimmed back to the prefetch depth, newest kept
    assert drain(buffer, 3) == [9, 10, 11]
    assert buffer.stats.discarded == 9


def test_a_sequence_jump_restarts_only_when_the_next_packet_confirms_it() -> None:
    buffer = JitterBuffer(prefetch=1)
    buffer.push(audio_packets(1, seq=10)[0])
    stray = audio_packets(1, seq=30_000)[0]
    assert buffer.push(stray) is Push.PROBATION
    assert buffer.push(audio_packets(1, seq=11)[0]) is Push.ACCEPTED  # the stream goes on
    restarted = audio_packets(2, seq=40_000)
    assert buffer.push(restarted[0]) is Push.PROBATION
    assert buffer.push(restarted[1]) is Push.RESTARTED
    assert buffer.stats.restarts == 1
    slot = buffer.pop()
    assert isinstance(slot, Slot)
    assert slot.sequence == 40_001


# --- the receive chain ------------------------------------------------------------------
def play(playout: Playout, packets: list[RtpPacket], order: list[int] | None = None) -> bytes:
    """Push every packet then tick one tick per packet plus the prefetch, with the
    packets arriving one per tick (in ``order``)."""
    order = order if order is not None else list(range(len(packets)))
    frames: list[bytes] = []
    for i in order:
        playout.buffer.push(packets[i])
        frames.append(playout.tick())
    for _ in range(playout.buffer.prefetch + 2):
        frames.append(playout.tick())
    assert all(len(f) == FRAME_BYTES for f in frames)
    return b"".join(frames)


def expected_16k(pcm8: bytes) -> bytes:
    resampler = Resampler(8_000, 16_000)
    return resampler.process(pcm8) + resampler.flush()


def assert_same_audio(got: bytes, want: bytes, max_shift: int = 8) -> None:
    """The same samples (to rounding), allowing the few samples of silence the
    playout puts in front of a talk spurt for the resampler's delay."""
    g = np.frombuffer(got, dtype="<i2").astype(np.int32)
    w = np.frombuffer(want, dtype="<i2").astype(np.int32)
    n = len(w) - max_shift
    assert len(g) >= n + max_shift
    errors = [int(np.max(np.abs(g[s : s + n] - w[:n]))) for s in range(max_shift + 1)]
    assert min(errors) <= 2, errors


def test_every_tick_yields_one_silent_frame_while_nothing_is_received() -> None:
    playout = Playout(JitterBuffer(prefetch=3))
    assert {playout.tick() for _ in range(50)} == {bytes(FRAME_BYTES)}


def test_ulaw_packets_become_the_decoded_audio_at_16khz() -> None:
    pcm8 = tone(8_000, 0.4)
    encoded = ulaw_encode(pcm8)
    packets = audio_packets(20, payload=lambda i: encoded[160 * i : 160 * (i + 1)])
    playout = Playout(JitterBuffer(prefetch=3))
    out = play(playout, packets, order=[1, 0, 2, 3, 5, 4, *range(6, 20)])
    lead = 2 * FRAME_BYTES  # silence until 3 packets (60 ms) were in
    assert out[:lead] == bytes(lead)
    assert_same_audio(out[lead:], expected_16k(ulaw_decode(encoded)))
    assert len(out) == (20 + 5) * FRAME_BYTES


def test_alaw_payload_type_is_decoded_as_alaw() -> None:
    pcm8 = tone(8_000, 0.2, hz=1000)
    encoded = alaw_encode(pcm8)
    packets = audio_packets(10, pt=8, payload=lambda i: encoded[160 * i : 160 * (i + 1)])
    out = play(Playout(JitterBuffer(prefetch=1)), packets)
    assert_same_audio(out, expected_16k(alaw_decode(encoded)))


def test_a_lost_packet_becomes_20ms_of_silence_in_its_place() -> None:
    loud = bytes([0x10]) * 160  # μ-law 0x10: a large negative sample
    packets = audio_packets(10, payload=lambda _i: loud)
    playout = Playout(JitterBuffer(prefetch=2))
    frames: list[bytes] = []
    for i, packet in enumerate(packets):
        if i != 5:
            playout.buffer.push(packet)
        frames.append(playout.tick())
    frames += [playout.tick() for _ in range(4)]
    assert len(frames) == 14
    samples = np.frombuffer(b"".join(frames), dtype="<i2")
    per_frame = samples.reshape(14, 320)
    # frames: 1 of prefetch silence, packets 0-4, the lost one, packets 6-9, silence
    loudness = [int(np.abs(f[40:280]).max()) for f in per_frame]
    assert loudness[0] == 0
    assert all(v > 10_000 for v in loudness[1:6])
    assert loudness[6] == 0
    assert all(v > 10_000 for v in loudness[7:11])
    assert loudness[11:] == [0, 0, 0]
    assert playout.buffer.stats.lost == 1


def test_timestamps_wrapping_past_2_32_do_not_disturb_playout() -> None:
    encoded = ulaw_encode(tone(8_000, 0.2))
    packets = audio_packets(
        10, ts=0xFFFFFFFF - 400, payload=lambda i: encoded[160 * i : 160 * (i + 1)]
    )
    assert packets[2].timestamp > packets[3].timestamp  # wrapped
    out = play(Playout(JitterBuffer(prefetch=2)), packets)
    assert_same_audio(out[FRAME_BYTES:], expected_16k(ulaw_decode(encoded)))


def test_telephone_event_packets_play_as_silence_not_as_loss() -> None:
    speech = audio_packets(3, seq=1, ts=0)
    events = digit_packets(1, seq=4, ts=480)
    after = audio_packets(3, seq=11, ts=1600)
    playout = Playout(JitterBuffer(prefetch=1))
    frames: list[bytes] = []
    for packet in [*speech, *events, *after]:
        playout.buffer.push(packet)
        frames.append(playout.tick())
    assert len(frames) == 13
    assert playout.buffer.stats.lost == 0
    silent = [not any(f[40:600]) for f in frames]
    assert silent == [False] * 3 + [True] * 7 + [False] * 3


def test_30ms_packets_still_give_one_20ms_frame_per_tick() -> None:
    """sipp's g711a.pcap carries 30 ms (240-sample) PCMA packets."""
    encoded = alaw_encode(tone(8_000, 0.6, hz=500))
    packets = [RtpPacket(8, 1 + i, 240 * i, 7, encoded[240 * i : 240 * (i + 1)]) for i in range(20)]
    arrivals = {3 * k // 2: packet for k, packet in enumerate(packets)}  # every 30 ms
    playout = Playout(JitterBuffer(prefetch=2))
    frames: list[bytes] = []
    for tick in range(40):  # a tick every 20 ms
        if tick in arrivals:
            playout.buffer.push(arrivals[tick])
        frames.append(playout.tick())
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert playout.buffer.stats.lost == 0
    assert playout.buffer.stats.underruns == 1  # only once the 600 ms are over
    out_pcm = b"".join(frames)
    assert out_pcm[:FRAME_BYTES] == bytes(FRAME_BYTES)  # until 2 packets were in
    assert_same_audio(out_pcm[FRAME_BYTES:], expected_16k(alaw_decode(encoded)))
