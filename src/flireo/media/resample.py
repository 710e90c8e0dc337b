"""Sample-rate conversion of s16le mono PCM with libsoxr.

:class:`Resampler` is the streaming, stateful converter used on the live path
(8k↔16k telephony, 22.05k/24k TTS → 16k, 16k → 24k realtime vendors). The
default quality ``"QQ"`` holds back almost nothing; ``"HQ"`` holds back about
66 ms, which the live path cannot afford. :func:`resample_all` converts a whole
buffer at once (``"HQ"``; for tests, prompts and files).
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["QUALITIES", "Resampler", "resample_all"]

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


class Resampler:
    """Streaming converter from ``in_rate`` to ``out_rate``.

    Feed any number of bytes (whole samples) to :meth:`process`; it returns what
    is ready. :meth:`flush` returns the tail at the end of a stream and resets
    the converter for reuse. With equal rates the audio passes through unchanged.
    """

    __slots__ = ("_odd", "_stream", "in_rate", "out_rate", "quality")

    def __init__(self, in_rate: int, out_rate: int, quality: str = "QQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
        if quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality
        self._odd = b""  # a dangling byte when a caller splits a sample
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(
            self.in_rate, self.out_rate, 1, dtype="int16", quality=self.quality
        )

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    @property
    def delay_ms(self) -> float:
        """Audio currently held back inside the converter, in milliseconds of output."""
        if self._stream is None:
            return 0.0
        return float(self._stream.delay()) * 1000.0 / self.out_rate

    def process(self, pcm16: bytes) -> bytes:
        """Convert the next piece of the stream; returns the output ready so far."""
        if self._odd:
            pcm16 = self._odd + pcm16
            self._odd = b""
        if len(pcm16) & 1:
            self._odd = pcm16[-1:]
            pcm16 = pcm16[:-1]
        if self._stream is None:
            return pcm16
        if not pcm16:
            return b""
        out: np.ndarray = self._stream.resample_chunk(np.frombuffer(pcm16, dtype="<i2"))
        return out.tobytes()

    def flush(self) -> bytes:
        """End of stream: return the held-back tail and reset for a new stream."""
        self._odd = b""
        if self._stream is None:
            return b""
        out: np.ndarray = self._stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        # A fresh converter: soxr's clear() leaves the filter phase where it was.
        self._stream = self._new_stream()
        return out.tobytes()


def resample_all(pcm16: bytes, in_rate: int, out_rate: int) -> bytes:
    """Convert a whole s16le mono buffer at high quality."""
    if in_rate == out_rate:
        return pcm16
    if len(pcm16) & 1:
        raise ValueError("PCM buffer has an odd number of bytes")
    samples = np.frombuffer(pcm16, dtype="<i2")
    if samples.size == 0:
        return b""
    out: np.ndarray = soxr.resample(samples, in_rate, out_rate, quality="HQ")
    return out.astype("<i2", copy=False).tobytes()
