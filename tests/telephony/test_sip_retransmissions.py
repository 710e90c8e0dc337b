"""Retransmission timers over real loopback UDP, against a bare socket that
decides exactly what to answer (RFC 3261 §13.3.1.4, §17)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from flireo.telephony.sip.dialog import Dialog
from flireo.telephony.sip.message import Request
from flireo.telephony.sip.ua import DialFailed, IncomingCall, SipEndpoint
from tests.telephony.sip_peer import SDP, CallIds, RawPeer, reply, sip_request

T1 = 0.02  # timers B/F/H and the 2xx-without-ACK limit are 64*T1 = 1.28 s


@pytest.fixture
async def fast_endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(host="127.0.0.1", port=0, tcp=False, t1=T1)
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    p = await RawPeer.open()
    try:
        yield p
    finally:
        p.close()


async def test_invite_is_retransmitted_with_doubling_intervals_then_times_out(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    with pytest.raises(DialFailed) as failed:
        await fast_endpoint.invite(
            f"sip:nobody@127.0.0.1:{peer.port}", from_uri="sip:us@127.0.0.1", sdp_offer=SDP
        )
    assert failed.value.kind == "timeout"  # timer B: 64*T1 without any response
    assert failed.value.status is None
    copies = peer.drain()
    assert all(isinstance(c.message, Request) and c.message.method == "INVITE" for c in copies)
    assert len({c.raw for c in copies}) == 1  # byte-identical retransmissions
    # sent at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1 while on time; fewer if the loop lags
    assert 4 <= len(copies) <= 7
    gaps = [b.at - a.at for a, b in itertools.pairwise(copies)]
    for i, gap in enumerate(gaps):
        assert gap >= 0.8 * T1 * 2**i  # timer A doubles every time (no T2 cap for INVITE)


async def test_provisional_response_stops_invite_retransmission(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    dialling = asyncio.create_task(
        fast_endpoint.invite(
            f"sip:callee@127.0.0.1:{peer.port}",
            from_uri="sip:us@127.0.0.1",
            sdp_offer=SDP,
            timeout_s=30,
        )
    )
    first = await peer.next()
    second = await peer.next()
    assert first.raw == second.raw
    assert isinstance(first.message, Request)
    peer.send(reply(first.message, 180, "Ringing", to_tag="callee1"), fast_endpoint.port)
    await asyncio.sleep(16 * T1)
    later = [c for c in peer.drain() if isinstance(c.message, Request)]
    assert len(later) <= 1  # at most one copy already in flight when the 180 landed
    dialling.cancel()
    cancel = await peer.next_request("CANCEL")
    assert isinstance(cancel.message, Request)
    assert cancel.message.top_via.branch == first.message.top_via.branch
    peer.send(reply(cancel.message, 200, "OK", to_tag="callee1"), fast_endpoint.port)
    peer.send(reply(first.message, 487, "Request Terminated", to_tag="callee1"), fast_endpoint.port)
    ack = await peer.next_request("ACK")
    assert isinstance(ack.message, Request)
    assert ack.message.top_via.branch == first.message.top_via.branch  # non-2xx ACK: same branch
    assert ack.message.to.tag == "callee1"
    with pytest.raises(asyncio.CancelledError):
        await dialling


class AnswerNow:
    def __init__(self) -> None:
        self.dialogs: asyncio.Queue[Dialog] = asyncio.Queue()

    async def __call__(self, call: IncomingCall) -> None:
        await self.dialogs.put(await call.answer(SDP))


async def test_200_ok_is_retransmitted_until_the_ack(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    app = AnswerNow()
    fast_endpoint.on_invite = app
    ids = CallIds.fresh()
    peer.send(
        sip_request("INVITE", peer=peer, ep_port=fast_endpoint.port, ids=ids, body=SDP),
        fast_endpoint.port,
    )
    await peer.next_response(100)
    oks = [await peer.next_response(200) for _ in range(4)]
    assert len({o.raw for o in oks}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(oks)]
    for i, gap in enumerate(gaps):
        assert gap >= 0.8 * min(T1 * 2**i, 8 * T1)  # T1, 2T1, 4T1... capped at T2
    dialog = await app.dialogs.get()
    assert not dialog.confirmed.is_set()

    ok = oks[0].message
    to_tag = ok.to.tag
    peer.send(
        sip_request(
            "ACK",
            peer=peer,
            ep_port=fast_endpoint.port,
            ids=ids,
            to_tag=to_tag,
            branch="z9hG4bKack1",
        ),
        fast_endpoint.port,
    )
    await asyncio.wait_for(dialog.confirmed.wait(), 2)
    peer.drain()
    await asyncio.sleep(3 * 8 * T1)  # three T2 periods: no more 200s
    assert [c for c in peer.drain() if not isinstance(c.message, Request)] == []
    assert not dialog.ended.is_set()


async def test_unacknowledged_200_ok_ends_the_call_with_bye(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    app = AnswerNow()
    fast_endpoint.on_invite = app
    ids = CallIds.fresh()
    peer.send(
        sip_request("INVITE", peer=peer, ep_port=fast_endpoint.port, ids=ids, body=SDP),
        fast_endpoint.port,
    )
    dialog = await asyncio.wait_for(app.dialogs.get(), 5)
    bye = await peer.next_request("BYE", limit_s=64 * T1 + 5)
    assert isinstance(bye.message, Request)
    assert bye.message.to.tag == ids.from_tag
    assert bye.message.uri == f"sip:peer@127.0.0.1:{peer.port}"  # our Contact
    peer.send(reply(bye.message, 200, "OK"), fast_endpoint.port)
    await asyncio.wait_for(dialog.ended.wait(), 2)
    assert dialog.end_reason == "ack-timeout"
    oks = [c for c in peer.drain() if not isinstance(c.message, Request)]
    assert oks == []  # nothing after the BYE's 200... (all 200 OKs came before the BYE)


async def test_error_response_is_retransmitted_until_the_ack(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    async def busy(call: IncomingCall) -> None:
        await call.reject(486)

    fast_endpoint.on_invite = busy
    ids = CallIds.fresh()
    peer.send(
        sip_request("INVITE", peer=peer, ep_port=fast_endpoint.port, ids=ids, body=SDP),
        fast_endpoint.port,
    )
    first = await peer.next_response(486)
    await peer.next_response(486)  # timer G
    await peer.next_response(486)
    peer.send(
        sip_request(
            "ACK", peer=peer, ep_port=fast_endpoint.port, ids=ids, to_tag=first.message.to.tag
        ),
        fast_endpoint.port,
    )
    await asyncio.sleep(0.05)
    peer.drain()
    await asyncio.sleep(3 * 8 * T1)
    assert peer.drain() == []


async def test_retransmitted_invite_is_absorbed_and_answered_again(
    fast_endpoint: SipEndpoint, peer: RawPeer
) -> None:
    calls: list[IncomingCall] = []
    release = asyncio.Event()

    async def ring(call: IncomingCall) -> None:
        calls.append(call)
        await call.ringing()
        await release.wait()
        await call.reject(480)

    fast_endpoint.on_invite = ring
    ids = CallIds.fresh()
    invite = sip_request("INVITE", peer=peer, ep_port=fast_endpoint.port, ids=ids, body=SDP)
    peer.send(invite, fast_endpoint.port)
    await peer.next_response(180)
    peer.send(invite, fast_endpoint.port)
    again = await peer.next_response(180)  # the last provisional, sent again
    assert again.message.to.tag == calls[0].to_tag
    assert len(calls) == 1  # the application saw one call
    release.set()
    await peer.next_response(480)
