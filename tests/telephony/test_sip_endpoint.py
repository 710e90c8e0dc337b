"""SipEndpoint request handling over loopback UDP with a hand-driven peer:
OPTIONS, unknown methods, stray and malformed requests, filters, in-dialog
refreshes, INFO and the UAC's ACK for retransmitted 2xx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from flireo.telephony.sip.dialog import Dialog, ReferResult
from flireo.telephony.sip.digest import DigestChallenger
from flireo.telephony.sip.message import Message, Request, Response, parse
from flireo.telephony.sip.ua import DROP, DialFailed, IncomingCall, SipEndpoint
from tests.telephony.sip_peer import SDP, CallIds, RawPeer, reply, sip_request

OUR_SDP = b"v=0\r\no=flireo 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


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


async def ask(peer: RawPeer, ep: SipEndpoint, data: bytes) -> Response:
    peer.send(data, ep.port)
    got = await peer.next()
    assert isinstance(got.message, Response)
    return got.message


async def test_options_is_answered_with_our_methods(ep: SipEndpoint, peer: RawPeer) -> None:
    ok = await ask(
        peer, ep, sip_request("OPTIONS", peer=peer, ep_port=ep.port, ids=CallIds.fresh())
    )
    assert ok.status == 200
    allow = ok.headers.get_all("Allow")
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"} <= set(allow)
    assert ok.to.tag


async def test_unknown_method_gets_405_with_allow(ep: SipEndpoint, peer: RawPeer) -> None:
    ids = CallIds.fresh()
    res = await ask(peer, ep, sip_request("FROBNICATE", peer=peer, ep_port=ep.port, ids=ids))
    assert res.status == 405
    assert "INVITE" in res.headers.get_all("Allow")
    res = await ask(
        peer,
        ep,
        sip_request("REGISTER", peer=peer, ep_port=ep.port, ids=CallIds.fresh()),
    )
    assert res.status == 405


async def test_requests_for_unknown_dialogs_get_481(ep: SipEndpoint, peer: RawPeer) -> None:
    ids = CallIds.fresh()
    bye = sip_request("BYE", peer=peer, ep_port=ep.port, ids=ids, to_tag="nosuchdialog")
    assert (await ask(peer, ep, bye)).status == 481
    info = sip_request("INFO", peer=peer, ep_port=ep.port, ids=CallIds.fresh())
    assert (await ask(peer, ep, info)).status == 481  # out of dialog
    cancel = sip_request("CANCEL", peer=peer, ep_port=ep.port, ids=CallIds.fresh())
    assert (await ask(peer, ep, cancel)).status == 481
    # a stray ACK is dropped silently
    peer.send(sip_request("ACK", peer=peer, ep_port=ep.port, ids=ids, to_tag="x"), ep.port)
    with pytest.raises(TimeoutError):
        await peer.next(0.2)


async def test_malformed_requests_get_400_or_are_dropped(ep: SipEndpoint, peer: RawPeer) -> None:
    ids = CallIds.fresh()
    good = sip_request("OPTIONS", peer=peer, ep_port=ep.port, ids=ids).decode()
    bad_cseq = good.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
    peer.send(bad_cseq.encode(), ep.port)
    res = await peer.next()
    assert res.first_line == "SIP/2.0 400 Bad Request"
    assert f"Call-ID: {ids.call_id}".encode() in res.raw
    assert b"Warning: 399 flireo" in res.raw
    bad_version = good.replace("SIP/2.0\r\n", "SIP/7.0\r\n", 1)
    assert (await ask(peer, ep, bad_version.encode())).status == 505
    for garbage in (
        b"\x00\xff" * 40,
        b"HELLO\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nVia: nope\r\n\r\n",
    ):
        peer.send(garbage, ep.port)
    with pytest.raises(TimeoutError):
        await peer.next(0.2)
    # still alive
    ok = await ask(
        peer, ep, sip_request("OPTIONS", peer=peer, ep_port=ep.port, ids=CallIds.fresh())
    )
    assert ok.status == 200


async def test_request_filter_can_reject_or_drop(ep: SipEndpoint, peer: RawPeer) -> None:
    seen: list[tuple[str, tuple[str, int]]] = []

    def filter_(req: Request, source: tuple[str, int]) -> int | None:
        seen.append((req.method, source))
        agent = req.headers.get("User-Agent") or ""
        if agent == "friendly-scanner":
            return DROP
        if req.method == "INVITE":
            return 403
        return None

    ep.on_request_filter = filter_
    invite = sip_request("INVITE", peer=peer, ep_port=ep.port, ids=CallIds.fresh(), body=SDP)
    assert (await ask(peer, ep, invite)).status == 403
    scan = sip_request(
        "OPTIONS",
        peer=peer,
        ep_port=ep.port,
        ids=CallIds.fresh(),
        extra="User-Agent: friendly-scanner\r\n",
    )
    peer.send(scan, ep.port)
    with pytest.raises(TimeoutError):
        await peer.next(0.2)
    assert seen == [("INVITE", ("127.0.0.1", peer.port)), ("OPTIONS", ("127.0.0.1", peer.port))]


async def test_max_forwards_zero_and_unsupported_require(ep: SipEndpoint, peer: RawPeer) -> None:
    invite = sip_request(
        "INVITE", peer=peer, ep_port=ep.port, ids=CallIds.fresh(), body=SDP
    ).replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert (await ask(peer, ep, invite)).status == 483
    invite = sip_request(
        "INVITE",
        peer=peer,
        ep_port=ep.port,
        ids=CallIds.fresh(),
        body=SDP,
        extra="Require: 100rel, foo\r\n",
    )
    res = await ask(peer, ep, invite)
    assert res.status == 420
    assert res.headers.get_all("Unsupported") == ["100rel", "foo"]


async def test_merged_request_gets_482(ep: SipEndpoint, peer: RawPeer) -> None:
    release = asyncio.Event()

    async def slow(call: IncomingCall) -> None:
        await release.wait()
        await call.reject(486)

    ep.on_invite = slow
    ids = CallIds.fresh()
    peer.send(sip_request("INVITE", peer=peer, ep_port=ep.port, ids=ids, body=SDP), ep.port)
    assert (await peer.next_response(100)).message.status == 100
    # the same request (Call-ID, From tag, CSeq) arriving by another path: new branch
    forked = sip_request(
        "INVITE", peer=peer, ep_port=ep.port, ids=ids, body=SDP, branch="z9hG4bKother"
    )
    assert (await ask(peer, ep, forked)).status == 482
    release.set()


class Answer:
    def __init__(self) -> None:
        self.dialogs: asyncio.Queue[Dialog] = asyncio.Queue()

    async def __call__(self, call: IncomingCall) -> None:
        await self.dialogs.put(await call.answer(OUR_SDP))


async def established(ep: SipEndpoint, peer: RawPeer, ids: CallIds) -> tuple[Dialog, str]:
    app = Answer()
    ep.on_invite = app
    peer.send(sip_request("INVITE", peer=peer, ep_port=ep.port, ids=ids, body=SDP), ep.port)
    ok = (await peer.next_response(200)).message
    tag = ok.to.tag
    assert tag is not None
    ack = sip_request("ACK", peer=peer, ep_port=ep.port, ids=ids, to_tag=tag, branch="z9hG4bKa1")
    peer.send(ack, ep.port)
    dialog = await app.dialogs.get()
    await asyncio.wait_for(dialog.confirmed.wait(), 2)
    peer.drain()
    return dialog, tag


async def test_reinvite_and_update_refresh_the_session_with_our_sdp(
    ep: SipEndpoint, peer: RawPeer
) -> None:
    ids = CallIds.fresh()
    dialog, tag = await established(ep, peer, ids)
    reinvite = sip_request(
        "INVITE",
        peer=peer,
        ep_port=ep.port,
        ids=ids,
        to_tag=tag,
        cseq=2,
        body=SDP,
        branch="z9hG4bKre1",
    )
    ok = await ask(peer, ep, reinvite)
    assert ok.status == 200
    assert ok.body == OUR_SDP
    ack = sip_request(
        "ACK", peer=peer, ep_port=ep.port, ids=ids, to_tag=tag, cseq=2, branch="z9hG4bKa2"
    )
    peer.send(ack, ep.port)
    update = sip_request(
        "UPDATE",
        peer=peer,
        ep_port=ep.port,
        ids=ids,
        to_tag=tag,
        cseq=3,
        body=SDP,
        branch="z9hG4bKup1",
    )
    ok = await ask(peer, ep, update)
    assert (ok.status, ok.body) == (200, OUR_SDP)
    # an out-of-order CSeq is refused
    stale = sip_request(
        "INFO", peer=peer, ep_port=ep.port, ids=ids, to_tag=tag, cseq=1, branch="z9hG4bKold"
    )
    assert (await ask(peer, ep, stale)).status == 500
    assert not dialog.ended.is_set()


async def test_info_reaches_on_info_and_bye_ends_the_dialog(ep: SipEndpoint, peer: RawPeer) -> None:
    ids = CallIds.fresh()
    dialog, tag = await established(ep, peer, ids)
    infos: list[bytes] = []
    dialog.on_info = lambda req: infos.append(req.body)
    info = sip_request(
        "INFO",
        peer=peer,
        ep_port=ep.port,
        ids=ids,
        to_tag=tag,
        cseq=2,
        branch="z9hG4bKi1",
        extra="Content-Type: application/dtmf-relay\r\n",
    ).replace(
        b"Content-Length: 0\r\n\r\n", b"Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n"
    )
    assert (await ask(peer, ep, info)).status == 200
    assert infos == [b"Signal=5\r\nDuration=160\r\n"]
    bye = sip_request(
        "BYE", peer=peer, ep_port=ep.port, ids=ids, to_tag=tag, cseq=3, branch="z9hG4bKb1"
    )
    assert (await ask(peer, ep, bye)).status == 200
    assert dialog.end_reason == "remote-bye"
    assert ep.dialogs == []
    peer.send(bye, ep.port)  # a retransmitted BYE gets the same 200 again
    assert (await peer.next()).message.status == 200  # type: ignore[union-attr]


async def test_uac_acks_each_retransmitted_2xx(ep: SipEndpoint, peer: RawPeer) -> None:
    dialling = asyncio.create_task(
        ep.invite(f"sip:callee@127.0.0.1:{peer.port}", from_uri="sip:us@127.0.0.1", sdp_offer=SDP)
    )
    invite = (await peer.next_request("INVITE")).message
    assert isinstance(invite, Request)
    ok = reply(invite, 200, "OK", to_tag="callee9").replace(
        b"Content-Length: 0",
        f"Contact: <sip:callee@127.0.0.1:{peer.port}>\r\nContent-Length: 0".encode(),
    )
    peer.send(ok, ep.port)
    dialog = await asyncio.wait_for(dialling, 5)
    first = await peer.next_request("ACK")
    ack = first.message
    assert isinstance(ack, Request)
    assert ack.top_via.branch != invite.top_via.branch  # a 2xx ACK is a new transaction
    assert ack.cseq.seq == invite.cseq.seq
    assert ack.uri == f"sip:callee@127.0.0.1:{peer.port}"  # the remote target (Contact)
    assert dialog.remote_tag == "callee9"
    peer.send(ok, ep.port)  # our ACK "was lost"
    again = await peer.next_request("ACK")
    assert again.raw == first.raw


async def test_stop_sends_nothing_and_ends_dialogs(peer: RawPeer) -> None:
    ep = SipEndpoint(host="127.0.0.1", port=0, t1=0.05)
    await ep.start()
    ids = CallIds.fresh()
    dialog, _ = await established(ep, peer, ids)
    await ep.stop()
    assert dialog.end_reason == "shutdown"
    await dialog.bye()  # nothing to do any more
    with pytest.raises(TimeoutError):
        await peer.next(0.3)


async def test_uas_sends_in_dialog_requests_through_the_record_route(
    ep: SipEndpoint, peer: RawPeer
) -> None:
    proxy = await RawPeer.open()
    try:
        app = Answer()
        ep.on_invite = app
        ids = CallIds.fresh()
        record_route = f"Record-Route: <sip:127.0.0.1:{proxy.port};lr>\r\n"
        peer.send(
            sip_request(
                "INVITE", peer=peer, ep_port=ep.port, ids=ids, body=SDP, extra=record_route
            ),
            ep.port,
        )
        ok = (await peer.next_response(200)).message
        assert ok.headers.get_all("Record-Route") == [f"<sip:127.0.0.1:{proxy.port};lr>"]
        ack = sip_request(
            "ACK", peer=peer, ep_port=ep.port, ids=ids, to_tag=ok.to.tag, branch="z9hG4bKa"
        )
        peer.send(ack, ep.port)
        dialog = await app.dialogs.get()
        await asyncio.wait_for(dialog.confirmed.wait(), 2)
        bye_task = asyncio.create_task(dialog.bye())
        bye = (await proxy.next_request("BYE")).message
        assert isinstance(bye, Request)
        assert bye.uri == f"sip:peer@127.0.0.1:{peer.port}"  # loose routing: R-URI = Contact
        assert bye.headers.get_all("Route") == [f"<sip:127.0.0.1:{proxy.port};lr>"]
        assert bye.to.tag == ids.from_tag
        assert bye.from_.tag == ok.to.tag
        proxy.send(reply(bye, 200, "OK"), ep.port)
        await asyncio.wait_for(bye_task, 2)
    finally:
        proxy.close()


async def test_uac_route_set_is_the_reversed_record_route(ep: SipEndpoint, peer: RawPeer) -> None:
    p1, p2 = await RawPeer.open(), await RawPeer.open()
    try:
        dialling = asyncio.create_task(
            ep.invite(
                f"sip:callee@127.0.0.1:{peer.port}", from_uri="sip:us@127.0.0.1", sdp_offer=SDP
            )
        )
        invite = (await peer.next_request("INVITE")).message
        assert isinstance(invite, Request)
        extra = (
            f"Record-Route: <sip:127.0.0.1:{p2.port};lr>, <sip:127.0.0.1:{p1.port};lr>\r\n"
            f"Contact: <sip:callee@127.0.0.1:{peer.port}>\r\n"
        )
        ok = reply(invite, 200, "OK", to_tag="t9").replace(
            b"Content-Length: 0", extra.encode() + b"Content-Length: 0"
        )
        peer.send(ok, ep.port)
        dialog = await asyncio.wait_for(dialling, 5)
        ack = (await p1.next_request("ACK")).message  # to the proxy nearest to us
        assert isinstance(ack, Request)
        assert ack.uri == f"sip:callee@127.0.0.1:{peer.port}"
        assert ack.headers.get_all("Route") == [
            f"<sip:127.0.0.1:{p1.port};lr>",
            f"<sip:127.0.0.1:{p2.port};lr>",
        ]
        assert dialog.peer.port == p1.port
    finally:
        p1.close()
        p2.close()


async def read_sip(reader: asyncio.StreamReader) -> Message:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return parse(head + await reader.readexactly(length), stream=True)


async def test_tcp_bye_reaches_the_contact_after_the_callers_connection_closed(
    ep: SipEndpoint,
) -> None:
    arrived: asyncio.Queue[Message] = asyncio.Queue()

    async def contact_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = await read_sip(reader)
        await arrived.put(msg)
        assert isinstance(msg, Request)
        writer.write(reply(msg, 200, "OK"))
        await writer.drain()

    listener = await asyncio.start_server(contact_side, "127.0.0.1", 0)
    listen_port = listener.sockets[0].getsockname()[1]
    app = Answer()
    ep.on_invite = app
    reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
    ids = CallIds.fresh()
    local_port = writer.get_extra_info("sockname")[1]
    invite = (
        f"INVITE sip:agent@127.0.0.1:{ep.port};transport=tcp SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{local_port};branch={ids.branch}\r\n"
        f"From: <sip:peer@127.0.0.1>;tag={ids.from_tag}\r\nTo: <sip:agent@127.0.0.1>\r\n"
        f"Call-ID: {ids.call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:peer@127.0.0.1:{listen_port};transport=tcp>\r\nContent-Length: 0\r\n\r\n"
    )
    writer.write(invite.encode())
    assert (await read_sip(reader)).status == 100  # type: ignore[union-attr]
    ok = await read_sip(reader)
    assert isinstance(ok, Response)
    assert ok.status == 200
    ack = (
        invite.replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(ids.branch, "z9hG4bKtcpack")
        .replace("To: <sip:agent@127.0.0.1>", f"To: <sip:agent@127.0.0.1>;tag={ok.to.tag}")
    )
    writer.write(ack.encode())
    dialog = await app.dialogs.get()
    await asyncio.wait_for(dialog.confirmed.wait(), 2)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)

    await asyncio.wait_for(dialog.bye(), 5)
    bye = await arrived.get()
    assert isinstance(bye, Request)
    assert bye.method == "BYE"
    assert bye.top_via.transport == "TCP"
    listener.close()


async def test_proxy_challenge_is_answered_through_the_outbound_proxy(
    ep: SipEndpoint, peer: RawPeer
) -> None:
    challenger = DigestChallenger("proxy.example", {"bob": "pw"})
    progress: list[int] = []
    dialling = asyncio.create_task(
        ep.invite(
            "sip:+15551230000@trunk.example.invalid",
            from_uri='"Flireo" <sip:+15550100@flireo.test>',
            sdp_offer=SDP,
            credentials=("bob", "pw"),
            proxy=("127.0.0.1", peer.port),  # no DNS lookup of the target's host
            on_progress=lambda status, _reason: progress.append(status),
        )
    )
    first = (await peer.next_request("INVITE")).message
    assert isinstance(first, Request)
    assert first.uri == "sip:+15551230000@trunk.example.invalid"
    assert first.from_.display_name == "Flireo"
    peer.send(reply(first, 100, "Trying"), ep.port)
    challenge = reply(first, 407, "Proxy Authentication Required", to_tag="px").replace(
        b"Content-Length: 0",
        f"Proxy-Authenticate: {challenger.challenge(time.time()).header()}\r\n".encode()
        + b"Content-Length: 0",
    )
    peer.send(challenge, ep.port)
    ack = (await peer.next_request("ACK")).message
    assert isinstance(ack, Request)
    assert ack.top_via.branch == first.top_via.branch
    second = (await peer.next_request("INVITE")).message
    assert isinstance(second, Request)
    assert second.cseq.seq == first.cseq.seq + 1
    assert second.call_id == first.call_id
    assert second.from_.tag == first.from_.tag
    assert second.top_via.branch != first.top_via.branch
    verdict = challenger.verify(
        second.headers.get("Proxy-Authorization") or "", method="INVITE", now=time.time()
    )
    assert verdict.ok, verdict.reason
    peer.send(reply(second, 480, "Temporarily Unavailable", to_tag="t2"), ep.port)
    with pytest.raises(DialFailed) as failed:
        await dialling
    assert (failed.value.kind, failed.value.status) == ("no-answer", 480)
    assert progress == [100]


async def test_refer_refused_or_followed_by_a_hang_up(ep: SipEndpoint, peer: RawPeer) -> None:
    ids = CallIds.fresh()
    dialog, tag = await established(ep, peer, ids)
    refusing = asyncio.create_task(dialog.refer("sip:+15550000@example.com", timeout_s=5))
    refer = (await peer.next_request("REFER")).message
    assert isinstance(refer, Request)
    assert refer.headers.get("Refer-To") == "<sip:+15550000@example.com>"
    assert refer.to.tag == ids.from_tag
    peer.send(reply(refer, 405, "Method Not Allowed"), ep.port)
    assert await refusing == ReferResult(False, 405, "REFER refused: 405 Method Not Allowed")

    accepted = asyncio.create_task(dialog.refer("sip:+15550000@example.com", timeout_s=5))
    refer = (await peer.next_request("REFER")).message
    assert isinstance(refer, Request)
    peer.send(reply(refer, 202, "Accepted"), ep.port)
    await asyncio.sleep(0.05)
    bye = sip_request(
        "BYE", peer=peer, ep_port=ep.port, ids=ids, to_tag=tag, cseq=2, branch="z9hG4bKbx"
    )
    peer.send(bye, ep.port)
    result = await accepted
    assert (result.ok, result.status) == (True, None)
    assert dialog.end_reason == "remote-bye"


async def test_refer_without_notify_times_out(ep: SipEndpoint, peer: RawPeer) -> None:
    dialog, _ = await established(ep, peer, CallIds.fresh())
    waiting = asyncio.create_task(dialog.refer("sip:x@example.com", timeout_s=0.5))
    refer = (await peer.next_request("REFER")).message
    assert isinstance(refer, Request)
    peer.send(reply(refer, 202, "Accepted"), ep.port)
    result = await waiting
    assert (result.ok, result.status) == (False, None)
    assert "not reported" in result.detail
    assert not dialog.ended.is_set()
