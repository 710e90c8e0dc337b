"""Loops over SIP (issue 14, item 2): an INVITE that already passed through us
gets 482 Loop Detected, the server never INVITEs its own listener (the egress
policy at dial time, on the resolved address), and a leg we place for a call
carries the caller's Max-Forwards on, decremented."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, update

from flireo.services.container import Services
from flireo.store.tables import Call, SipTrunk
from flireo.telephony.sip.message import Request, Response
from flireo.telephony.sip.ua import DialFailed, IncomingCall, SipEndpoint
from tests.api.conftest import Org
from tests.calls.phone import agent_with_number, gateway
from tests.fakes.openai_chat import FakeOpenAI
from tests.telephony.sip_peer import SDP, CallIds, RawPeer, sip_request

OFFER = b"v=0\r\no=flireo 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def ep() -> AsyncIterator[SipEndpoint]:
    endpoint = SipEndpoint(host="127.0.0.1", port=0, t1=0.05)
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    p = await RawPeer.open()
    try:
        yield p
    finally:
        p.close()


async def test_an_invite_to_ourselves_is_refused_as_a_loop(ep: SipEndpoint) -> None:
    """No proxy in between: the INVITE arrives with the branch we just sent."""
    offered: list[IncomingCall] = []

    async def on_invite(call: IncomingCall) -> None:
        offered.append(call)
        await call.reject(486)

    ep.on_invite = on_invite
    with pytest.raises(DialFailed) as info:
        await ep.invite(
            f"sip:+31612345678@127.0.0.1:{ep.port}",
            from_uri="sip:flireo@127.0.0.1",
            sdp_offer=OFFER,
            timeout_s=5,
        )
    assert info.value.status == 482
    assert offered == []


async def test_an_invite_carrying_our_via_is_refused_as_a_loop(
    ep: SipEndpoint, peer: RawPeer
) -> None:
    """Through a proxy that sent it back: our sent-by is one of its Vias."""
    ep.on_invite = lambda call: call.reject(486)
    invite = sip_request(
        "INVITE",
        peer=peer,
        ep_port=ep.port,
        ids=CallIds.fresh(),
        body=SDP,
        extra=f"Via: SIP/2.0/UDP 127.0.0.1:{ep.port};branch=z9hG4bK-earlier\r\n",
    )
    peer.send(invite, ep.port)
    got = await peer.next()
    assert isinstance(got.message, Response)
    assert (got.message.status, got.message.reason) == (482, "Loop Detected")
    # the same INVITE from someone else's path is an ordinary call
    plain = sip_request("INVITE", peer=peer, ep_port=ep.port, ids=CallIds.fresh(), body=SDP)
    peer.send(plain, ep.port)
    statuses = []
    for _ in range(2):
        message = (await peer.next()).message
        assert isinstance(message, Response)
        statuses.append(message.status)
    assert statuses == [100, 486]


async def test_a_placed_leg_carries_the_given_max_forwards(ep: SipEndpoint, peer: RawPeer) -> None:
    task = asyncio.create_task(
        ep.invite(
            f"sip:+31612345678@127.0.0.1:{peer.port}",
            from_uri="sip:flireo@127.0.0.1",
            sdp_offer=OFFER,
            headers=[("Max-Forwards", "5")],
            timeout_s=5,
        )
    )
    try:
        got = await peer.next()
        assert isinstance(got.message, Request)
        assert got.message.headers.get_all("Max-Forwards") == ["5"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_gateway_refuses_to_dial_its_own_listener(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    """A trunk row that leads back to us (stored before the rule, or a name whose
    DNS changed since create): the dial fails before any INVITE leaves, and the
    refusal is in the call record."""
    agent_id, trunk_id = await agent_with_number(api, fake_openai, trunk={"port": 5999})
    async with gateway(services) as gw:
        async with services.db.transaction() as s:
            await s.execute(
                update(SipTrunk)
                .where(SipTrunk.id == trunk_id)
                .values(host="127.0.0.1", port=gw.endpoint.port)
            )
        services.dialer = gw
        r = await api.post(
            "/calls/outbound", json={"agent_id": agent_id, "destination": "+31612345678"}
        )
        assert r.status_code in (200, 201), r.text
        call_id = r.json()["call_id"]
        for _ in range(200):
            async with services.db.read() as s:
                call = await s.get(Call, call_id)
                assert call is not None
            if call.status == "failed":
                break
            await asyncio.sleep(0.05)
        async with services.db.read() as s:
            calls = (await s.execute(select(Call))).scalars().all()
    assert call.status == "failed"
    assert call.ended_reason == "dial-failed"
    assert call.error is not None
    assert "own SIP address" in call.error
    assert len(calls) == 1  # no inbound call from ourselves


async def test_a_sip_transfer_to_a_metadata_address_is_refused_at_dial_time(
    services: Services,
) -> None:
    async with gateway(services) as gw:
        own = f"sip:desk@127.0.0.1:{gw.endpoint.port}"
        assert "own SIP address" in (await gw._refused_target(own) or "")
        assert "metadata" in (await gw._refused_target("sip:x@169.254.169.254") or "")
        assert await gw._refused_target("sip:desk@192.168.1.20") is None
        assert await gw._refused_target("+31612345678") is None
