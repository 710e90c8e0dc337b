"""The engine's audio vocabulary: 16 kHz mono signed 16-bit little-endian PCM,
moved in 20 ms frames. Transports convert to and from this at their edge."""

from __future__ import annotations

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320
BYTES_PER_SAMPLE = 2
FRAME_BYTES = FRAME_SAMPLES * BYTES_PER_SAMPLE  # 640


def duration_seconds(pcm_bytes: int, sample_rate: int = SAMPLE_RATE) -> float:
    """Length in seconds of ``pcm_bytes`` bytes of s16le mono audio."""
    return pcm_bytes / (BYTES_PER_SAMPLE * sample_rate)
