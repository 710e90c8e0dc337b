"""sipp calls a Flireo SipEndpoint over loopback (we are the UAS)."""

from __future__ import annotations

import asyncio

import pytest

from flireo.telephony.sip.dialog import Dialog
from flireo.telephony.sip.ua import CallCancelled, IncomingCall, SipEndpoint
from tests.telephony.sipp import Sipp

pytestmark = pytest.mark.sipp

ANSWER_SDP = (
    b"v=0\r\no=flireo 1 1 IN IP4 127.0.0.1\r\ns=flireo\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)


class Answering:
    """An ``on_invite`` that rings, answers and records what happened."""

    def __init__(self) -> None:
        self.calls: list[IncomingCall] = []
        self.dialogs: asyncio.Queue[Dialog] = asyncio.Queue()

    async def __call__(self, call: IncomingCall) -> None:
        self.calls.append(call)
        await call.ringing()
        await self.dialogs.put(await call.answer(ANSWER_SDP))


async def test_caller_hangs_up_with_bye(endpoint: SipEndpoint, sipp: Sipp) -> None:
    app = Answering()
    endpoint.on_invite = app
    run = await sipp.start("uac_remote_bye.xml", remote=("127.0.0.1", endpoint.port))
    dialog = await asyncio.wait_for(app.dialogs.get(), 10)
    assert await run.wait() == 0, run.explain()

    await asyncio.wait_for(dialog.ended.wait(), 5)
    assert dialog.end_reason == "remote-bye"
    assert dialog.confirmed.is_set()  # sipp's ACK reached the dialog
    call = app.calls[0]
    assert call.transport == "UDP"
    assert call.source == ("127.0.0.1", run.port)
    assert call.request.from_.user == "+15550001"
    assert b"m=audio" in dialog.remote_sdp
    assert dialog.remote_target == f"sip:sipp@127.0.0.1:{run.port};transport=UDP"
    assert endpoint.dialogs == []


async def test_we_hang_up_and_sipp_gets_our_bye(endpoint: SipEndpoint, sipp: Sipp) -> None:
    app = Answering()
    endpoint.on_invite = app
    run = await sipp.start("uac_local_bye.xml", remote=("127.0.0.1", endpoint.port))
    dialog = await asyncio.wait_for(app.dialogs.get(), 10)
    await asyncio.wait_for(dialog.confirmed.wait(), 5)

    await asyncio.wait_for(dialog.bye(), 5)  # returns once sipp answered 200
    assert dialog.ended.is_set()
    assert dialog.end_reason == "local-bye"
    await dialog.bye()  # idempotent: nothing more is sent
    assert await run.wait() == 0, run.explain()
    assert run.messages.count("BYE sip:") == 1


async def test_caller_cancels_before_answer(endpoint: SipEndpoint, sipp: Sipp) -> None:
    calls: list[IncomingCall] = []
    answered_after_cancel: list[BaseException] = []

    async def ring_forever(call: IncomingCall) -> None:
        calls.append(call)
        await call.ringing()
        await call.cancelled.wait()
        try:
            await call.answer(ANSWER_SDP)
        except CallCancelled as exc:
            answered_after_cancel.append(exc)

    endpoint.on_invite = ring_forever
    run = await sipp.start("uac_cancel.xml", remote=("127.0.0.1", endpoint.port))
    assert await run.wait() == 0, run.explain()

    assert len(calls) == 1
    assert calls[0].cancelled.is_set()
    await asyncio.sleep(0.05)
    assert len(answered_after_cancel) == 1
    ringing = run.received("SIP/2.0 180")[0]
    terminated = run.received("SIP/2.0 487")[0]
    assert to_tag(ringing) == to_tag(terminated)  # one early dialog, one tag
    assert endpoint.dialogs == []


def to_tag(message: str) -> str:
    line = next(h for h in message.splitlines() if h.lower().startswith("to:"))
    return line.split("tag=")[1].split(";")[0].strip()


async def test_call_over_tcp(endpoint: SipEndpoint, sipp: Sipp) -> None:
    app = Answering()
    endpoint.on_invite = app
    run = await sipp.start("uac_local_bye.xml", remote=("127.0.0.1", endpoint.port), transport="t1")
    dialog = await asyncio.wait_for(app.dialogs.get(), 10)
    assert app.calls[0].transport == "TCP"
    await asyncio.wait_for(dialog.confirmed.wait(), 5)
    await asyncio.wait_for(dialog.bye(), 5)
    assert await run.wait() == 0, run.explain()
    assert dialog.end_reason == "local-bye"
    assert dialog.peer.transport == "TCP"
    ok = run.received("SIP/2.0 200")[0]
    assert ";transport=tcp>" in ok  # our Contact asks for TCP
