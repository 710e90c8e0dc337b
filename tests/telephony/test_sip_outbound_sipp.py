"""A Flireo SipEndpoint calls sipp playing a trunk or a callee (we are the UAC)."""

from __future__ import annotations

import asyncio

import pytest

from flireo.telephony.sip.ua import DialFailed, SipEndpoint
from tests.telephony.sipp import Sipp, SippRun

pytestmark = pytest.mark.sipp

OFFER = (
    b"v=0\r\no=flireo 7 1 IN IP4 127.0.0.1\r\ns=flireo\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 40002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
)


def target(run: SippRun, user: str = "+15557654321") -> str:
    return f"sip:{user}@127.0.0.1:{run.port}"


async def test_trunk_digest_auth_with_the_right_password_answers(
    endpoint: SipEndpoint, sipp: Sipp
) -> None:
    run = await sipp.start("uas_digest_auth.xml")
    progress: list[tuple[int, str]] = []
    dialog = await endpoint.invite(
        target(run),
        from_uri="sip:+15550100@flireo.test",
        sdp_offer=OFFER,
        credentials=("alice", "s3cret-pass"),
        on_progress=lambda status, reason: progress.append((status, reason)),
        timeout_s=10,
    )
    assert progress == [(180, "Ringing")]
    assert b"PCMA/8000" in dialog.remote_sdp
    assert dialog.role == "uac"
    assert dialog.remote_target == f"sip:trunk@127.0.0.1:{run.port};transport=UDP"
    await asyncio.wait_for(dialog.bye(), 5)
    assert await run.wait() == 0, run.explain()
    assert dialog.end_reason == "local-bye"
    invites = run.received("INVITE ")
    assert len(invites) == 2
    assert "Authorization:" not in invites[0]
    assert "qop=auth" in invites[1]
    assert "nc=00000001" in invites[1]


async def test_trunk_digest_auth_with_a_wrong_password_fails(
    endpoint: SipEndpoint, sipp: Sipp
) -> None:
    run = await sipp.start("uas_digest_auth.xml")
    with pytest.raises(DialFailed) as failed:
        await endpoint.invite(
            target(run),
            from_uri="sip:+15550100@flireo.test",
            sdp_offer=OFFER,
            credentials=("alice", "wrong"),
            timeout_s=10,
        )
    assert failed.value.kind == "auth-failed"
    assert failed.value.status == 403
    assert await run.wait() == 0, run.explain()  # sipp saw our ACK for the 403
    assert len(run.received("ACK ")) == 2


async def test_challenge_without_credentials_is_an_auth_failure(
    endpoint: SipEndpoint, sipp: Sipp
) -> None:
    run = await sipp.start("uas_digest_auth.xml")
    with pytest.raises(DialFailed) as failed:
        await endpoint.invite(
            target(run), from_uri="sip:+15550100@flireo.test", sdp_offer=OFFER, timeout_s=10
        )
    assert failed.value.kind == "auth-failed"
    assert failed.value.status == 401


async def test_busy_callee(endpoint: SipEndpoint, sipp: Sipp) -> None:
    run = await sipp.start("uas_busy.xml")
    with pytest.raises(DialFailed) as failed:
        await endpoint.invite(
            target(run), from_uri="sip:+15550100@flireo.test", sdp_offer=OFFER, timeout_s=10
        )
    assert (failed.value.kind, failed.value.status) == ("busy", 486)
    assert await run.wait() == 0, run.explain()


async def test_no_answer_cancels_at_the_dial_timeout(endpoint: SipEndpoint, sipp: Sipp) -> None:
    run = await sipp.start("uas_no_answer.xml")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DialFailed) as failed:
        await endpoint.invite(
            target(run), from_uri="sip:+15550100@flireo.test", sdp_offer=OFFER, timeout_s=1.0
        )
    assert (failed.value.kind, failed.value.status) == ("no-answer", 487)
    assert loop.time() - started >= 1.0
    assert await run.wait() == 0, run.explain()
    cancel = run.received("CANCEL ")[0]
    invite = run.received("INVITE ")[0]
    assert via_line(cancel) == via_line(invite)  # RFC 3261 §9.1: same top Via


async def test_cancelling_the_dialling_task_sends_cancel(endpoint: SipEndpoint, sipp: Sipp) -> None:
    run = await sipp.start("uas_no_answer.xml")
    ringing = asyncio.Event()
    dialling = asyncio.create_task(
        endpoint.invite(
            target(run),
            from_uri="sip:+15550100@flireo.test",
            sdp_offer=OFFER,
            on_progress=lambda status, _reason: ringing.set(),
        )
    )
    await asyncio.wait_for(ringing.wait(), 5)
    dialling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dialling
    assert await run.wait() == 0, run.explain()  # CANCEL, 487, ACK all happened
    assert endpoint.dialogs == []


def via_line(message: str) -> str:
    return next(h for h in message.splitlines() if h.lower().startswith("via:"))


async def test_outbound_call_over_tcp(endpoint: SipEndpoint, sipp: Sipp) -> None:
    run = await sipp.start("uas_digest_auth.xml", transport="t1")
    dialog = await endpoint.invite(
        target(run) + ";transport=tcp",
        from_uri="sip:+15550100@flireo.test",
        sdp_offer=OFFER,
        credentials=("alice", "s3cret-pass"),
        timeout_s=10,
    )
    assert dialog.peer.transport == "TCP"
    await asyncio.wait_for(dialog.bye(), 5)
    assert await run.wait() == 0, run.explain()
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in run.received("INVITE ")[0]
