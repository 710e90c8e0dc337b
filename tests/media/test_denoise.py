"""RNNoise from the installed pyrnnoise wheel: the pinned library, frame in → frame out
40 ms later, noise attenuated, Piper speech kept; and in the TurnTaker the VAD hears the
cleaned audio."""

from __future__ import annotations

import numpy as np
import pytest

from flireo.media.checksum import file_sha256
from flireo.media.denoise import RNNOISE_SHA256, Denoiser, rnnoise_library_path
from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE

#: 16k→48k and 48k→16k streaming resamplers plus the primed output frame
DELAY_SAMPLES = 640


def _level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9))


def _run(denoiser: Denoiser, pcm: bytes) -> bytes:
    pcm = pcm[: len(pcm) // FRAME_BYTES * FRAME_BYTES]
    out = [denoiser.process(pcm[i : i + FRAME_BYTES]) for i in range(0, len(pcm), FRAME_BYTES)]
    assert all(len(f) == FRAME_BYTES for f in out)
    return b"".join(out)


def _noise(seconds: float, colour: str, level: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * SAMPLE_RATE))
    if colour == "brown":
        white = np.cumsum(white)
        white -= np.convolve(white, np.ones(400) / 400, mode="same")  # no DC drift
    return white / np.sqrt(np.mean(white**2)) * level


def test_the_library_is_the_pinned_one() -> None:
    assert file_sha256(rnnoise_library_path()) == RNNOISE_SHA256


@pytest.mark.parametrize("colour", ["white", "brown"])
def test_steady_noise_is_attenuated(colour: str) -> None:
    noise = _noise(3.0, colour, 2000.0)
    pcm = np.clip(noise, -32768, 32767).astype(np.int16).tobytes()
    denoiser = Denoiser()
    out = np.frombuffer(_run(denoiser, pcm), dtype=np.int16)
    tail = slice(SAMPLE_RATE, None)  # after a second to learn the noise
    assert _level_db(out[tail]) < _level_db(np.frombuffer(pcm, np.int16)[tail]) - 10
    assert denoiser.frames == len(pcm) // FRAME_BYTES
    assert denoiser.cpu_s > 0


def test_piper_speech_keeps_its_level_and_timing(appointment_pcm: bytes) -> None:
    pcm = appointment_pcm[: len(appointment_pcm) // FRAME_BYTES * FRAME_BYTES]
    out = np.frombuffer(_run(Denoiser(), pcm), dtype=np.int16).astype(np.float64)
    src = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    assert abs(_level_db(out[DELAY_SAMPLES:]) - _level_db(src[:-DELAY_SAMPLES])) < 3
    # the speech comes out DELAY_SAMPLES later: that lag lines it up best
    lags = range(0, 1600, 16)
    best = max(lags, key=lambda lag: float(np.dot(src[: src.size - lag], out[lag:])))
    assert abs(best - DELAY_SAMPLES) <= 32
