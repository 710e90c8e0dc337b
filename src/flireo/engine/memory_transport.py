"""An :class:`~flireo.engine.transport.AudioTransport` in memory, paced on the clock.

It behaves like a phone line: every 20 ms of clock time one 20 ms frame of
queued agent audio is "played" and logged with its timestamp, and one 20 ms
caller frame (the caller's queued speech, else silence) is heard. The engine
listens through :meth:`MemoryTransport.listen`, ticked by the clock's shared
pacer (:mod:`flireo.media.ticker`) as RTP calls are; :meth:`MemoryTransport.audio`
yields the same frames from a task of its own. The other side (a test, a benchmark,
later a browser websocket) pushes caller audio, presses keys, hangs up, and
reads what the agent sent, when, and what it did (DTMF, transfers, hang-up).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flireo.clock import Clock
from flireo.engine.transport import (
    DtmfDigit,
    FrameSink,
    RemoteHangup,
    TransferResult,
    TransportEvent,
)
from flireo.media.frames import BYTES_PER_SAMPLE, FRAME_BYTES, FRAME_MS
from flireo.media.ticker import ticker_for

if TYPE_CHECKING:
    from flireo.recordings.capture import CallRecorder

_FRAME_S = FRAME_MS / 1000
_SILENCE = bytes(FRAME_BYTES)
#: behind schedule by more than this (a stalled loop): restart the schedule, no burst
_RESYNC_S = 0.2


@dataclass(frozen=True, slots=True)
class PlayedFrame:
    #: clock time the frame went out
    at: float
    pcm: bytes


class MemoryTransport:
    def __init__(
        self,
        clock: Clock,
        *,
        record: bool = True,
        transfer_result: TransferResult | None = None,
    ) -> None:
        self._clock = clock
        self._record = record
        self.transfer_result = transfer_result or TransferResult(ok=True)
        # agent → caller
        self._out: deque[bytes] = deque()
        self._out_offset = 0  # bytes of the head chunk already played
        self._out_bytes = 0
        self._played_samples = 0
        self.played: list[PlayedFrame] = []
        self.clears: list[float] = []
        #: (clock time, held) each time the agent's speech was held or let go (pause_output)
        self.pauses: list[tuple[float, bool]] = []
        self._paused = False
        # caller → agent
        self._in: deque[bytes] = deque()
        self._in_empty = asyncio.Event()
        self._in_empty.set()
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue()
        # what the agent did
        self.dtmf_sent: list[str] = []
        self.transfers: list[str] = []
        self.hung_up = False
        self.hung_up_at: float | None = None
        self._closed = False
        self._sink: FrameSink | None = None
        self._listening: asyncio.Future[None] | None = None
        self._recorder: CallRecorder | None = None
        self._tick_sent: bytes | None = None  # what this tick's send side played

    # --- AudioTransport (the engine's side) ----------------------------------------------
    async def audio(self) -> AsyncIterator[bytes]:
        clock = self._clock
        start = clock.monotonic()
        ticks = 0
        while not self._closed:
            ticks += 1
            delay = start + ticks * _FRAME_S - clock.monotonic()
            if delay > 0:
                await clock.sleep(delay)
            elif delay < -_RESYNC_S:
                start, ticks = clock.monotonic(), 0
            if self.closed:  # hung up while we waited
                return
            sent = self._play_frame()
            frame = self._caller_frame()
            if self._recorder is not None:
                self._recorder.on_tick(frame, sent)
            yield frame

    async def listen(self, sink: FrameSink) -> None:
        """Frames to ``sink`` on the clock's shared 20 ms pacer, until the line closes."""
        if self._closed:
            return
        self._sink = sink
        self._listening = asyncio.get_running_loop().create_future()
        ticker = ticker_for(self._clock)
        ticker.add(self)
        try:
            await self._listening
        finally:
            ticker.discard(self)
            self._sink = None

    # the pacer's side (flireo.media.ticker.Ticked)
    def send_tick(self, deadline: float, skipped: int) -> None:
        # ticks the pacer gave up play nothing, as RTP sends nothing
        self._tick_sent = self._play_frame()

    def receive_tick(self, skipped: int) -> None:
        sink = self._sink
        recorder = self._recorder
        sent, self._tick_sent = self._tick_sent, None
        for i in range(skipped + 1):
            if self._closed or sink is None:
                return
            frame = self._caller_frame()
            if recorder is not None:
                recorder.on_tick(frame, sent if i == skipped else None)
            sink(frame)

    def tick_failed(self) -> None:
        self._close()

    def _caller_frame(self) -> bytes:
        """This tick's caller frame: queued speech, else silence."""
        if not self._in:
            return _SILENCE
        frame = self._in.popleft()
        if not self._in:
            self._in_empty.set()
        return frame

    async def events(self) -> AsyncIterator[TransportEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def send(self, pcm: bytes) -> None:
        if self._closed or not pcm:
            return
        self._out.append(bytes(pcm))
        self._out_bytes += len(pcm)

    def pause_output(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            self.pauses.append((self._clock.monotonic(), paused))

    def clear(self) -> None:
        self.pause_output(False)  # a clear ends a hold
        self._out.clear()
        self._out_offset = 0
        self._out_bytes = 0
        self.clears.append(self._clock.monotonic())

    @property
    def played_samples(self) -> int:
        return self._played_samples

    @property
    def queued_samples(self) -> int:
        return self._out_bytes // BYTES_PER_SAMPLE

    async def send_dtmf(self, digits: str) -> None:
        self.dtmf_sent.append(digits)

    def attach_recorder(self, recorder: CallRecorder) -> None:
        """Every tick of the line feeds ``recorder`` from now on, until it closes."""
        self._recorder = recorder
        recorder.bind(self._clock)
        if self._closed:
            recorder.stop()

    @property
    def recorder(self) -> CallRecorder | None:
        return self._recorder

    async def transfer(self, destination: str) -> TransferResult:
        self.transfers.append(destination)
        return self.transfer_result

    async def hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self.hung_up_at = self._clock.monotonic()
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.put_nowait(None)
            self._in.clear()
            self._in_empty.set()
            if self._recorder is not None:
                self._recorder.stop()
            if self._listening is not None and not self._listening.done():
                self._listening.set_result(None)

    def _play_frame(self) -> bytes | None:
        """This tick's frame of agent speech off the queue (None: nothing to play)."""
        if self._paused or not self._out_bytes:
            return None
        parts: list[bytes] = []
        need = FRAME_BYTES
        while need and self._out:
            head = self._out[0]
            take = head[self._out_offset : self._out_offset + need]
            parts.append(take)
            need -= len(take)
            self._out_offset += len(take)
            if self._out_offset >= len(head):
                self._out.popleft()
                self._out_offset = 0
        frame = b"".join(parts)
        self._out_bytes -= len(frame)
        self._played_samples += len(frame) // BYTES_PER_SAMPLE
        if self._record:
            self.played.append(PlayedFrame(self._clock.monotonic(), frame))
        return frame

    # --- the caller's side ---------------------------------------------------------------
    def push_caller_audio(self, pcm: bytes) -> None:
        """Queue caller speech (16 kHz s16le); it is heard in real time after what is queued.
        A closed line hears nothing."""
        if self._closed:
            return
        for i in range(0, len(pcm), FRAME_BYTES):
            frame = pcm[i : i + FRAME_BYTES]
            if len(frame) < FRAME_BYTES:
                frame += bytes(FRAME_BYTES - len(frame))
            self._in.append(frame)
        if self._in:
            self._in_empty.clear()

    async def caller_says(self, pcm: bytes) -> None:
        """Queue caller speech and wait until the engine has received all of it, or
        the line closed (a call that ended hears the rest of it nowhere)."""
        self.push_caller_audio(pcm)
        await self._in_empty.wait()

    def press(self, digits: str) -> None:
        for digit in digits:
            self._events.put_nowait(DtmfDigit(digit))

    def remote_hangup(self, reason: str = "customer-ended-call") -> None:
        if not self._closed:
            self._events.put_nowait(RemoteHangup(reason))

    @property
    def closed(self) -> bool:
        return self._closed

    # --- what the agent said -----------------------------------------------------------
    def agent_audio(self, since: float | None = None, until: float | None = None) -> bytes:
        """The agent audio that was played (between ``since`` and ``until``)."""
        return b"".join(
            f.pcm
            for f in self.played
            if (since is None or f.at >= since) and (until is None or f.at <= until)
        )

    @property
    def first_played_at(self) -> float | None:
        return self.played[0].at if self.played else None

    @property
    def last_played_at(self) -> float | None:
        return self.played[-1].at if self.played else None
