"""Pieces shared by the fake speech vendors (Deepgram, OpenAI audio, ElevenLabs,
Cartesia): speech-like PCM, scripted HTTP failures, streamed audio bodies and a
record of what clients sent.

* :func:`speech_like_pcm` makes a voiced, syllable-modulated signal whose
  length is proportional to the text (``seconds_per_char``), so a longer
  sentence streams longer audio.
* :class:`Faults` queues failures for the next requests (thread-safe, called
  from the test's thread): an HTTP status with a vendor-shaped body, a stall
  (a pause before or in the middle of the audio), or a dropped connection
  (the server aborts the body half-way).
* :func:`stream_audio` yields an audio body in chunks of ``chunk_bytes``
  (odd by default, as real network chunks split samples anywhere) with
  ``chunk_delay`` between them, applying a scripted stall or drop, and
  reports how the stream ended to :class:`StreamLog` (``completed``, or
  ``disconnected`` when the client went away first).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.types import Receive, Scope, Send

__all__ = [
    "AudioStreamResponse",
    "DroppedByFake",
    "Fault",
    "Faults",
    "RecordedRequest",
    "StreamLog",
    "StreamPlan",
    "speech_like_pcm",
    "stream_audio",
]


def speech_like_pcm(
    text: str, sample_rate: int, *, seconds_per_char: float = 0.05, min_seconds: float = 0.2
) -> bytes:
    """A deterministic voiced signal (drifting pitch, 4 Hz syllables) as s16le."""
    seconds = max(min_seconds, len(text) * seconds_per_char)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = 120.0 + 25.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t))
    signal = voiced * (0.15 + 0.85 * syllables) * 6000.0
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    #: multipart files: field name → (filename, content type, bytes)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass(frozen=True)
class Fault:
    #: answer with this HTTP status (and ``body``) instead of audio
    status: int | None = None
    body: Any = None
    #: pause this long after ``after_bytes`` of audio
    stall_seconds: float = 0.0
    #: abort the connection after this many bytes of audio
    drop_after_bytes: int | None = None
    after_bytes: int = 0
    #: extra headers of a ``status`` answer (e.g. ``Retry-After``)
    headers: dict[str, str] | None = None


class Faults:
    """Failures for the next requests, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def fail_next(
        self,
        status: int,
        body: Any = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._queue.extend([Fault(status=status, body=body, headers=headers)] * times)

    def stall_next(self, seconds: float, after_bytes: int = 0, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([Fault(stall_seconds=seconds, after_bytes=after_bytes)] * times)

    def drop_next(self, after_bytes: int, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([Fault(drop_after_bytes=after_bytes)] * times)

    def take(self) -> Fault | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None


@dataclass
class StreamPlan:
    chunk_bytes: int = 1501
    chunk_delay: float = 0.0


class StreamLog:
    """How streamed audio bodies ended (thread-safe counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.completed = 0
        self.disconnected = 0
        self.dropped = 0

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)


class DroppedByFake(Exception):
    """Raised inside a body generator: the server aborts the connection."""


async def stream_audio(
    audio: bytes, plan: StreamPlan, log: StreamLog, fault: Fault | None = None
) -> AsyncGenerator[bytes, None]:
    log.count("started")
    sent = 0
    stalled = False
    try:
        for start in range(0, len(audio), plan.chunk_bytes):
            if fault is not None:
                if fault.drop_after_bytes is not None and sent >= fault.drop_after_bytes:
                    log.count("dropped")
                    raise DroppedByFake("scripted drop")
                if fault.stall_seconds and not stalled and sent >= fault.after_bytes:
                    stalled = True
                    await asyncio.sleep(fault.stall_seconds)
            chunk = audio[start : start + plan.chunk_bytes]
            yield chunk
            sent += len(chunk)
            if plan.chunk_delay:
                await asyncio.sleep(plan.chunk_delay)
    except (asyncio.CancelledError, GeneratorExit):
        log.count("disconnected")
        raise
    log.count("completed")


class AudioStreamResponse:
    """An ASGI streaming response that notices a client going away at once
    (even during a stall) and closes the body generator, so the fake's
    :class:`StreamLog` records the disconnect. An exception in the body aborts
    the connection mid-body (a scripted drop)."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body = body
        self.media_type = media_type
        self.headers = dict(headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self.media_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        streaming = asyncio.create_task(self._stream(send))
        watching = asyncio.create_task(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
            if not streaming.done():
                streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await streaming
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await self.body.aclose()

    async def _stream(self, send: Send) -> None:
        async for chunk in self.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
