"""Streaming resampling: same audio as one-shot conversion, right lengths, little delay."""

from __future__ import annotations

import numpy as np
import pytest

from flireo.media.resample import Resampler, resample_all

RATE_PAIRS = [
    (8_000, 16_000),
    (16_000, 8_000),
    (22_050, 16_000),
    (24_000, 16_000),
    (16_000, 24_000),
]


def tone(rate: int, seconds: float, hz: float = 440.0, amplitude: float = 8_000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


def in_frames(resampler: Resampler, pcm: bytes, rate: int) -> bytes:
    step = rate * 20 // 1000 * 2
    out = b"".join(resampler.process(pcm[i : i + step]) for i in range(0, len(pcm), step))
    return out + resampler.flush()


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_streaming_in_20ms_frames_equals_converting_the_whole_buffer(
    in_rate: int, out_rate: int
) -> None:
    pcm = tone(in_rate, 1.0)
    whole = Resampler(in_rate, out_rate)
    expected = np.frombuffer(whole.process(pcm) + whole.flush(), dtype="<i2").astype(np.int32)
    streamed = np.frombuffer(
        in_frames(Resampler(in_rate, out_rate), pcm, in_rate), dtype="<i2"
    ).astype(np.int32)
    assert len(streamed) == len(expected)
    assert np.max(np.abs(streamed - expected)) <= 2  # rounding only


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("quality", ["QQ", "MQ"])
def test_output_length_follows_the_rate_ratio(in_rate: int, out_rate: int, quality: str) -> None:
    out = in_frames(Resampler(in_rate, out_rate, quality), tone(in_rate, 2.0), in_rate)
    assert abs(len(out) // 2 - 2 * out_rate) <= 2


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_quick_quality_holds_back_less_than_a_millisecond(in_rate: int, out_rate: int) -> None:
    resampler = Resampler(in_rate, out_rate, "QQ")
    pcm = tone(in_rate, 0.2)
    step = in_rate * 20 // 1000 * 2
    produced = sum(len(resampler.process(pcm[i : i + step])) for i in range(0, len(pcm), step))
    held_back = out_rate * 0.2 - produced // 2
    assert held_back * 1000 / out_rate < 1.0
    assert resampler.delay_ms < 1.0


def test_equal_rates_pass_audio_through_unchanged() -> None:
    resampler = Resampler(16_000, 16_000)
    pcm = tone(16_000, 0.1)
    assert resampler.passthrough
    assert resampler.process(pcm) == pcm
    assert resampler.flush() == b""


def test_a_sample_split_across_two_calls_is_kept_whole() -> None:
    pcm = tone(16_000, 0.1)
    split = Resampler(16_000, 16_000)
    assert split.process(pcm[:101]) + split.process(pcm[101:]) == pcm


def test_tone_keeps_its_pitch_after_conversion() -> None:
    out = np.frombuffer(resample_all(tone(22_050, 1.0, hz=1_000), 22_050, 16_000), dtype="<i2")
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * 16_000 / len(out)
    assert abs(peak_hz - 1_000) < 2


def test_flush_lets_the_resampler_start_a_new_stream() -> None:
    resampler = Resampler(8_000, 16_000)
    pcm = tone(8_000, 0.5)
    first = in_frames(resampler, pcm, 8_000)
    second = in_frames(resampler, pcm, 8_000)
    assert first == second


def test_unknown_quality_is_rejected() -> None:
    with pytest.raises(ValueError, match="quality"):
        Resampler(8_000, 16_000, "ultra")
