"""One call's RTP endpoint: an asyncio UDP socket, a pacer ticking every 20 ms,
the receive chain and the send stream.

Life cycle (driven by the SIP dialog)::

    rtp = RtpSession(codec_pt=PCMU, dtmf_pt=101, ports=allocator)
    port = await rtp.bind()                 # goes into our SDP
    rtp.set_remote("203.0.113.5", 40000)    # from the peer's SDP (now or later)
    rtp.start()                             # the pacer starts
    ...  rtp.frames(), rtp.send(pcm), rtp.clear(), rtp.send_dtmf("12#")
    await rtp.aclose()                      # or close() from synchronous code

**Pacing.** Every session of an event loop is ticked by one shared 20 ms
pacer (:mod:`~flireo.media.ticker`) on absolute deadlines of the
injected monotonic clock. Each tick plays one 20 ms slot of caller audio out
of the jitter buffer and sends one packet (:class:`OutboundStream`). After a
stalled loop the oldest overdue ticks are skipped rather than burst out (the
receive side still plays them, so the engine's frames keep time), and the RTP
timestamps jump with them, still ``initial + 160 n``. Every sent packet's
lateness (send time − deadline) goes to :attr:`lateness`.

**Caller audio to the engine.** :meth:`RtpSession.frames` yields the frames
(an async iterator, queued up to ``max_queued_frames``); or a sink set with
:meth:`RtpSession.set_frame_sink` is called with each frame synchronously in
the tick, which spares the engine a task switch per frame.

**Receiving.** The source address of the first valid packet is latched and
used as the send address (symmetric RTP, for callers behind NAT); packets from
elsewhere are ignored, except from the address in the peer's SDP, which
always wins back the latch. The first SSRC heard is the stream; another SSRC
takes over once it sends :data:`SSRC_SWITCH_PACKETS` packets in a row with
nothing from the current one between (a peer that restarted its stream),
resetting the jitter buffer. RFC 4733 digits from the latched source are
reported on arrival through :attr:`RtpSession.on_dtmf`, once per key press
(:mod:`~flireo.telephony.rtp.digits`), whatever their SSRC.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from flireo.clock import Clock, SystemClock
from flireo.media.frames import FRAME_MS
from flireo.media.ticker import MAX_BURST, TICK_S, Ticker, ticker_for
from flireo.telephony.rtp.codec import CODECS, COMFORT_NOISE, PCMU, codec_for
from flireo.telephony.rtp.digits import DigitDetector
from flireo.telephony.rtp.jitter import JitterBuffer
from flireo.telephony.rtp.outbound import OutboundStream
from flireo.telephony.rtp.packet import RtpPacket, RtpParseError
from flireo.telephony.rtp.playout import Playout
from flireo.telephony.rtp.ports import PortAllocator
from flireo.telephony.rtp.srtp import SrtpContext
from flireo.telephony.rtp.stats import LatenessHistogram, RtpStats

log = logging.getLogger(__name__)

#: the clock of sessions not given one: all of them share one pacer
SYSTEM_CLOCK: Final = SystemClock()
#: consecutive packets of a new SSRC (and none of the current one) that make it the stream
SSRC_SWITCH_PACKETS: Final = 3
#: ports tried before bind() gives up (each may be taken by another program)
_BIND_ATTEMPTS: Final = 64

Address = tuple[str, int]


class RtpBindError(OSError):
    """No port of the range could be bound."""


class _Protocol(asyncio.DatagramProtocol):
    __slots__ = ("_session",)

    def __init__(self, session: RtpSession) -> None:
        self._session = session

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._session._on_datagram(data, (str(addr[0]), addr[1]))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a peer not listening yet: keep going


class RtpSession:
    def __init__(
        self,
        *,
        codec_pt: int = PCMU,
        dtmf_pt: int | None = None,
        remote: Address | None = None,
        local_host: str = "0.0.0.0",
        ports: PortAllocator | None = None,
        clock: Clock | None = None,
        jitter_ms: int = 60,
        max_jitter_ms: int = 160,
        send_silence: bool = True,
        symmetric: bool = True,
        late_threshold_s: float = 0.020,
        max_queued_frames: int = 250,
        rng: random.Random | None = None,
        on_sent: Callable[[RtpPacket, float], None] | None = None,
        on_received: Callable[[RtpPacket], None] | None = None,
        srtp: SrtpContext | None = None,
    ) -> None:
        """``codec_pt`` PCMU (0) or PCMA (8) and ``dtmf_pt`` (telephone-event, or
        None) as negotiated; ``remote`` the peer's SDP address (an IP literal),
        if known yet; ``ports`` the allocator to bind from (None: any free port);
        ``jitter_ms`` the receive buffer depth, ``max_jitter_ms`` the most it may
        grow to before the oldest packets are dropped; ``on_sent(packet,
        lateness_s)`` observes every packet sent, ``on_received(packet)`` every
        packet accepted as the peer's stream (recording, tests); ``srtp`` the
        call's SRTP streams when the media is encrypted (also :meth:`set_srtp`)."""
        codec_for(codec_pt)  # PCMU or PCMA only
        if dtmf_pt is not None and not 96 <= dtmf_pt <= 127:
            raise ValueError(
                f"telephone-event payload type must be dynamic (96-127), got {dtmf_pt}"
            )
        rng = rng or random.SystemRandom()
        self.codec_pt = codec_pt
        self.dtmf_pt = dtmf_pt
        self._local_host = local_host
        self._ports = ports
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._symmetric = symmetric
        self._late_threshold_s = late_threshold_s
        self._on_sent = on_sent
        self._on_received = on_received
        #: SRTP: every datagram is protected after serialising, unprotected before parsing
        self.srtp = srtp
        #: called with each digit received as RFC 4733 events
        self.on_dtmf: Callable[[str], None] | None = None
        self._sdp_remote: Address | None = None
        self._send_addr: Address | None = None
        if remote is not None:
            self.set_remote(*remote)
        # socket and pacer
        self._transport: asyncio.DatagramTransport | None = None
        self._port: int | None = None
        self._allocated: int | None = None
        self._ticker: Ticker | None = None
        self._n = 0  # ticks since start: the RTP timestamp grid
        self._closed = False
        self._close_callbacks: list[Callable[[], None]] = []
        # receive
        prefetch = max(1, -(-jitter_ms // FRAME_MS))
        self._jitter = JitterBuffer(prefetch, max(prefetch, max_jitter_ms // FRAME_MS))
        self._playout = Playout(self._jitter)
        self._digits = DigitDetector()
        self._accept_pts = frozenset(
            [*CODECS, COMFORT_NOISE, *([dtmf_pt] if dtmf_pt is not None else [])]
        )
        self._source: Address | None = None
        self._remote_ssrc: int | None = None
        self._candidate_ssrc: int | None = None
        self._candidate_count = 0
        self._last_rx: float | None = None
        self._frames: deque[bytes] = deque()
        self._max_frames = max_queued_frames
        self._frames_ready = asyncio.Event()
        self._sink: Callable[[bytes], None] | None = None
        #: the call's recorder: (frame received, 16 kHz frame sent) once per tick
        self._recorder: Callable[[bytes, bytes | None], None] | None = None
        self._tick_sent = b""  # the speech frame this tick's packet carried
        # send
        self._outbound = OutboundStream(
            codec_pt=codec_pt,
            dtmf_pt=dtmf_pt,
            ssrc=rng.getrandbits(32),
            sequence=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
            send_silence=send_silence,
        )
        self._dtmf_waiters: set[asyncio.Future[None]] = set()
        # statistics
        self.lateness = LatenessHistogram()
        self._sent = 0
        self._sent_late = 0
        self._received = 0
        self._ignored = 0
        self._ticks_skipped = 0
        self._frames_dropped = 0

    # --- set-up --------------------------------------------------------------------------
    async def bind(self) -> int:
        """Open the UDP socket on a port from the allocator; returns the port."""
        if self._port is not None:
            return self._port
        if self._closed:
            raise RuntimeError("RTP session is closed")
        loop = asyncio.get_running_loop()
        ports = self._ports
        attempts = min(_BIND_ATTEMPTS, ports.capacity) if ports is not None else 1
        error: OSError | None = None
        for _ in range(attempts):
            port = ports.acquire() if ports is not None else 0
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self._local_host, port)
                )
            except OSError as exc:  # taken by another program: try the next one
                error = exc
                if ports is not None:
                    ports.release(port)
                continue
            self._transport = transport
            self._port = int(transport.get_extra_info("sockname")[1])
            self._allocated = port if ports is not None else None
            return self._port
        raise RtpBindError(f"could not bind an RTP port on {self._local_host}: {error}")

    def set_remote(self, host: str, port: int) -> None:
        """The peer's media address from its SDP (again after a re-INVITE)."""
        ipaddress.ip_address(host)  # an IP literal: sendto must never resolve names
        if not 0 < port < 65_536:
            raise ValueError(f"bad RTP port {port}")
        self._sdp_remote = (host, port)
        self._send_addr = (host, port)
        self._source = None  # latch anew

    def use_codec(self, codec_pt: int, dtmf_pt: int | None) -> None:
        """Switch to what the SDP answer chose, before :meth:`start` (the socket,
        and so the port already offered, stays)."""
        if self._ticker is not None:
            raise RuntimeError("the codec is fixed once the session has started")
        codec_for(codec_pt)
        if dtmf_pt is not None and not 96 <= dtmf_pt <= 127:
            raise ValueError(f"telephone-event payload type must be dynamic, got {dtmf_pt}")
        old = self._outbound
        self.codec_pt, self.dtmf_pt = codec_pt, dtmf_pt
        self._outbound = OutboundStream(
            codec_pt=codec_pt,
            dtmf_pt=dtmf_pt,
            ssrc=old.ssrc,
            sequence=random.getrandbits(16),
            timestamp=old.timestamp0,
            send_silence=old.send_silence,
        )
        self._accept_pts = frozenset(
            [*CODECS, COMFORT_NOISE, *([dtmf_pt] if dtmf_pt is not None else [])]
        )

    def set_srtp(self, srtp: SrtpContext | None) -> None:
        """Encrypt the media with ``srtp`` (what the SDP answer negotiated)."""
        self.srtp = srtp

    def start(self) -> None:
        """Join the pacer: frames and packets flow from its next tick on."""
        if self._transport is None:
            raise RuntimeError("bind() the RTP session before starting it")
        if self._ticker is None and not self._closed:
            self._ticker = ticker_for(self._clock)
            self._ticker.add(self)

    def close(self) -> None:
        """Stop at once (idempotent): pacer, socket, port; :meth:`frames` ends."""
        if self._closed:
            return
        self._closed = True
        if self._ticker is not None:
            self._ticker.discard(self)
        if self._transport is not None:
            self._transport.close()
        if self._ports is not None and self._allocated is not None:
            self._ports.release(self._allocated)
            self._allocated = None
        self._frames_ready.set()
        for waiter in self._dtmf_waiters:
            if not waiter.done():
                waiter.set_result(None)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()
        # callbacks are often bound methods of our owner, which refers to us: drop
        # them so a finished call's objects go by reference counting
        self.on_dtmf = None
        self._sink = None
        self._recorder = None

    async def aclose(self) -> None:
        """:meth:`close` (the pacer never touches a closed session again)."""
        self.close()

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once when the session closes (at once if it has)."""
        if self._closed:
            callback()
        else:
            self._close_callbacks.append(callback)

    # --- properties ------------------------------------------------------------------------
    @property
    def local_port(self) -> int | None:
        return self._port

    @property
    def remote(self) -> Address | None:
        """Where packets go: the latched source, else the SDP address."""
        return self._send_addr

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def clock(self) -> Clock:
        """The clock the pacer ticks on."""
        return self._clock

    def stats(self) -> RtpStats:
        jitter = self._jitter.stats
        return RtpStats(
            packets_sent=self._sent,
            packets_received=self._received,
            packets_lost=jitter.lost,
            packets_late=jitter.late,
            packets_duplicate=jitter.duplicate,
            packets_discarded=jitter.discarded,
            packets_ignored=self._ignored,
            underruns=jitter.underruns,
            packets_sent_late=self._sent_late,
            late_threshold_s=self._late_threshold_s,
            max_send_lateness_s=self.lateness.max_s,
            mean_send_lateness_s=self.lateness.mean_s,
            ticks_skipped=self._ticks_skipped,
            frames_dropped=self._frames_dropped,
            last_received_at=self._last_rx,
        )

    # --- the engine's side -------------------------------------------------------------
    async def frames(self) -> AsyncIterator[bytes]:
        """Caller audio, 20 ms frames of 16 kHz s16le, one per tick; ends on close."""
        frames = self._frames
        ready = self._frames_ready
        while True:
            while frames:
                yield frames.popleft()
            if self._closed:
                return
            ready.clear()
            await ready.wait()

    def set_frame_sink(self, sink: Callable[[bytes], None] | None) -> None:
        """Hand caller frames to ``sink`` (on the event loop, in the tick) instead of
        :meth:`frames`; frames already queued go to it first. None: queue again."""
        self._sink = sink
        if sink is not None:
            frames = self._frames
            while frames:
                sink(frames.popleft())

    def set_recorder(self, on_tick: Callable[[bytes, bytes | None], None] | None) -> None:
        """Call ``on_tick(received, sent)`` in every receive tick from now on (also
        while the frames go to a bridge, not the engine): the caller frame the
        jitter buffer played and the 16 kHz speech frame this tick's packet carried
        (None: silence, a digit, nothing sent; ticks the pacer gave up send nothing).
        Cleared on close."""
        self._recorder = None if self._closed else on_tick

    async def send(self, pcm16: bytes) -> None:
        """Queue agent speech (16 kHz s16le); the pacer sends it in real time."""
        if not self._closed:
            self._outbound.enqueue(pcm16)

    def pause_output(self, paused: bool) -> None:
        self._outbound.paused = paused

    def clear(self) -> None:
        self._outbound.clear()

    @property
    def played_samples(self) -> int:
        return self._outbound.played_samples

    @property
    def queued_samples(self) -> int:
        return self._outbound.queued_samples

    async def send_dtmf(self, digits: str) -> None:
        """Send RFC 4733 digits in the stream; returns once they are out.
        :class:`ValueError` without a negotiated telephone-event type."""
        if self._closed or not digits:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not future.done():
                future.set_result(None)

        self._outbound.queue_dtmf(digits, done)
        self._dtmf_waiters.add(future)
        try:
            await future
        finally:
            self._dtmf_waiters.discard(future)

    # --- the pacer's side ----------------------------------------------------------------
    def send_tick(self, deadline: float, skipped: int) -> None:
        """This tick's packet (called by the ticker). After ``skipped`` ticks given
        up the timestamps jump by as many; nothing is sent for them."""
        if skipped:
            self._ticks_skipped += skipped
            self._outbound.mark()
            self._n += skipped
        self._send_tick(self._n, deadline)
        self._n += 1

    def receive_tick(self, skipped: int) -> None:
        """This tick's slot of caller audio, after those of the ``skipped`` ticks
        (the engine's frames keep time whatever the pacer missed)."""
        recorder = self._recorder
        if recorder is None:
            for _ in range(skipped + 1):
                self._receive_tick()
            return
        for _ in range(skipped):
            recorder(self._receive_tick(), None)
        sent, self._tick_sent = self._tick_sent, b""
        recorder(self._receive_tick(), sent or None)

    def tick_failed(self) -> None:
        log.error("RTP pacer on port %s failed; closing the session", self._port)
        self.close()

    def _receive_tick(self) -> bytes:
        frame = self._playout.tick()
        if self._sink is not None:
            self._sink(frame)
            return frame
        queue = self._frames
        queue.append(frame)
        if len(queue) > self._max_frames:
            queue.popleft()
            self._frames_dropped += 1
        self._frames_ready.set()
        return frame

    def _send_tick(self, n: int, deadline: float) -> None:
        addr = self._send_addr
        transport = self._transport
        if addr is None or transport is None:
            return  # no peer address yet: speech and digits wait
        packet = self._outbound.packet(n)
        self._tick_sent = self._outbound.sent_frame
        if packet is None:
            return
        data = packet.serialize()
        if self.srtp is not None:
            data = self.srtp.protect(data)
        transport.sendto(data, addr)
        lateness = self._clock.monotonic() - deadline
        self.lateness.record(lateness)
        self._sent += 1
        if lateness > self._late_threshold_s:
            self._sent_late += 1
        if self._on_sent is not None:
            self._on_sent(packet, lateness)

    # --- receiving ---------------------------------------------------------------------
    def _on_datagram(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)
            if plain is None:  # not authentic (or plain RTP on an SRTP stream)
                self._ignored += 1
                return
            data = plain
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self._ignored += 1
            return
        pt = packet.payload_type
        if pt not in self._accept_pts or not self._accept_source(addr):
            self._ignored += 1
            return
        now = self._clock.monotonic()
        if pt == self.dtmf_pt:
            # digits count from the latched source whatever their SSRC (sipp's DTMF
            # recordings carry their own); they never make or switch the stream
            self._last_rx = now
            self._received += 1
            if self._on_received is not None:
                self._on_received(packet)
            digit = self._digits.feed(packet.timestamp, packet.payload, now)
            if digit is not None and self.on_dtmf is not None:
                self.on_dtmf(digit)
            if packet.ssrc == self._remote_ssrc:
                self._jitter.push(packet)  # its slot plays as silence, not as a loss
            return
        if not self._accept_ssrc(packet.ssrc):
            self._ignored += 1
            return
        self._last_rx = now
        self._received += 1
        if self._on_received is not None:
            self._on_received(packet)
        self._jitter.push(packet)

    def _accept_source(self, addr: Address) -> bool:
        source = self._source
        if source == addr:
            return True
        if source is None or addr == self._sdp_remote:
            self._source = addr
            if self._symmetric:
                self._send_addr = addr
            if source is not None:  # the SDP address took the latch back: a new stream
                self._remote_ssrc = None
            return True
        return False

    def _accept_ssrc(self, ssrc: int) -> bool:
        current = self._remote_ssrc
        if ssrc == current:
            self._candidate_count = 0
            return True
        if current is None:
            self._remote_ssrc = ssrc
            self._jitter.reset()
            return True
        if ssrc == self._candidate_ssrc:
            self._candidate_count += 1
        else:
            self._candidate_ssrc = ssrc
            self._candidate_count = 1
        if self._candidate_count < SSRC_SWITCH_PACKETS:
            return False
        self._remote_ssrc = ssrc
        self._candidate_ssrc = None
        self._candidate_count = 0
        self._jitter.reset()
        return True


__all__ = ["MAX_BURST", "SSRC_SWITCH_PACKETS", "TICK_S", "RtpBindError", "RtpSession"]
