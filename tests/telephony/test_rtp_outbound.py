"""The send stream, tick by tick and without sockets: timestamps on the tick grid,
speech in MemoryTransport's accounting, clear() on barge-in, comfort silence,
RFC 4733 digits interleaved."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flireo.media.frames import FRAME_BYTES
from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from flireo.media.resample import Resampler
from flireo.telephony.rtp.codec import PCMA, PCMU
from flireo.telephony.rtp.dtmf import ToneEvent
from flireo.telephony.rtp.outbound import OutboundStream
from flireo.telephony.rtp.packet import RtpPacket
from tests.telephony.rtp_helpers import tone

SILENT_ULAW = ulaw_encode(bytes(320))
CODEC_FUNCTIONS = {PCMU: (ulaw_encode, ulaw_decode), PCMA: (alaw_encode, alaw_decode)}


def samples(pcm: bytes) -> np.ndarray:  # type: ignore[type-arg]
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def stream(**kw: object) -> OutboundStream:
    args: dict[str, object] = {
        "codec_pt": PCMU,
        "dtmf_pt": 101,
        "ssrc": 0xCAFE,
        "sequence": 65_530,
        "timestamp": 0xFFFFFF00,
    }
    args.update(kw)
    return OutboundStream(**args)  # type: ignore[arg-type]


def run(out: OutboundStream, ticks: int, first: int = 0) -> list[RtpPacket | None]:
    return [out.packet(n) for n in range(first, first + ticks)]


def test_idle_stream_sends_encoded_silence_on_the_tick_grid() -> None:
    out = stream()
    packets = [p for p in run(out, 10) if p is not None]
    assert len(packets) == 10
    assert [p.sequence for p in packets] == [
        65_530,
        65_531,
        65_532,
        65_533,
        65_534,
        65_535,
        0,
        1,
        2,
        3,
    ]
    assert [p.timestamp for p in packets] == [
        (0xFFFFFF00 + 160 * n) & 0xFFFFFFFF for n in range(10)
    ]
    assert all(p.payload == SILENT_ULAW and p.payload_type == PCMU for p in packets)
    assert [p.marker for p in packets] == [True] + [False] * 9
    assert {p.ssrc for p in packets} == {0xCAFE}


def test_without_comfort_silence_nothing_is_sent_and_the_timestamp_jumps() -> None:
    out = stream(send_silence=False)
    assert run(out, 5) == [None] * 5
    out.enqueue(tone(16_000, 0.04))
    first, second = run(out, 2, first=5)
    assert first is not None
    assert second is not None
    assert first.timestamp == (0xFFFFFF00 + 160 * 5) & 0xFFFFFFFF
    assert first.marker
    assert not second.marker
    assert first.sequence == 65_530  # nothing was sent before


@pytest.mark.parametrize("codec_pt", [PCMU, PCMA])
def test_speech_goes_out_resampled_and_encoded_one_frame_a_tick(codec_pt: int) -> None:
    encode, decode = CODEC_FUNCTIONS[codec_pt]
    pcm16 = tone(16_000, 1.0, hz=300)
    out = stream(codec_pt=codec_pt)
    out.enqueue(pcm16[: len(pcm16) // 2])
    out.enqueue(pcm16[len(pcm16) // 2 :])
    assert out.queued_samples == 16_000
    played: list[int] = []
    packets: list[RtpPacket] = []
    for n in range(55):
        packet = out.packet(n)
        assert packet is not None
        packets.append(packet)
        played.append(out.played_samples)
    assert played[:3] == [320, 640, 960]
    assert played[49:] == [16_000] * 6
    assert out.queued_samples == 0
    assert all(p.payload_type == codec_pt and len(p.payload) == 160 for p in packets)
    assert [p.marker for p in packets[:2]] == [True, False]
    # the far end decodes exactly our streaming 16 → 8 kHz conversion, G.711-coded,
    # behind the resampler's delay of silence (a sample or two) at the start
    resampler = Resampler(16_000, 8_000)
    pcm8 = b"".join(resampler.process(pcm16[i : i + FRAME_BYTES]) for i in range(0, 32_000, 640))
    pcm8 += resampler.flush()
    want = samples(decode(encode(pcm8)))
    got = samples(decode(b"".join(p.payload for p in packets)))
    lead = 160 - len(Resampler(16_000, 8_000).process(pcm16[:FRAME_BYTES])) // 2
    assert 0 < lead <= 4
    silence = samples(decode(encode(bytes(2))))[0]  # A-law has no exact zero
    assert (got[:lead] == silence).all()
    assert np.array_equal(got[lead : lead + len(want)], want)
    assert (got[lead + len(want) :] == silence).all()  # silence after the speech


def test_each_talk_spurt_starts_with_the_marker_bit() -> None:
    out = stream()
    run(out, 3)
    out.enqueue(tone(16_000, 0.1))
    packets = run(out, 10, first=3)
    assert [p is not None and p.marker for p in packets] == [True] + [False] * 9
    out.enqueue(tone(16_000, 0.04))
    again = out.packet(13)
    assert again is not None
    assert again.marker


def test_partial_frames_count_as_played_exactly_as_queued() -> None:
    out = stream()
    out.enqueue(bytes(1000))  # 500 samples: a frame and a bit
    out.packet(0)
    assert (out.played_samples, out.queued_samples) == (320, 180)
    out.packet(1)
    assert (out.played_samples, out.queued_samples) == (500, 0)
    out.packet(2)
    assert out.played_samples == 500


def test_clear_drops_queued_speech_at_once_and_playing_stops() -> None:
    out = stream()
    out.enqueue(tone(16_000, 2.0))
    run(out, 10)
    assert out.played_samples == 3_200
    out.clear()
    assert out.queued_samples == 0
    packets = run(out, 20, first=10)
    assert out.played_samples == 3_200  # nothing of the cleared speech plays
    # at most the resampler's last sample trails, then pure silence
    assert all(p is not None and p.payload == SILENT_ULAW for p in packets[1:])
    out.enqueue(tone(16_000, 0.1))
    resumed = out.packet(30)
    assert resumed is not None
    assert resumed.marker
    assert out.played_samples == 3_520


def test_a_hold_sends_silence_keeps_the_queue_and_goes_on_where_it_stopped() -> None:
    out = stream()
    speech = tone(16_000, 1.0)
    out.enqueue(speech)
    run(out, 10)
    assert out.played_samples == 3_200
    out.paused = True  # caller speech over the agent, not judged yet
    held = run(out, 25, first=10)
    assert out.played_samples == 3_200
    assert out.queued_samples == 16_000 - 3_200  # nothing dropped
    # at most the resampler's last sample trails, then silence on the tick grid
    assert all(p is not None and p.payload == SILENT_ULAW for p in held[1:])
    out.paused = False  # a backchannel: the agent goes on
    resumed = run(out, 10, first=35)
    assert resumed[0] is not None
    assert resumed[0].marker  # a new talk spurt
    assert out.played_samples == 3_200 + 10 * 320
    out.paused = True
    out.clear()  # an interruption: clear() ends the hold too
    assert not out.paused
    out.enqueue(tone(16_000, 0.1))
    run(out, 3, first=45)
    assert out.played_samples == 3_200 + 10 * 320 + 3 * 320


def test_digits_go_out_as_rfc4733_events_with_the_end_packet_three_times() -> None:
    out = stream()
    done: list[bool] = []
    out.queue_dtmf("1#", lambda: done.append(True))
    packets = [p for p in run(out, 30) if p is not None]
    events = [p for p in packets if p.payload_type == 101]
    assert len(events) == 14
    first, second = events[:7], events[7:]
    for digit, group in ((1, first), (11, second)):
        tones = [ToneEvent.parse(p.payload) for p in group]
        assert {t.event for t in tones} == {digit}
        assert [t.end for t in tones] == [False] * 4 + [True] * 3
        assert [t.duration for t in tones] == [160, 320, 480, 640, 800, 800, 800]
        assert len({p.timestamp for p in group}) == 1  # one event, one timestamp
        assert [p.marker for p in group] == [True] + [False] * 6
    assert (second[0].timestamp - first[0].timestamp) & 0xFFFFFFFF == 160 * 10  # wrapped
    # one sequence space, no gaps, events and audio interleaved
    seqs = [p.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert done == [True]
    assert packets[7].payload_type == PCMU  # the pause between the digits
    assert packets[7].marker  # audio resumes as a new spurt


def test_speech_waits_while_a_digit_is_sent() -> None:
    out = stream()
    out.queue_dtmf("5")
    out.enqueue(bytes(FRAME_BYTES * 3))
    run(out, 7)
    assert out.played_samples == 0
    run(out, 3, first=7)
    assert out.played_samples == 960


def test_digits_need_a_negotiated_telephone_event_and_valid_characters() -> None:
    with pytest.raises(ValueError, match="telephone-event"):
        stream(dtmf_pt=None).queue_dtmf("1")
    with pytest.raises(ValueError, match="not DTMF"):
        stream().queue_dtmf("12x")
