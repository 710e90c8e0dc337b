"""What one call sends, one 20 ms tick at a time: the agent's speech, RFC 4733
digits interleaved, comfort silence in between.

Pure and clock-free: the session's pacer calls :meth:`OutboundStream.packet`
with the tick number ``n`` and sends what it returns. Audio packets carry the
timestamp ``initial + 160 n`` whatever happened before (ticks skipped after a
stalled loop show as a timestamp jump, as after silence suppression), so the
timestamps never drift from the tick schedule.

Speech is queued at 16 kHz exactly as in
:class:`~flireo.engine.memory_transport.MemoryTransport`: each tick takes up to
one 20 ms frame off the queue (that is when it counts as played), then it is
resampled to 8 kHz and G.711-encoded. Between talk spurts the stream sends
encoded digital silence (most carriers want continuous packets; with
``send_silence=False`` it sends nothing and the timestamps simply jump).
The first packet of the stream and of each talk spurt has the marker bit.

A digit is sent as RFC 4733 telephone-event packets instead of audio: one a
tick with growing duration, the end packet three times (new sequence numbers,
same timestamp), then a pause before the next digit. Speech queued meanwhile
waits; it is not dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from flireo.media.frames import BYTES_PER_SAMPLE, FRAME_BYTES, SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.telephony.rtp.codec import CLOCK_RATE, SAMPLES_PER_PACKET, codec_for
from flireo.telephony.rtp.dtmf import EVENTS, ToneEvent, event_packets
from flireo.telephony.rtp.packet import RtpPacket

_PACKET_BYTES = SAMPLES_PER_PACKET * BYTES_PER_SAMPLE  # 8 kHz PCM in one packet


class OutboundStream:
    __slots__ = (
        "_codec",
        "_done",
        "_dtmf",
        "_dtmf_gap",
        "_event",
        "_event_ts",
        "_gap_left",
        "_marker",
        "_out",
        "_out_bytes",
        "_out_offset",
        "_pending",
        "_played_samples",
        "_resampler",
        "_sequence",
        "_talking",
        "dtmf_duration_ms",
        "dtmf_pt",
        "paused",
        "send_silence",
        "sent_frame",
        "ssrc",
        "timestamp0",
    )

    def __init__(
        self,
        *,
        codec_pt: int,
        dtmf_pt: int | None,
        ssrc: int,
        sequence: int,
        timestamp: int,
        send_silence: bool = True,
        dtmf_duration_ms: int = 100,
        dtmf_gap_ms: int = 60,
    ) -> None:
        self._codec = codec_for(codec_pt)
        self.dtmf_pt = dtmf_pt
        self.ssrc = ssrc
        self.timestamp0 = timestamp & 0xFFFFFFFF
        self._sequence = sequence & 0xFFFF
        self.send_silence = send_silence
        self.dtmf_duration_ms = dtmf_duration_ms
        self._dtmf_gap = max(0, dtmf_gap_ms // 20)
        # agent speech, 16 kHz (as MemoryTransport)
        self._out: deque[bytes] = deque()
        self._out_offset = 0
        self._out_bytes = 0
        self._played_samples = 0
        # 8 kHz speech resampled and not yet sent
        self._resampler = Resampler(SAMPLE_RATE, CLOCK_RATE)
        self._pending = bytearray()
        self._talking = False
        self._marker = True  # the first packet of the stream
        # digits: (digit, called when its last packet went out)
        self._dtmf: deque[tuple[str, Callable[[], None] | None]] = deque()
        self._event: deque[ToneEvent] = deque()  # packets left of the digit being sent
        self._event_ts = 0
        self._done: Callable[[], None] | None = None
        self._gap_left = 0
        #: the 16 kHz speech frame the last :meth:`packet` took off the queue (b"": none)
        self.sent_frame = b""
        #: speech held: packets carry silence, the queue stays (see AudioTransport.pause_output)
        self.paused = False

    # --- speech ------------------------------------------------------------------------
    def enqueue(self, pcm16: bytes) -> None:
        if pcm16:
            self._out.append(bytes(pcm16))
            self._out_bytes += len(pcm16)

    def clear(self) -> None:
        """Drop all queued speech, and what the resampler still holds of it; ends a hold."""
        self.paused = False
        self._out.clear()
        self._out_offset = 0
        self._out_bytes = 0
        self._pending.clear()
        if self._talking:
            self._resampler = Resampler(SAMPLE_RATE, CLOCK_RATE)
            self._talking = False

    @property
    def played_samples(self) -> int:
        return self._played_samples

    @property
    def queued_samples(self) -> int:
        return self._out_bytes // BYTES_PER_SAMPLE

    # --- digits ------------------------------------------------------------------------
    def queue_dtmf(self, digits: str, done: Callable[[], None] | None = None) -> None:
        """Queue RFC 4733 digits; ``done`` is called once the last packet of the last went out."""
        if self.dtmf_pt is None:
            raise ValueError("no telephone-event payload type was negotiated")
        digits = digits.upper()
        bad = [d for d in digits if d not in EVENTS]
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r}")
        for i, digit in enumerate(digits):
            self._dtmf.append((digit, done if i == len(digits) - 1 else None))
        if not digits and done is not None:
            done()

    @property
    def dtmf_pending(self) -> bool:
        return bool(self._dtmf or self._event)

    # --- the tick ----------------------------------------------------------------------
    def packet(self, tick: int) -> RtpPacket | None:
        """The packet for tick ``tick`` (None: nothing to send this tick)."""
        timestamp = (self.timestamp0 + SAMPLES_PER_PACKET * tick) & 0xFFFFFFFF
        self.sent_frame = b""
        if self._gap_left:
            self._gap_left -= 1
        elif self._event or self._dtmf:
            return self._event_packet(timestamp)
        payload, spurt_start = self._audio()
        if payload is None:
            if not self.send_silence:
                self._marker = True  # the next packet after the gap starts a spurt
                return None
            payload = self._codec.silence
        marker = self._marker or spurt_start
        self._marker = False
        return self._next(self._codec.payload_type, timestamp, payload, marker)

    def mark(self) -> None:
        """Set the marker bit on the next packet (after a discontinuity)."""
        self._marker = True

    def _next(self, pt: int, timestamp: int, payload: bytes, marker: bool) -> RtpPacket:
        seq = self._sequence
        self._sequence = (seq + 1) & 0xFFFF
        return RtpPacket(pt, seq, timestamp, self.ssrc, payload, marker)

    def _event_packet(self, timestamp: int) -> RtpPacket:
        assert self.dtmf_pt is not None
        marker = False
        if not self._event:
            digit, done = self._dtmf.popleft()
            self._event.extend(event_packets(digit, duration_ms=self.dtmf_duration_ms))
            self._event_ts = timestamp
            self._done = done
            marker = True
        event = self._event.popleft()
        packet = self._next(self.dtmf_pt, self._event_ts, event.serialize(), marker)
        if not self._event:  # the digit is out
            self._gap_left = self._dtmf_gap
            self._marker = True  # audio resumes: a new talk spurt
            if self._done is not None:
                done, self._done = self._done, None
                done()
        return packet

    def _audio(self) -> tuple[bytes | None, bool]:
        """One packet of encoded speech and whether it starts a talk spurt, or (None, False)."""
        frame = self._take_frame()
        pending = self._pending
        spurt_start = False
        if frame:
            spurt_start = not self._talking
            self._talking = True
            pending += self._resampler.process(frame)
        elif self._talking:  # the spurt is over: let out what the filter holds
            pending += self._resampler.flush()
            self._talking = False
        if not pending:
            return None, False
        if len(pending) >= _PACKET_BYTES:
            pcm = bytes(pending[:_PACKET_BYTES])
            del pending[:_PACKET_BYTES]
        elif spurt_start and self._out_bytes:
            # the resampler's delay at the start: silence first, speech after
            pcm = bytes(_PACKET_BYTES - len(pending)) + pending
            pending.clear()
        else:  # the spurt's last bit
            pcm = bytes(pending) + bytes(_PACKET_BYTES - len(pending))
            pending.clear()
        return self._codec.encode(pcm), spurt_start

    def _take_frame(self) -> bytes:
        """Up to one 20 ms frame (16 kHz) off the speech queue; it counts as played."""
        if self.paused or not self._out_bytes:
            return b""
        parts: list[bytes] = []
        need = FRAME_BYTES
        out = self._out
        while need and out:
            head = out[0]
            take = head[self._out_offset : self._out_offset + need]
            parts.append(take)
            need -= len(take)
            self._out_offset += len(take)
            if self._out_offset >= len(head):
                out.popleft()
                self._out_offset = 0
        frame = parts[0] if len(parts) == 1 else b"".join(parts)
        self.sent_frame = frame
        self._out_bytes -= len(frame)
        self._played_samples += len(frame) // BYTES_PER_SAMPLE
        return frame
