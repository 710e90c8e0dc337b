"""Background noise for simulated callers: its colour and the speech-to-noise ratio."""

from __future__ import annotations

import numpy as np
import pytest

from flireo.testing.noise import amplitude_for, mix, noise, rms


def band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 16_000)
    return float(spectrum[(f >= lo) & (f < hi)].mean())


@pytest.mark.parametrize(("color", "db_per_octave"), [("white", 0), ("pink", -3), ("brown", -6)])
def test_noise_has_its_colour(color: str, db_per_octave: float) -> None:
    x = noise(color, 4.0, seed=1)
    assert abs(float(np.sqrt(np.mean(x**2))) - 1) < 1e-6
    # 250-500 Hz against 2-4 kHz: three octaves apart
    slope = 10 * np.log10(band_power(x, 2000, 4000) / band_power(x, 250, 500)) / 3
    assert abs(slope - db_per_octave) < 1.0, slope


def test_speech_is_mixed_at_the_asked_snr() -> None:
    t = np.arange(16_000) / 16_000
    speech = (3000 * np.sqrt(2) * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    assert abs(rms(speech) - 3000) < 20
    bed = noise("pink", 2.0)
    amplitude = amplitude_for(rms(speech), 10.0)
    mixed = np.frombuffer(mix(speech, bed, 0, amplitude), "<i2").astype(np.float64)
    added = mixed - np.frombuffer(speech, "<i2")
    snr = 20 * np.log10(3000 / float(np.sqrt(np.mean(added**2))))
    assert abs(snr - 10.0) < 0.3, snr
    assert rms(bytes(3200)) == 0.0  # silence has no speech level
