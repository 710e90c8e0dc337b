"""The engine's :class:`~flireo.engine.transport.AudioTransport` for a browser call
over WebRTC (aiortc: ICE, DTLS-SRTP, Opus).

Caller side: a reader task takes the remote track's decoded Opus frames (48 kHz
stereo), keeps the left channel and resamples it to 16 kHz (soxr) into a
small receive buffer. The clock's shared 20 ms pacer (:mod:`flireo.media.ticker`)
hands the engine one 20 ms frame of it per tick (silence when the browser's
audio is late), as RTP calls are fed.

Agent side: :meth:`send` queues 16 kHz speech; each tick of the pacer takes one
20 ms frame of it (or silence) and gives it to the outgoing
:class:`AgentTrack`, which aiortc encodes to Opus and sends; so agent audio
leaves in real time and :meth:`clear` (barge-in) drops what is not yet played.
``played_samples`` counts agent samples handed out in ticks.

The browser is gone when the peer connection fails or closes (ICE consent,
DTLS close), its track ends, or no audio came for ``media_timeout_s``: then a
:class:`~flireo.engine.transport.RemoteHangup` ends the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from flireo.clock import Clock
from flireo.engine.transport import (
    AudioTransport,
    FrameSink,
    RemoteHangup,
    TransferResult,
    TransportEvent,
)
from flireo.media.frames import BYTES_PER_SAMPLE, FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.media.ticker import ticker_for

if TYPE_CHECKING:
    from flireo.recordings.capture import CallRecorder

log = logging.getLogger(__name__)

_SILENCE = bytes(FRAME_BYTES)
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
#: received audio beyond this is dropped (oldest first): bounds the added latency
RX_MAX_BYTES = 10 * FRAME_BYTES
#: agent frames waiting for aiortc's sender (it pulls them as they are made)
TX_QUEUE_FRAMES = 10
#: after our last words, before closing the connection (the browser's jitter buffer)
HANGUP_TAIL_S = 0.25
PLAY_OUT_MAX_S = 5.0
#: connection states that mean the browser is gone
_GONE = frozenset({"failed", "closed"})


class AgentTrack(MediaStreamTrack):
    """The agent's voice towards the browser: 16 kHz mono frames made by the pacer."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue(TX_QUEUE_FRAMES)
        self._pts = 0
        #: frames given up because aiortc's sender fell behind (benchmarks)
        self.dropped = 0

    def push(self, pcm: bytes) -> None:
        """One 20 ms frame (called by the pacer; the oldest is dropped if aiortc lags)."""
        if self._frames.full():
            self._frames.get_nowait()
            self.dropped += 1
        self._frames.put_nowait(pcm)

    def finish(self) -> None:
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(None)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pcm = await self._frames.get()
        if pcm is None:
            self.stop()
            raise MediaStreamError
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = _TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        return frame


