"""Pure pieces of the SIP layer: routing, Via stamping, response routing,
failure kinds, sipfrag parsing, transaction keys."""

from __future__ import annotations

from flireo.telephony.sip.dialog import sipfrag_status
from flireo.telephony.sip.message import Request, parse, response_to
from flireo.telephony.sip.outgoing import failure_kind
from flireo.telephony.sip.routing import NextHop, dialog_peer, next_hop, route_request
from flireo.telephony.sip.transaction import invite_key_for_cancel, server_key
from flireo.telephony.sip.transport import Flow, response_flow, stamp_received
from flireo.telephony.sip.uri import SipUri


def invite(via: str, *, method: str = "INVITE") -> Request:
    msg = parse(
        (
            f"{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 10.9.9.9\r\n"
            "From: <sip:a@example.com>;tag=f1\r\nTo: <sip:bob@example.com>\r\n"
            f"Call-ID: c1\r\nCSeq: 7 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, Request)
    return msg


def test_loose_route_set_keeps_the_remote_target_as_request_uri() -> None:
    routes = ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    uri, route = route_request("sip:bob@10.0.0.2:5070", routes)
    assert uri == "sip:bob@10.0.0.2:5070"
    assert route == routes


def test_strict_router_becomes_the_request_uri() -> None:
    uri, route = route_request("sip:bob@10.0.0.2", ["<sip:strict.example.com>", "<sip:p2;lr>"])
    assert uri == "sip:strict.example.com"
    assert route == ["<sip:p2;lr>", "<sip:bob@10.0.0.2>"]


def test_next_hop_reads_port_and_transport() -> None:
    assert next_hop(SipUri.parse("sip:x@1.2.3.4")) == NextHop("1.2.3.4", 5060, "UDP")
    hop = next_hop(SipUri.parse("sip:x@trunk.example.com:5080;transport=TCP"))
    assert hop == NextHop("trunk.example.com", 5080, "TCP")


def test_dialog_peer_follows_the_first_route_on_udp_and_the_connection_on_tcp() -> None:
    udp = Flow("UDP", "192.0.2.1", 5060)
    peer = dialog_peer(udp, "sip:bob@10.0.0.2:5070", ["<sip:192.0.2.7:5062;lr>"])
    assert peer == Flow("UDP", "192.0.2.7", 5062)
    assert dialog_peer(udp, "sip:bob@10.0.0.2:5070", []) == Flow("UDP", "10.0.0.2", 5070)
    assert dialog_peer(udp, "sip:bob@pbx.example.com", []) == udp  # no blocking DNS
    tcp = Flow("TCP", "192.0.2.1", 40001)
    assert dialog_peer(tcp, "sip:bob@10.0.0.2:5070;transport=tcp", []) == tcp


def test_received_and_rport_are_stamped_on_the_top_via() -> None:
    req = invite("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport")
    stamp_received(req, Flow("UDP", "203.0.113.9", 40000))
    vias = req.headers.get_all("Via")
    assert vias[0] == "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.9;rport=40000"
    assert vias[1] == "SIP/2.0/UDP 10.9.9.9"
    assert [name for name, _ in req.headers][:2] == ["Via", "Via"]  # order kept
    res = response_to(req, 200)
    assert response_flow(res, Flow("UDP", "203.0.113.9", 40000), False) == Flow(
        "UDP", "203.0.113.9", 40000
    )


def test_responses_go_to_received_and_the_via_port_without_rport() -> None:
    req = invite("SIP/2.0/UDP pbx.example.com:5070;branch=z9hG4bK1")
    stamp_received(req, Flow("UDP", "203.0.113.9", 40000))
    assert req.top_via.param("received") == "203.0.113.9"
    res = response_to(req, 486)
    assert response_flow(res, Flow("UDP", "203.0.113.9", 40000), False) == Flow(
        "UDP", "203.0.113.9", 5070
    )
    # on TCP the open connection wins
    tcp = Flow("TCP", "203.0.113.9", 40000)
    assert response_flow(res, tcp, True) == tcp


def test_via_from_the_source_address_is_left_alone() -> None:
    req = invite("SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK1")
    before = req.headers.get_all("Via")
    stamp_received(req, Flow("UDP", "203.0.113.9", 5060))
    assert req.headers.get_all("Via") == before


def test_cancel_and_ack_find_the_invite_transaction() -> None:
    via = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKabc"
    inv = invite(via)
    cancel = invite(via, method="CANCEL")
    ack = invite(via, method="ACK")
    assert invite_key_for_cancel(cancel) == server_key(inv)
    assert server_key(ack) == server_key(inv)
    assert server_key(cancel) != server_key(inv)
    other_host = invite("SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bKabc")
    assert server_key(other_host) != server_key(inv)


def test_rfc2543_requests_match_without_a_branch() -> None:
    old = invite("SIP/2.0/UDP 10.0.0.5:5060")
    again = invite("SIP/2.0/UDP 10.0.0.5:5060")
    assert server_key(old) == server_key(again)


def test_failure_kinds() -> None:
    assert failure_kind(486) == failure_kind(600) == "busy"
    assert failure_kind(480) == failure_kind(408) == "no-answer"
    assert failure_kind(603) == "declined"
    assert failure_kind(407) == failure_kind(401) == "auth-failed"
    assert failure_kind(403) == "failed"
    assert failure_kind(403, authenticated=True) == "auth-failed"
    assert failure_kind(404) == failure_kind(503) == "failed"


def test_sipfrag_status_line() -> None:
    assert sipfrag_status(b"SIP/2.0 200 OK\r\n") == (200, "SIP/2.0 200 OK")
    assert sipfrag_status(b"SIP/2.0 100 Trying") == (100, "SIP/2.0 100 Trying")
    assert sipfrag_status(b"") == (None, "")
    assert sipfrag_status(b"garbage") == (None, "garbage")
