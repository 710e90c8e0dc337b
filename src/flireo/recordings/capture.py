"""A call's recording as it happens: two channels on one timeline, written off the loop.

The transport of a call (:meth:`AudioTransport.attach_recorder`) calls
:meth:`CallRecorder.on_tick` once per 20 ms pacer tick, on the event loop, with
the caller frame it received (after the jitter buffer, before any processing)
and the agent frame it put on the wire in that tick (``None``: nothing, comfort
silence or a DTMF digit: recorded as silence). Every tick adds exactly 20 ms to
both channels, so the two stay sample-aligned whatever was or was not sent.

**Timeline.** Sample 0 is the moment the recorder was attached
(:meth:`CallRecorder.bind`, ``started_at`` on the transport's clock): the
first tick pads the channels with the silence between the two (at most one
tick). The engine starts its transcript on the same zero, so a
``secondsFromStart`` of the transcript and the metrics is an offset into the
file.

**Cost on the loop.** ``on_tick`` appends two references to two lists. Every
:data:`CHUNK_FRAMES` ticks (1 s) the lists are handed to the recording worker
pool (:func:`recording_executor`: one small pool for every call of the
process), which joins them, builds the stereo and the mono samples and appends
them to the open files (WAV, or Opus in Ogg encoded as it goes). A call holds
at most one chunk in the making and :data:`MAX_PENDING_CHUNKS` waiting for the
worker; when the disk is slower than that, a chunk is replaced by as much
silence (counted in ``dropped_frames``) rather than held: memory stays bounded.

:meth:`CallRecorder.finish` hands the rest to the worker, which closes the files
(WAV sizes patched, the Opus encoder flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flireo.clock import Clock
from flireo.media.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from flireo.recordings.encode import (
    CONTENT_TYPES,
    FORMATS,
    RecordingFormat,
    RecordingWriter,
    open_writer,
)

log = logging.getLogger(__name__)

#: ticks gathered on the loop before they go to the worker (1 s)
CHUNK_FRAMES = 50
#: chunks of one call waiting for the worker before new ones become silence
MAX_PENDING_CHUNKS = 8
#: threads writing and encoding every call's recording
RECORDING_WORKERS = 2
#: the longest :meth:`CallRecorder.finish` waits for media handed to a bridge to close
MAX_HOLD_S = 4 * 3600.0

_SILENCE = bytes(FRAME_BYTES)
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def recording_executor() -> ThreadPoolExecutor:
    """The process-wide recording pool (small: joining and writing 1 s of a call takes
    well under a millisecond; Opus encoding a few)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=RECORDING_WORKERS, thread_name_prefix="flireo-rec"
                )
    return _executor


class RecordingError(RuntimeError):
    """The recording could not be written (disk full, encoder failure); the call is
    unaffected."""


@dataclass(frozen=True, slots=True)
class RecordedAudio:
    #: caller on the left, agent on the right
    stereo_path: Path
    #: the mono mix of the same samples, same format
    mono_path: Path
    format: RecordingFormat
    content_type: str
    #: samples per channel / 16000
    duration_s: float

    def cleanup(self) -> None:
        """Remove both files (after they were stored)."""
        for path in (self.stereo_path, self.mono_path):
            path.unlink(missing_ok=True)


#: one piece for the worker: (silent samples first, caller frames, agent frames)
_Chunk = tuple[int, list[bytes], list[bytes]]


