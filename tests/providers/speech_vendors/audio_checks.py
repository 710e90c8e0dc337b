"""Small helpers for the speech vendor tests: collect streamed chunks, wait for a
fake server to observe something, make caller-like audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from flireo.providers.tts.base import AudioChunk


async def collect(chunks: AsyncIterator[AudioChunk]) -> list[AudioChunk]:
    return [chunk async for chunk in chunks]


async def eventually(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait (without blocking the loop) until ``condition()`` holds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition did not hold in time")
        await asyncio.sleep(0.01)


def tone(seconds: float, rate: int = 16_000, hz: float = 220.0, level: float = 8000.0) -> bytes:
    """A loud sine tone (reads as speech to the fakes' energy detector)."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * level).astype("<i2").tobytes()


def silence(seconds: float, rate: int = 16_000) -> bytes:
    return bytes(2 * int(seconds * rate))


def frames(pcm: bytes, frame_bytes: int = 640) -> list[bytes]:
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
