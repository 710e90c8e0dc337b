"""RFC 4733 digits in: exactly once per key press, whatever is repeated or lost."""

from __future__ import annotations

from flireo.telephony.rtp.digits import DigitDetector
from flireo.telephony.rtp.dtmf import ToneEvent


def press(event: int, *, steps: int = 4) -> list[ToneEvent]:
    """A press as sipp's pcaps hold it: duration 0, 320, 640..., then the end x3."""
    out = [ToneEvent(event, False, 10, 320 * i) for i in range(steps)]
    return out + [ToneEvent(event, True, 10, 320 * steps)] * 3


def feed(
    detector: DigitDetector, ts: int, events: list[ToneEvent], start: float, step: float = 0.02
) -> list[str]:
    digits = []
    for i, event in enumerate(events):
        digit = detector.feed(ts, event.serialize(), start + i * step)
        if digit is not None:
            digits.append(digit)
    return digits


def test_one_press_is_one_digit_despite_the_repeated_end_packets() -> None:
    detector = DigitDetector()
    assert feed(detector, 13_280, press(1), 0.0) == ["1"]


def test_a_retransmitted_press_is_not_a_second_digit() -> None:
    detector = DigitDetector()
    assert feed(detector, 13_280, press(1), 0.0) == ["1"]
    # the sender repeats its end packets a while later, and a straggler shows up
    assert feed(detector, 13_280, press(1)[-3:], 0.3) == []
    assert feed(detector, 13_280, [ToneEvent(1, False, 10, 960)], 0.35) == []


def test_a_lost_start_packet_still_gives_the_digit_once() -> None:
    detector = DigitDetector()
    assert feed(detector, 500, press(11)[2:], 0.0) == ["#"]
    assert feed(detector, 500, press(11)[-1:], 0.5) == []


def test_different_keys_and_timestamps_are_different_presses_in_order() -> None:
    detector = DigitDetector()
    digits = feed(detector, 100, press(1), 0.0)
    digits += feed(detector, 900, press(2), 0.2)
    digits += feed(detector, 1_700, press(10), 0.4)
    digits += feed(detector, 2_500, press(1), 0.6)
    assert digits == ["1", "2", "*", "1"]


def test_the_same_recording_played_again_is_a_new_press() -> None:
    detector = DigitDetector()
    recording = press(5)
    # "55": sipp plays the same pcap twice (same timestamp and sequence numbers)
    assert feed(detector, 43_200, recording, 0.0) == ["5"]
    assert feed(detector, 43_200, recording, 0.2) == ["5"]
    # and once more after a long pause
    assert feed(detector, 43_200, recording[-3:], 2.0) == ["5"]


def test_a_start_packet_reordered_behind_the_end_is_not_a_new_press() -> None:
    detector = DigitDetector()
    events = press(7)
    order = [events[1], events[4], events[0], events[2], events[5], events[3], events[6]]
    assert feed(detector, 4_000, order, 0.0, step=0.005) == ["7"]


def test_non_digit_events_and_garbage_are_ignored() -> None:
    detector = DigitDetector()
    assert detector.feed(1, ToneEvent(16, True, 10, 800).serialize(), 0.0) is None  # flash
    assert detector.feed(1, b"\x01", 0.0) is None