class CallRecorder:
    def __init__(
        self,
        *,
        format: RecordingFormat,
        work_dir: Path,
        name: str | None = None,
        chunk_frames: int = CHUNK_FRAMES,
        executor: ThreadPoolExecutor | None = None,
        max_hold_s: float = MAX_HOLD_S,
    ) -> None:
        """``work_dir``: where the files are made (created if missing); ``name``: the
        files' stem (default: a random one)."""
        if format not in FORMATS:
            raise ValueError(f"recording format must be one of {FORMATS}, got {format!r}")
        if chunk_frames < 1:
            raise ValueError("chunk_frames must be at least 1")
        self.format: RecordingFormat = format
        stem = name or uuid.uuid4().hex
        work_dir = Path(work_dir)
        self.stereo_path = work_dir / f"{stem}.stereo.{format}"
        self.mono_path = work_dir / f"{stem}.mono.{format}"
        self._work_dir = work_dir
        self._chunk_frames = chunk_frames
        self._executor = executor
        # the loop's side
        self._left: list[bytes] = []
        self._right: list[bytes] = []
        self._lead = 0  # silent samples owed before the next chunk's frames
        self._samples = 0  # per channel, recorded so far (silence included)
        self._clock: Clock | None = None
        self._started_at: float | None = None
        self._ticked = False
        self._stopped = False
        self._stopped_event = asyncio.Event()
        self._held = False
        self._max_hold_s = max_hold_s
        self._finishing: asyncio.Future[RecordedAudio | None] | None = None
        self._discarding: asyncio.Future[None] | None = None
        self.dropped_frames = 0
        #: the silence before the first tick (sample 0 is the attach, not that tick)
        self.lead_samples = 0
        # shared with the worker (under _lock)
        self._queue: deque[_Chunk] = deque()
        self._lock = threading.Lock()
        self._draining = False
        # the worker's side (under _io_lock)
        self._io_lock = threading.Lock()
        self._writer: RecordingWriter | None = None
        self._error: BaseException | None = None
        self._closed = False

    # --- the transport's side (event loop) ---------------------------------------------
    def bind(self, clock: Clock) -> None:
        """Start the timeline now on ``clock`` (the transport calls this when the
        recorder is attached); the first tick pads the silence up to it."""
        if self._clock is None and not self._ticked:
            self._clock = clock
            self._started_at = clock.monotonic()

    @property
    def started_at(self) -> float | None:
        """Clock time of sample 0 (None before :meth:`bind`)."""
        return self._started_at

    def offset(self, at: float) -> float:
        """Seconds into the recording of clock time ``at``."""
        return 0.0 if self._started_at is None else max(0.0, at - self._started_at)

    @property
    def duration_s(self) -> float:
        """Seconds recorded so far (per channel)."""
        return (self._samples + len(self._left) * FRAME_SAMPLES) / SAMPLE_RATE

    @property
    def backlog(self) -> int:
        """Chunks waiting for the worker."""
        return len(self._queue)

    def on_tick(self, received: bytes, sent: bytes | None) -> None:
        """One 20 ms tick: the caller frame received and the agent frame sent."""
        if self._stopped:
            return
        if not self._ticked:
            self._first_tick()
        left = self._left
        left.append(received)
        self._right.append(sent or _SILENCE)
        if len(left) >= self._chunk_frames:
            self._flush()

    def _first_tick(self) -> None:
        self._ticked = True
        if self._clock is not None and self._started_at is not None:
            lead = round((self._clock.monotonic() - self._started_at) * SAMPLE_RATE)
            if lead > 0:
                self._lead = lead
                self._samples += lead
                self.lead_samples = lead

    def stop(self) -> None:
        """No more ticks (the media closed); what was recorded waits for :meth:`finish`."""
        if not self._stopped:
            self._stopped = True
            self._stopped_event.set()

    def hold(self) -> None:
        """The media goes on without the engine (a transfer bridged by the platform):
        :meth:`finish` first waits until it closes (:meth:`stop`), at most
        ``max_hold_s``. The transport calls this when it hands the media over."""
        if not self._stopped:
            self._held = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def held(self) -> bool:
        """Recording a bridge: :meth:`finish` waits for the media to close."""
        return self._held and not self._stopped

    async def wait_stopped(self) -> None:
        """Wait until the media feeding the recorder has closed (after a transfer
        bridged by the platform, that is when the bridge ends); bound it with
        ``asyncio.timeout``."""
        await self._stopped_event.wait()

    def _flush(self) -> None:
        left, right = self._left, self._right
        lead = self._lead
        if not left and not lead:
            return
        self._left, self._right, self._lead = [], [], 0
        frames = len(left)
        self._samples += frames * FRAME_SAMPLES
        with self._lock:
            if len(self._queue) >= MAX_PENDING_CHUNKS:  # the disk is behind: keep time, not audio
                self.dropped_frames += frames
                self._queue.append((lead + frames * FRAME_SAMPLES, [], []))
            else:
                self._queue.append((lead, left, right))
            if self._draining:
                return
            self._draining = True
        try:
            self._pool().submit(self._drain)
        except RuntimeError as exc:  # the pool is shut down: the process is stopping
            if self._error is None:
                self._error = exc
            with self._lock:
                self._queue.clear()
                self._draining = False

    def _pool(self) -> ThreadPoolExecutor:
        return self._executor or recording_executor()

    # --- the end (event loop) -----------------------------------------------------------
    async def finish(self) -> RecordedAudio | None:
        """Stop, write what is left and close the files (in the worker). Idempotent;
        None when nothing was recorded (or after :meth:`discard`). Raises
        :class:`RecordingError` when the files could not be written.

        After :meth:`hold` (a bridged transfer) it first waits until the bridge
        closes the media, so the recording holds the whole call."""
        if self._finishing is None and self.held:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._max_hold_s):
                    await self._stopped_event.wait()
        if self._finishing is None:
            self.stop()
            if self._discarding is not None:
                return None
            self._flush_rest()
            loop = asyncio.get_running_loop()
            try:
                self._finishing = loop.run_in_executor(self._pool(), self._finalize)
            except RuntimeError as exc:  # the pool is shut down: the process is stopping
                failed: asyncio.Future[RecordedAudio | None] = loop.create_future()
                failed.set_exception(RecordingError(f"the recording could not be written: {exc}"))
                self._finishing = failed
        return await asyncio.shield(self._finishing)

    async def discard(self) -> None:
        """Drop everything: the buffers, the files (also finished ones). Idempotent."""
        self.stop()
        if self._discarding is None:
            self._left, self._right, self._lead = [], [], 0
            finishing = self._finishing
            if finishing is not None:  # let it end first, then remove what it made
                await asyncio.gather(asyncio.shield(finishing), return_exceptions=True)
            loop = asyncio.get_running_loop()
            self._discarding = loop.run_in_executor(self._pool(), self._remove)
        await asyncio.shield(self._discarding)

    def _flush_rest(self) -> None:
        self._flush()

    # --- the worker's side ------------------------------------------------------------
    def _drain(self) -> None:
        with self._io_lock:
            while True:
                with self._lock:
                    if not self._queue:
                        self._draining = False
                        return
                    chunk = self._queue.popleft()
                self._write(chunk)

    def _write(self, chunk: _Chunk) -> None:
        if self._error is not None or self._closed:
            return
        lead, left, right = chunk
        try:
            if self._writer is None:
                self._work_dir.mkdir(parents=True, exist_ok=True)
                self._writer = open_writer(self.format, self.stereo_path, self.mono_path)
            if lead:
                silence = np.zeros(lead, dtype="<i2")
                self._writer.write(silence, silence)
            if left:
                self._writer.write(_channel(left), _channel(right))
        except Exception as exc:
            log.warning("recording %s failed: %r", self.stereo_path.name, exc)
            self._error = exc
            if self._writer is not None:
                self._writer.abort()
            self._unlink()

    def _finalize(self) -> RecordedAudio | None:
        with self._io_lock:
            with self._lock:
                chunks = list(self._queue)
                self._queue.clear()
            for chunk in chunks:
                self._write(chunk)
            if self._closed:
                return None
            self._closed = True
            if self._error is None and self._writer is not None:
                try:
                    self._writer.close()
                except Exception as exc:
                    self._error = exc
                    self._writer.abort()
            if self._error is not None:
                self._unlink()
                raise RecordingError(
                    f"the recording could not be written: {self._error}"
                ) from self._error
            if self._writer is None:
                return None  # not one tick
            return RecordedAudio(
                stereo_path=self.stereo_path,
                mono_path=self.mono_path,
                format=self.format,
                content_type=CONTENT_TYPES[self.format],
                duration_s=self._samples / SAMPLE_RATE,
            )

    def _remove(self) -> None:
        with self._io_lock:
            with self._lock:
                self._queue.clear()
            if self._writer is not None and not self._closed:
                self._writer.abort()
            self._closed = True
            self._unlink()

    def _unlink(self) -> None:
        for path in (self.stereo_path, self.mono_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove %s: %r", path, exc)


def _channel(frames: list[bytes]) -> np.ndarray:
    """One channel's samples from a chunk's frames, each made exactly 20 ms long."""
    for i, frame in enumerate(frames):
        if len(frame) != FRAME_BYTES:  # rare: the last bit of speech, a foreign transport
            frames[i] = frame[:FRAME_BYTES] + bytes(max(0, FRAME_BYTES - len(frame)))
    return np.frombuffer(b"".join(frames), dtype="<i2")


__all__ = [
    "CHUNK_FRAMES",
    "MAX_PENDING_CHUNKS",
    "CallRecorder",
    "RecordedAudio",
    "RecordingError",
    "RecordingFormat",
    "recording_executor",
]
