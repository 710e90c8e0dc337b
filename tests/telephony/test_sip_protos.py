"""The PROTOS c07-sip style INVITE cases (tests/telephony/protos.py) against a
listening endpoint that sets calls up as the gateway does (SDP offer → SRTP/codec
negotiation → RTP socket → answer, or 488): after every case the endpoint still
answers OPTIONS, and no case gets a 500 (an exception on our side) or a hang.
``bench/sip_fuzz.py --protos`` runs the same cases against ``flireo serve``."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import cast

import pytest

from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.sip import sdp
from flireo.telephony.sip.ua import IncomingCall, SipEndpoint
from tests.telephony.protos import cases

_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.I | re.M)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.statuses: dict[bytes, list[int]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status, call_id = _STATUS.match(data), _CALL_ID.search(data)
        if status and call_id:
            self.statuses.setdefault(call_id.group(1), []).append(int(status.group(1)))


def options(n: int, port: int, source_port: int) -> tuple[bytes, bytes]:
    call_id = f"ping-{n}@127.0.0.1".encode()
    return call_id, (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bK-ping-{n};rport\r\n"
        f"From: <sip:ping@127.0.0.1>;tag=ping-{n}\r\n"
        f"To: <sip:ping@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id.decode()}\r\n"
        f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def set_up(call: IncomingCall) -> None:
    """The gateway's media set-up for an INVITE, then hang up at once."""
    try:
        negotiated = sdp.negotiate(sdp.parse_audio(call.remote_sdp), (sdp.PCMU, sdp.PCMA))
    except ValueError:
        await call.reject(488, "Not Acceptable Here")
        return
    rtp = RtpSession(
        codec_pt=negotiated.codec_pt,
        dtmf_pt=negotiated.dtmf_pt,
        local_host="127.0.0.1",
        srtp=negotiated.srtp.context() if negotiated.srtp else None,
    )
    try:
        rtp.set_remote(negotiated.remote_host, negotiated.remote_port)
        port = await rtp.bind()
        answer = sdp.build(
            host="127.0.0.1",
            port=port,
            session_id=1,
            version=1,
            codecs=(negotiated.codec_pt,),
            dtmf_pt=negotiated.dtmf_pt,
            proto=negotiated.proto,
            crypto=(negotiated.crypto,) if negotiated.crypto else (),
        )
        dialog = await call.answer(answer)
        dialog.shutdown()  # the fuzzer never ACKs: do not wait for it
    finally:
        rtp.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(host="127.0.0.1", port=0, tcp=False, t1=0.005, user_agent="Flireo-test")
    ep.on_invite = set_up
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


async def test_protos_invite_cases_never_break_the_listener(endpoint: SipEndpoint) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    try:
        source_port = transport.get_extra_info("sockname")[1]
        target = ("127.0.0.1", endpoint.port)
        kinds: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        all_cases = list(
            cases(
                user="+31850835037", host="127.0.0.1", port=endpoint.port, source_port=source_port
            )
        )
        assert len(all_cases) > 1000
        for n, (kind, name, datagram) in enumerate(all_cases):
            kinds[kind] += 1
            transport.sendto(datagram, target)
            ping_id, ping = options(n, endpoint.port, source_port)
            transport.sendto(ping, target)
            for _ in range(1000):
                if 200 in client.statuses.get(ping_id, []):
                    break
                await asyncio.sleep(0.002)
            else:
                pytest.fail(f"no OPTIONS answer after case {kind} {name}")
        await asyncio.sleep(0.3)  # the last responses
        for call_id, got in client.statuses.items():
            if not call_id.startswith(b"ping-"):
                statuses.update(set(got))
        assert 500 not in statuses, statuses
        assert {100, 200, 400, 488} <= set(statuses), statuses  # each path was reached
        assert set(kinds) == {
            "overflow",
            "format",
            "integer",
            "sip-uri",
            "missing",
            "duplicate",
            "sdp",
            "bytes",
            "crlf",
        }
    finally:
        transport.close()


@pytest.mark.parametrize("via_port", ["rport=65536", "rport=99999999999"])
async def test_a_via_port_out_of_range_is_answered_at_the_source(
    endpoint: SipEndpoint, via_port: str
) -> None:
    """Regression: a Via with ``rport=65536`` made sendto raise OverflowError, and
    asyncio then closed the UDP socket: the listener went deaf for good."""
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    try:
        source_port = transport.get_extra_info("sockname")[1]
        _, ping = options(1, endpoint.port, source_port)
        forged = ping.replace(b";rport\r\n", f";{via_port}\r\n".encode())
        transport.sendto(forged, ("127.0.0.1", endpoint.port))
        call_id, ping = options(2, endpoint.port, source_port)
        transport.sendto(ping, ("127.0.0.1", endpoint.port))
        for _ in range(500):
            if client.statuses.get(b"ping-1@127.0.0.1") and client.statuses.get(call_id):
                break
            await asyncio.sleep(0.002)
        assert client.statuses.get(b"ping-1@127.0.0.1") == [200]  # at the source address
        assert client.statuses.get(call_id) == [200]  # and the listener still listens
    finally:
        transport.close()


def test_an_sdp_connection_address_that_is_not_an_ip_is_488() -> None:
    """Regression: ``c=IN IP4 not-an-address`` passed negotiation and raised
    ValueError when the RTP session was pointed at it (a 500 and a traceback)."""
    offer = sdp.parse_audio(b"v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 4000 RTP/AVP 0\r\n")
    with pytest.raises(sdp.SdpNegotiationError, match="not an IP"):
        sdp.negotiate(offer)


@pytest.mark.parametrize("user", [b"\xff\xfe", b"a%00b".replace(b"%00", b"\x00"), b"1" * 65])
def test_a_dialed_or_calling_user_the_store_cannot_take_is_no_number(user: bytes) -> None:
    """Regression (found by bench/sip_fuzz.py against flireo serve): a Request-URI
    user with bytes that are not UTF-8 reached the number lookup as surrogates,
    and SQLite raised UnicodeEncodeError (a 500); NUL would do the same on
    PostgreSQL. Such a user is no number of ours (404), and no caller number."""
    from flireo.services.sip_gateway import caller_number, dialed_user
    from flireo.telephony.sip.message import Request, parse

    raw = (
        b"INVITE sip:" + user + b"@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
        b"From: <sip:" + user + b"@127.0.0.1>;tag=1\r\nTo: <sip:" + user + b"@127.0.0.1>\r\n"
        b"Call-ID: 1@h\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse(raw)
    assert isinstance(request, Request)
    assert dialed_user(request) == ""
    assert caller_number(request) is None
