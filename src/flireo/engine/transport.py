"""How audio reaches a call: the one interface between the engine and SIP,
carrier websockets, browsers or the in-memory test transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flireo.recordings.capture import CallRecorder


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str  # one of 0-9 * # A-D


@dataclass(frozen=True, slots=True)
class RemoteHangup:
    """The far end hung up (BYE, websocket closed...)."""

    reason: str = "customer-ended-call"


TransportEvent = DtmfDigit | RemoteHangup


@dataclass(frozen=True, slots=True)
class TransferResult:
    ok: bool
    detail: str = ""


#: takes one caller frame, synchronously on the event loop; must be cheap and not raise
FrameSink = Callable[[bytes], None]


class AudioTransport(Protocol):
    """Engine side is always 16 kHz mono s16le (see :mod:`flireo.media.frames`)."""

    def audio(self) -> AsyncIterator[bytes]:
        """Caller audio as 20 ms frames; ends when the call's media ends."""
        ...

    async def listen(self, sink: FrameSink) -> None:
        """The frames of :meth:`audio`, handed to ``sink`` as they arrive; returns
        when the media ends. Use one or the other, once.

        The engine listens this way: the transport calls ``sink`` in its own
        tick (the shared pacer of :mod:`flireo.media.ticker`), so a call's frame
        costs no task switch."""
        ...

    def events(self) -> AsyncIterator[TransportEvent]:
        """DTMF digits and the remote hang-up; ends when the call ends."""
        ...

    async def send(self, pcm: bytes) -> None:
        """Queue agent speech; the transport paces it out in real time."""
        ...

    def pause_output(self, paused: bool) -> None:
        """Hold (``True``) or go on playing (``False``) the queued agent speech.

        While held the caller hears silence and nothing queued is lost or counts
        as played: the engine holds the agent while caller speech may still turn
        out to be a backchannel, then goes on or clears. :meth:`clear` ends a hold."""
        ...

    def clear(self) -> None:
        """Drop all queued, not yet played agent speech at once (barge-in)."""
        ...

    @property
    def played_samples(self) -> int:
        """Agent samples actually sent to the caller since the call began
        (a monotonic counter: queued-then-cleared audio never counts)."""
        ...

    @property
    def queued_samples(self) -> int:
        """Agent samples queued and not yet played."""
        ...

    async def send_dtmf(self, digits: str) -> None: ...

    async def transfer(self, destination: str) -> TransferResult:
        """Hand the caller to ``destination`` (E.164 number or SIP URI)."""
        ...

    async def hangup(self) -> None:
        """End the call from our side; idempotent."""
        ...

    def attach_recorder(self, recorder: CallRecorder) -> None:
        """Record the call from now on: the recorder's timeline starts now
        (:meth:`CallRecorder.bind` with the transport's clock) and every pacer tick
        feeds it the caller frame received and the agent frame sent, also while a
        transfer bridges the media; it is stopped when the media closes.
        Attach before the engine's session runs: its transcript shares this zero."""
        ...

    @property
    def recorder(self) -> CallRecorder | None:
        """The attached recorder, if any."""
        ...
