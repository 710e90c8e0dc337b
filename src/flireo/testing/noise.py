"""Coloured background noise for simulated callers, mixed at a speech-to-noise ratio."""

from __future__ import annotations

import numpy as np

from flireo.media.frames import SAMPLE_RATE

__all__ = ["mix", "noise", "rms"]

#: the level noise is set against when the caller has said nothing yet (Piper's
#: speech is about this loud, RMS of s16 samples)
DEFAULT_SPEECH_RMS = 3000.0


def noise(color: str, seconds: float, *, seed: int = 0) -> np.ndarray:
    """``seconds`` of white, pink (1/f) or brown (1/f²) noise at unit RMS (float64, 16 kHz)."""
    n = max(1, round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    if color == "white":
        shaped = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        f[0] = f[1] if n > 1 else 1.0
        power = 1.0 if color == "pink" else 2.0
        spectrum /= f ** (power / 2)
        spectrum[0] = 0  # no DC
        shaped = np.fft.irfft(spectrum, n)
    level = float(np.sqrt(np.mean(shaped**2))) or 1.0
    return np.asarray(shaped / level)


def rms(pcm16k: bytes) -> float:
    """RMS of the voiced part (20 ms frames above a whisper) of s16le audio."""
    samples = np.frombuffer(pcm16k, "<i2").astype(np.float64)
    usable = samples[: samples.size - samples.size % 320].reshape(-1, 320)
    if not usable.size:
        return 0.0
    frame_rms = np.sqrt((usable**2).mean(axis=1))
    voiced = frame_rms[frame_rms > 200]
    return float(np.sqrt((voiced**2).mean())) if voiced.size else 0.0


def mix(pcm16k: bytes, bed: np.ndarray, offset: int, amplitude: float) -> bytes:
    """``pcm16k`` with the noise ``bed`` (looped from ``offset``) at ``amplitude`` RMS."""
    samples = np.frombuffer(pcm16k, "<i2").astype(np.float64)
    idx = (np.arange(samples.size) + offset) % bed.size
    out = samples + amplitude * bed[idx]
    return np.clip(out, -32768, 32767).astype("<i2").tobytes()


def amplitude_for(speech_rms: float, snr_db: float) -> float:
    return (speech_rms or DEFAULT_SPEECH_RMS) / (10 ** (snr_db / 20))
