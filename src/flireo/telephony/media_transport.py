"""The engine's :class:`~flireo.engine.transport.AudioTransport` for a SIP call:
audio, digits and pacing from an :class:`~flireo.telephony.rtp.session.RtpSession`,
hang-up, transfer and SIP INFO digits through callables of the SIP dialog.

The SIP layer owns the session (bind, remote address, start) and wires::

    transport = SipMediaTransport(
        rtp,
        on_hangup=dialog.bye,                     # we hang up: send BYE
        on_transfer=dialog.transfer,              # REFER, or a new INVITE by the trunk
        on_dtmf_info=dialog.send_dtmf_info,       # when no telephone-event was agreed
    )
    ...
    transport.remote_hangup("customer-ended-call")   # the peer sent BYE
    transport.dtmf_info_received("5")                # the peer sent a SIP INFO digit
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from flireo.engine.transport import (
    AudioTransport,
    DtmfDigit,
    FrameSink,
    RemoteHangup,
    TransferResult,
    TransportEvent,
)
from flireo.media.frames import SAMPLE_RATE
from flireo.telephony.rtp.dtmf import EVENTS
from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.rtp.stats import RtpStats

if TYPE_CHECKING:
    from flireo.recordings.capture import CallRecorder

log = logging.getLogger(__name__)

#: silence sent after the last words before our BYE (covers the far end's jitter buffer)
HANGUP_TAIL_S = 0.25
#: at most this long is spent sending still-queued speech when we hang up
PLAY_OUT_MAX_S = 5.0


class SipMediaTransport:
    def __init__(
        self,
        rtp: RtpSession,
        *,
        on_hangup: Callable[[], Awaitable[None]],
        on_transfer: Callable[[str], Awaitable[TransferResult]],
        on_dtmf_info: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.rtp = rtp
        self._on_hangup = on_hangup
        self._on_transfer = on_transfer
        self._on_dtmf_info = on_dtmf_info
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue()
        self._ended = False  # no more events: hung up by either side
        self._hangup_done: asyncio.Future[None] | None = None
        self._detached = False
        self._listening: asyncio.Future[None] | None = None
        self._recorder: CallRecorder | None = None
        rtp.on_dtmf = self._digit

    # --- AudioTransport ------------------------------------------------------------------
    def audio(self) -> AsyncIterator[bytes]:
        return self.rtp.frames()

    async def listen(self, sink: FrameSink) -> None:
        """The RTP pacer calls ``sink`` in its tick; returns when the media closes or
        is handed to a bridge (:meth:`detach`)."""
        if self._detached or self.rtp.closed:
            return
        done = self._listening = asyncio.get_running_loop().create_future()
        self.rtp.add_close_callback(self._stop_listening)
        self.rtp.set_frame_sink(sink)
        try:
            await done
        finally:
            self._stop_listening()

    def _stop_listening(self) -> None:
        listening = self._listening
        if listening is not None:
            self._listening = None
            self.rtp.set_frame_sink(None)
            if not listening.done():
                listening.set_result(None)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def send(self, pcm: bytes) -> None:
        await self.rtp.send(pcm)

    def pause_output(self, paused: bool) -> None:
        self.rtp.pause_output(paused)

    def clear(self) -> None:
        self.rtp.clear()

    @property
    def played_samples(self) -> int:
        return self.rtp.played_samples

    @property
    def queued_samples(self) -> int:
        return self.rtp.queued_samples

    def attach_recorder(self, recorder: CallRecorder) -> None:
        """The RTP session feeds ``recorder`` in every tick from now on, and goes on
        after :meth:`detach` (a bridged transfer: the caller and what the bridge
        sends them; the recorder's ``finish()`` waits for it), until the session
        closes."""
        self._recorder = recorder
        recorder.bind(self.rtp.clock)
        if self._detached:
            recorder.hold()
        self.rtp.set_recorder(recorder.on_tick)
        self.rtp.add_close_callback(recorder.stop)

    @property
    def recorder(self) -> CallRecorder | None:
        return self._recorder

    async def send_dtmf(self, digits: str) -> None:
        """RFC 4733 in the media stream if negotiated, else one SIP INFO per digit."""
        if self._ended or not digits:
            return
        if self.rtp.dtmf_pt is not None:
            await self.rtp.send_dtmf(digits)
        elif self._on_dtmf_info is not None:
            for digit in digits.upper():
                if digit not in EVENTS:
                    raise ValueError(f"not a DTMF digit: {digit!r}")
                await self._on_dtmf_info(digit)
        else:
            log.warning("cannot send DTMF %r: no telephone-event and no SIP INFO", digits)

    async def transfer(self, destination: str) -> TransferResult:
        if self._ended:
            return TransferResult(ok=False, detail="the call has ended")
        return await self._on_transfer(destination)

    async def hangup(self) -> None:
        """End the call from our side: media stops, ``on_hangup`` (BYE) runs once.
        Idempotent; after :meth:`remote_hangup` it only closes the media, and
        after :meth:`detach` it does nothing."""
        if self._detached:
            return
        if self._hangup_done is not None:
            await asyncio.shield(self._hangup_done)
            return
        self._hangup_done = asyncio.get_running_loop().create_future()
        ours = not self._ended
        self._end()
        try:
            if ours:
                await self._play_out()
            await self.rtp.aclose()
            if ours:
                await self._on_hangup()
        finally:
            self._hangup_done.set_result(None)

    async def _play_out(self) -> None:
        """Before our BYE: let queued speech go out, then a short tail so the far
        end's jitter buffer plays the last words (a goodbye is not clipped)."""
        queued_s = self.rtp.queued_samples / SAMPLE_RATE  # the pacer sends in real time
        await asyncio.sleep(min(queued_s, PLAY_OUT_MAX_S) + HANGUP_TAIL_S)

    # --- the SIP dialog's side -----------------------------------------------------------
    def detach(self) -> None:
        """Hand the call's media to someone else (a transfer bridged by the trunk):
        the engine's side ends (no more events) but the RTP session stays open
        and no BYE is sent; whoever took the media closes it."""
        self._detached = True
        self._stop_listening()  # from now on the bridge reads the frames
        if self._recorder is not None:
            self._recorder.hold()  # the recording goes on until the bridge closes the media
        self._end()

    def remote_hangup(self, reason: str = "customer-ended-call") -> None:
        """The peer hung up (BYE, or the media timed out): a :class:`RemoteHangup`
        event, then the media stops and :meth:`audio` and :meth:`events` end."""
        if self._ended:
            return
        self._events.put_nowait(RemoteHangup(reason))
        self._end()
        self.rtp.close()

    def dtmf_info_received(self, digit: str) -> None:
        """A digit the peer sent by SIP INFO."""
        self._digit(digit)

    @property
    def ended(self) -> bool:
        return self._ended

    def stats(self) -> RtpStats:
        return self.rtp.stats()

    def _digit(self, digit: str) -> None:
        if not self._ended:
            self._events.put_nowait(DtmfDigit(digit))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(None)


if TYPE_CHECKING:  # the engine's interface, checked by mypy

    def _conforms(transport: SipMediaTransport) -> AudioTransport:
        return transport