class WebRtcTransport:
    def __init__(self, pc: RTCPeerConnection, clock: Clock, *, media_timeout_s: float) -> None:
        self.pc = pc
        self._clock = clock
        self._media_timeout_s = media_timeout_s
        self.track = AgentTrack()
        # agent → browser
        self._out: deque[bytes] = deque()
        self._out_offset = 0
        self._out_bytes = 0
        self._paused = False  # agent speech held (pause_output)
        self._played_samples = 0
        self._tick_sent: bytes | None = None
        # browser → agent
        self._rx = bytearray()
        self._last_rx: float | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue()
        self._sink: FrameSink | None = None
        self._listening: asyncio.Future[None] | None = None
        self._ticking = False
        self._ended = False
        self._closed = False
        self._hangup_done: asyncio.Future[None] | None = None
        self._recorder: CallRecorder | None = None
        self.frames_received = 0
        self.ended_reason: str | None = None
        #: the stored call's id (set by the service; logs and benchmarks)
        self.call_id: str | None = None
        #: clock time the first agent frame went to the browser (added-latency benchmark)
        self.first_sent_at: float | None = None

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in _GONE:
                self.remote_hangup("customer-ended-call")

    # --- wiring (the web call service) ---------------------------------------------------
    def receive(self, track: MediaStreamTrack) -> None:
        """The browser's audio track: read it until it ends."""
        if self._reader is None and track.kind == "audio":
            self._reader = asyncio.create_task(self._read(track), name="webrtc-audio-in")

    async def _read(self, track: MediaStreamTrack) -> None:
        resamplers: dict[int, Resampler] = {}  # browsers send 48 kHz Opus
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                samples = frame.to_ndarray().reshape(-1)  # packed s16: samples × channels
                channels = len(frame.layout.channels)
                mono = samples[::channels] if channels > 1 else samples
                rate = frame.sample_rate
                to_16k = resamplers.get(rate)
                if to_16k is None:
                    to_16k = resamplers[rate] = Resampler(rate, SAMPLE_RATE)
                rx = self._rx
                rx += to_16k.process(mono.astype(np.int16, copy=False).tobytes())
                if len(rx) > RX_MAX_BYTES:
                    del rx[: len(rx) - RX_MAX_BYTES]
                self._last_rx = self._clock.monotonic()
                self.frames_received += 1
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("reading the browser's audio failed")
        self.remote_hangup("customer-ended-call")

    # --- AudioTransport ------------------------------------------------------------------
    async def audio(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def put(frame: bytes) -> None:
            queue.put_nowait(frame)

        listener = asyncio.create_task(self.listen(put))
        listener.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (frame := await queue.get()) is not None:
                yield frame
        finally:
            listener.cancel()

    async def listen(self, sink: FrameSink) -> None:
        if self._ended:
            return
        self._sink = sink
        done = self._listening = asyncio.get_running_loop().create_future()
        self._start_ticking()
        try:
            await done
        finally:
            self._sink = None

    def _start_ticking(self) -> None:
        if not self._ticking and not self._closed:
            self._ticking = True
            if self._last_rx is None:
                self._last_rx = self._clock.monotonic()  # the timeout counts from now
            ticker_for(self._clock).add(self)

    # the pacer's side (flireo.media.ticker.Ticked)
    def send_tick(self, deadline: float, skipped: int) -> None:
        frame = self._play_frame()
        self._tick_sent = frame
        if frame is None:
            self.track.push(_SILENCE)
            return
        if self.first_sent_at is None:
            self.first_sent_at = self._clock.monotonic()
        self.track.push(frame)

    def receive_tick(self, skipped: int) -> None:
        sink, recorder, rx = self._sink, self._recorder, self._rx
        sent, self._tick_sent = self._tick_sent, None
        for i in range(skipped + 1):
            if len(rx) >= FRAME_BYTES:
                frame = bytes(rx[:FRAME_BYTES])
                del rx[:FRAME_BYTES]
            else:
                frame = _SILENCE
            if recorder is not None:
                recorder.on_tick(frame, sent if i == skipped else None)
            if sink is not None:
                sink(frame)
        last = self._last_rx
        if last is not None and self._clock.monotonic() - last > self._media_timeout_s:
            self.remote_hangup("customer-ended-call")

    def tick_failed(self) -> None:
        self.remote_hangup("customer-ended-call")

    def _play_frame(self) -> bytes | None:
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
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        return frame

    async def events(self) -> AsyncIterator[TransportEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def send(self, pcm: bytes) -> None:
        if self._ended or not pcm:
            return
        self._out.append(bytes(pcm))
        self._out_bytes += len(pcm)

    def pause_output(self, paused: bool) -> None:
        self._paused = paused

    def clear(self) -> None:
        self._paused = False
        self._out.clear()
        self._out_offset = 0
        self._out_bytes = 0

    @property
    def played_samples(self) -> int:
        return self._played_samples

    @property
    def queued_samples(self) -> int:
        return self._out_bytes // BYTES_PER_SAMPLE

    async def send_dtmf(self, digits: str) -> None:
        log.info("DTMF %r not sent: a browser call has no keypad tones", digits)

    async def transfer(self, destination: str) -> TransferResult:
        return TransferResult(ok=False, detail="a browser call cannot be transferred")

    def attach_recorder(self, recorder: CallRecorder) -> None:
        """Every pacer tick feeds ``recorder`` from now on, until the media closes."""
        self._recorder = recorder
        recorder.bind(self._clock)
        if self._closed:
            recorder.stop()

    @property
    def recorder(self) -> CallRecorder | None:
        return self._recorder

    async def hangup(self) -> None:
        """End the call from our side: queued speech plays out, then the peer
        connection closes. Idempotent."""
        if self._hangup_done is not None:
            await asyncio.shield(self._hangup_done)
            return
        self._hangup_done = asyncio.get_running_loop().create_future()
        ours = not self._ended
        self._end()
        try:
            if ours and self._ticking:
                queued_s = self.queued_samples / SAMPLE_RATE
                await asyncio.sleep(min(queued_s, PLAY_OUT_MAX_S) + HANGUP_TAIL_S)
            await self._close()
        finally:
            self._hangup_done.set_result(None)

    # --- the browser's side --------------------------------------------------------------
    def remote_hangup(self, reason: str = "customer-ended-call") -> None:
        """The browser is gone: a :class:`RemoteHangup`, then the media stops."""
        if self._ended:
            return
        self.ended_reason = reason
        self._events.put_nowait(RemoteHangup(reason))
        self._end()
        self._stop_media()

    @property
    def ended(self) -> bool:
        return self._ended

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(None)

    def _stop_media(self) -> None:
        """Stop ticking and listening (synchronous: also from a pacer tick)."""
        if self._ticking:
            self._ticking = False
            ticker_for(self._clock).discard(self)
        listening = self._listening
        if listening is not None and not listening.done():
            listening.set_result(None)
        if self._recorder is not None:
            self._recorder.stop()

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_media()
        self.track.finish()
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()

    def debug_state(self) -> dict[str, Any]:
        return {
            "connection": self.pc.connectionState,
            "frames_received": self.frames_received,
            "played_samples": self._played_samples,
        }


if TYPE_CHECKING:  # the engine's interface, checked by mypy

    def _conforms(transport: WebRtcTransport) -> AudioTransport:
        return transport
