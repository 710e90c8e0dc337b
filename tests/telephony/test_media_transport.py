"""SipMediaTransport: the engine's AudioTransport over a real RTP session on loopback,
with the SIP dialog's side played by the test (hang-up, transfer, SIP INFO)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from flireo.clock import Clock, ManualClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.transport import DtmfDigit, RemoteHangup, TransferResult, TransportEvent
from flireo.media.frames import FRAME_BYTES
from flireo.media.g711 import ulaw_encode
from flireo.telephony.media_transport import SipMediaTransport
from flireo.telephony.rtp.dtmf import ToneEvent
from flireo.telephony.rtp.ports import PortAllocator
from flireo.telephony.rtp.session import RtpSession
from tests.telephony.rtp_helpers import UdpSink, digit_packets, noise, until

SILENT_ULAW = ulaw_encode(bytes(320))
#: a hair over 20 ms: float rounding of the summed steps never leaves a tick for the next one
STEP = 0.0201


@dataclass
class Dialog:
    """What the SIP dialog would do, recorded."""

    byes: int = 0
    transfers: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    transfer_result: TransferResult = field(default_factory=lambda: TransferResult(ok=True))

    async def bye(self) -> None:
        await asyncio.sleep(0.01)  # a round trip
        self.byes += 1

    async def transfer(self, destination: str) -> TransferResult:
        self.transfers.append(destination)
        return self.transfer_result

    async def info(self, digit: str) -> None:
        self.infos.append(digit)


@dataclass
class Line:
    transport: SipMediaTransport
    dialog: Dialog
    far: UdpSink

    @property
    def port(self) -> int:
        assert self.transport.rtp.local_port is not None
        return self.transport.rtp.local_port

    async def drain_events(self) -> list[TransportEvent]:
        return [e async for e in self.transport.events()]


@asynccontextmanager
async def line(
    *,
    dtmf_pt: int | None = 101,
    clock: Clock | None = None,
    ports: PortAllocator | None = None,
    info: bool = True,
) -> AsyncIterator[Line]:
    far = await UdpSink.open()
    rtp = RtpSession(local_host="127.0.0.1", dtmf_pt=dtmf_pt, clock=clock, ports=ports)
    await rtp.bind()
    rtp.set_remote("127.0.0.1", far.port)
    dialog = Dialog()
    transport = SipMediaTransport(
        rtp,
        on_hangup=dialog.bye,
        on_transfer=dialog.transfer,
        on_dtmf_info=dialog.info if info else None,
    )
    rtp.start()
    try:
        yield Line(transport, dialog, far)
    finally:
        await rtp.aclose()
        far.close()


async def test_hangup_sends_bye_once_and_ends_media_and_events() -> None:
    ports = PortAllocator(31_000, 31_100)
    async with line(ports=ports) as call:
        frames: list[bytes] = []

        async def read() -> None:
            async for frame in call.transport.audio():
                frames.append(frame)

        reader = asyncio.create_task(read())
        events = asyncio.create_task(call.drain_events())
        await until(lambda: len(frames) >= 3)
        await asyncio.gather(call.transport.hangup(), call.transport.hangup())
        await call.transport.hangup()
        assert call.dialog.byes == 1
        await asyncio.wait_for(reader, 5)
        assert await asyncio.wait_for(events, 5) == []
        assert call.transport.rtp.closed
        assert ports.in_use == 0
        assert call.transport.ended


async def test_remote_hangup_is_an_event_then_audio_ends_and_no_bye_is_sent() -> None:
    async with line() as call:
        events = asyncio.create_task(call.drain_events())
        audio = call.transport.audio()
        await anext(audio)
        call.transport.remote_hangup("customer-ended-call")
        call.transport.remote_hangup("again")  # a retransmitted BYE
        assert await asyncio.wait_for(events, 5) == [RemoteHangup("customer-ended-call")]
        rest = [f async for f in audio]
        assert len(rest) <= 1
        await call.transport.hangup()  # the engine winds down and hangs up too
        assert call.dialog.byes == 0
        result = await call.transport.transfer("+15550100")
        assert not result.ok
        assert call.dialog.transfers == []


async def test_transfer_goes_to_the_dialog() -> None:
    async with line() as call:
        call.dialog.transfer_result = TransferResult(ok=False, detail="486 Busy Here")
        result = await call.transport.transfer("sip:billing@example.com")
        assert result == TransferResult(ok=False, detail="486 Busy Here")
        assert call.dialog.transfers == ["sip:billing@example.com"]


async def test_rfc4733_and_sip_info_digits_become_engine_events() -> None:
    async with line() as call:
        events = asyncio.create_task(call.drain_events())
        for packet in digit_packets(4, seq=1, ts=1_000) + digit_packets(10, seq=8, ts=2_600):
            call.far.send(packet, call.port)
        await until(lambda: call.transport.rtp.stats().packets_received >= 14)
        call.transport.dtmf_info_received("#")
        call.transport.remote_hangup()
        assert await asyncio.wait_for(events, 5) == [
            DtmfDigit("4"),
            DtmfDigit("*"),
            DtmfDigit("#"),
            RemoteHangup(),
        ]


async def test_digits_go_out_in_the_media_when_telephone_event_was_negotiated() -> None:
    async with line() as call:
        await asyncio.wait_for(call.transport.send_dtmf("7"), 10)
        await until(lambda: sum(p.payload_type == 101 for p in call.far.packets) >= 7)
        tones = [ToneEvent.parse(p.payload) for p in call.far.packets if p.payload_type == 101]
        assert [(t.digit, t.end) for t in tones] == [("7", False)] * 4 + [("7", True)] * 3
        assert call.dialog.infos == []


async def test_digits_fall_back_to_sip_info_without_telephone_event() -> None:
    async with line(dtmf_pt=None) as call:
        await call.transport.send_dtmf("12#")
        assert call.dialog.infos == ["1", "2", "#"]
        with pytest.raises(ValueError):
            await call.transport.send_dtmf("9x")
    async with line(dtmf_pt=None, info=False) as call:
        await call.transport.send_dtmf("5")  # nowhere to send: logged, not fatal


async def test_speech_is_paced_out_and_clear_drops_the_rest_at_once() -> None:
    clock = ManualClock()
    async with line(clock=clock) as call:
        transport = call.transport
        await clock.advance(0)  # tick 0: silence
        await transport.send(noise(16_000, 2.0))
        assert transport.queued_samples == 32_000
        for _ in range(10):
            await clock.advance(STEP)
        assert transport.played_samples == 3_200
        assert transport.queued_samples == 32_000 - 3_200
        transport.clear()  # the caller barged in
        assert transport.queued_samples == 0
        for _ in range(10):
            await clock.advance(STEP)
        assert transport.played_samples == 3_200
        await until(lambda: len(call.far.received) >= 21)
        payloads = [p.payload for p in call.far.packets]
        assert payloads[0] == SILENT_ULAW
        assert all(p != SILENT_ULAW for p in payloads[1:11])  # the speech
        assert all(p == SILENT_ULAW for p in payloads[12:21])  # then silence, at once


async def scripted(
    transport: SipMediaTransport | MemoryTransport,
    advance: Callable[[], Awaitable[None]],
) -> list[tuple[int, int]]:
    """Queue and clear speech on a script, one 20 ms tick a step; (played, queued) after each."""
    script: dict[int, bytes | None] = {
        0: bytes(1000),  # a frame and a bit
        3: bytes(FRAME_BYTES * 5),
        5: None,  # clear
        6: bytes(333 * 2),
        7: bytes(FRAME_BYTES * 2),
        12: bytes(FRAME_BYTES * 3),
    }
    seen: list[tuple[int, int]] = []
    for step in range(16):
        action = script.get(step, b"")
        if action is None:
            transport.clear()
        elif action:
            await transport.send(action)
        await advance()
        seen.append((transport.played_samples, transport.queued_samples))
    return seen


async def test_played_and_queued_samples_count_exactly_like_the_memory_transport() -> None:
    memory_clock = ManualClock()
    memory = MemoryTransport(memory_clock)

    async def consume() -> None:
        async for _ in memory.audio():
            pass

    consumer = asyncio.create_task(consume())
    await memory_clock.advance(0)

    async def memory_tick() -> None:
        await memory_clock.advance(STEP)

    expected = await scripted(memory, memory_tick)
    await memory.hangup()
    await memory_clock.advance(STEP)
    await asyncio.wait_for(consumer, 5)

    rtp_clock = ManualClock()
    async with line(clock=rtp_clock) as call:
        await rtp_clock.advance(0)  # tick 0 before the script, as the memory line's start

        async def rtp_tick() -> None:
            await rtp_clock.advance(STEP)

        assert await scripted(call.transport, rtp_tick) == expected
    assert expected[0] == (320, 180)
    assert expected[-1][1] == 0
