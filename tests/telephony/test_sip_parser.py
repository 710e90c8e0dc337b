"""SIP message, header, URI, SDP and digest parsing: the behaviours the call
path relies on, one at a time."""

from __future__ import annotations

import pytest

from flireo.telephony.sip import sdp
from flireo.telephony.sip.digest import (
    Challenge,
    DigestChallenger,
    DigestError,
    authorize,
    digest_response,
)
from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import CSeq, NameAddr, Via, parse_auth_params, split_commas
from flireo.telephony.sip.message import (
    Headers,
    Request,
    Response,
    canonical_name,
    frame_length,
    parse,
    raw_head,
    request,
    response_to,
)
from flireo.telephony.sip.uri import SipUri, parse_params

CRLF = "\r\n"


def wire(*lines: str, body: str = "") -> bytes:
    return (CRLF.join(lines) + CRLF + CRLF + body).encode()


BASE = [
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9",
    "From: Alice <sip:alice@example.com>;tag=9fxced76sl",
    "To: <sip:+31850835037@flireo.example.com>",
    "Call-ID: 3848276298220188511@192.0.2.10",
]


def invite(*extra: str, body: str = "", length: bool = True) -> bytes:
    lines = ["INVITE sip:+31850835037@flireo.example.com SIP/2.0", *BASE, "CSeq: 1 INVITE", *extra]
    if length:
        lines.append(f"Content-Length: {len(body.encode())}")
    return wire(*lines, body=body)


# --- messages ------------------------------------------------------------------------


def test_request_parses_into_typed_views() -> None:
    msg = parse(invite("Max-Forwards: 70", "Contact: <sip:alice@192.0.2.10:5060>"))
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("INVITE", "sip:+31850835037@flireo.example.com")
    assert msg.call_id == "3848276298220188511@192.0.2.10"
    assert (msg.cseq.seq, msg.cseq.method) == (1, "INVITE")
    assert msg.from_.display_name == "Alice"
    assert msg.from_.tag == "9fxced76sl"
    assert msg.to.tag is None
    assert msg.to.user == "+31850835037"
    assert msg.top_via.branch == "z9hG4bK-74bf9"
    assert msg.top_via.sent_by == ("192.0.2.10", 5060)
    assert msg.contact is not None
    assert msg.contact.sip_uri.port == 5060
    assert msg.body == b""


def test_response_parses_status_and_reason() -> None:
    msg = parse(wire("SIP/2.0 486 Busy Here", *BASE, "CSeq: 1 INVITE", "Content-Length: 0"))
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (486, "Busy Here")
    no_reason = parse(wire("SIP/2.0 180", *BASE, "CSeq: 1 INVITE", "Content-Length: 0"))
    assert isinstance(no_reason, Response)
    assert (no_reason.status, no_reason.reason) == (180, "")


def test_parse_and_serialize_round_trip_byte_for_byte() -> None:
    body = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\n"
    original = invite("Max-Forwards: 70", "Content-Type: application/sdp", body=body)
    msg = parse(original)
    assert msg.serialize() == original
    again = parse(msg.serialize(), stream=True)
    assert list(again.headers) == list(msg.headers)
    assert again.body == body.encode()


def test_serialize_always_writes_the_true_content_length() -> None:
    msg = request("OPTIONS", "sip:a@b", [("Content-Length", "999")], b"hello")
    data = msg.serialize()
    assert data.count(b"Content-Length") == 1
    assert data.endswith(b"Content-Length: 5\r\n\r\nhello")


def test_keepalive_crlfs_before_a_message_are_skipped() -> None:
    assert parse(b"\r\n\r\n" + invite()).call_id == "3848276298220188511@192.0.2.10"


@pytest.mark.parametrize(
    ("compact", "full"),
    [
        ("i", "Call-ID"), ("f", "From"), ("t", "To"), ("v", "Via"), ("m", "Contact"),
        ("l", "Content-Length"), ("c", "Content-Type"), ("k", "Supported"), ("s", "Subject"),
        ("e", "Content-Encoding"), ("o", "Event"), ("r", "Refer-To"), ("b", "Referred-By"),
        ("u", "Allow-Events"), ("x", "Session-Expires"), ("a", "Accept-Contact"),
    ],
)  # fmt: skip
def test_compact_header_names_become_full_names(compact: str, full: str) -> None:
    assert canonical_name(compact) == full
    assert canonical_name(compact.upper()) == full
    assert canonical_name(full.lower()) == full


def test_compact_forms_in_a_message() -> None:
    data = wire(
        "BYE sip:alice@192.0.2.10 SIP/2.0",
        "v: SIP/2.0/TCP 198.51.100.1;branch=z9hG4bK-2",
        "f: <sip:bot@flireo.example.com>;tag=f1",
        "t: <sip:alice@example.com>;tag=a1",
        "i: c1@192.0.2.10",
        "CSeq: 2 BYE",
        "k: timer, replaces",
        "l: 0",
    )
    msg = parse(data, stream=True)
    assert msg.call_id == "c1@192.0.2.10"
    assert msg.from_.tag == "f1"
    assert msg.to.tag == "a1"
    assert msg.top_via.transport == "TCP"
    assert msg.headers.get_all("Supported") == ["timer", "replaces"]
    assert b"Call-ID: c1@192.0.2.10\r\n" in msg.serialize()


def test_header_names_are_case_insensitive_and_keep_order() -> None:
    msg = parse(invite("X-Custom: one", "x-custom: two", "X-CUSTOM: three"))
    assert msg.headers.get_all("x-Custom") == ["one", "two", "three"]
    assert "X-Custom" in msg.headers
    assert "X-Missing" not in msg.headers


def test_list_headers_split_on_top_level_commas_only() -> None:
    msg = parse(
        invite(
            "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-b, SIP/2.0/TCP 10.0.0.1:5070",
            'Contact: "Doe, John" <sip:john@example.com;x=a,b>, <sip:j2@example.com>',
            "Allow: INVITE, ACK,BYE ,CANCEL",
            "Subject: hello, world",
        )
    )
    assert [v.host for v in msg.vias] == ["192.0.2.10", "proxy.example.com", "10.0.0.1"]
    contacts = msg.headers.get_all("Contact")
    assert contacts == ['"Doe, John" <sip:john@example.com;x=a,b>', "<sip:j2@example.com>"]
    assert msg.contact is not None
    assert msg.contact.display_name == "Doe, John"
    assert msg.headers.get_all("Allow") == ["INVITE", "ACK", "BYE", "CANCEL"]
    assert msg.headers.get_all("Subject") == ["hello, world"]  # not a list header


def test_folded_lines_are_unfolded() -> None:
    msg = parse(
        wire(
            "OPTIONS sip:a@example.com SIP/2.0",
            "Via: SIP/2.0/UDP",
            "  192.0.2.1;branch=z9hG4bK1",
            "From: <sip:b@example.com>",
            "\t;tag=5",
            "To: <sip:a@example.com>",
            "Call-ID: fold",
            "CSeq: 7",
            "   OPTIONS",
            "Subject: first",
            " second",
            "Content-Length: 0",
        )
    )
    assert msg.top_via.host == "192.0.2.1"
    assert msg.from_.tag == "5"
    assert msg.cseq == CSeq(7, "OPTIONS")
    assert msg.headers.get("Subject") == "first second"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "end of headers"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: x", "end of headers"),
        (b" continuation\r\n\r\n", "request line|continuation"),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/2.0 extra\r\n", 1), "request line"),
        (invite().replace(b"sip:+31850835037@flireo.example.com SIP", b"<sip:a@b> SIP", 1), "URI"),
        (invite().replace(b"INVITE sip", b"INV(TE sip", 1), "method"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "CSeq method"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"), "CSeq"),
        (invite().replace(b"Call-ID: 3848276298220188511@192.0.2.10\r\n", b""), "Call-ID"),
        (invite().replace(b"Via: ", b"Xia: "), "Via"),
        (invite("Max-Forwards: 256"), "Max-Forwards"),
        (invite("From: <sip:x@y>;tag=2"), "more than one From"),
        (invite("Bad Header: x"), "header line"),
        (invite("Contact: <sip:unterminated"), "unterminated"),
        (wire("SIP/2.0 99 Too Low", *BASE, "CSeq: 1 INVITE"), "status code"),
        (wire("SIP/2.0 1000 Too High", *BASE, "CSeq: 1 INVITE"), "status code"),
        (wire("HTTP/1.1 200 OK", *BASE, "CSeq: 1 INVITE"), "method"),
    ],
)
def test_malformed_messages_raise_sip_parse_error(data: bytes, match: str) -> None:
    with pytest.raises(SipParseError, match=match) as exc:
        parse(data)
    assert isinstance(exc.value, ValueError)
    assert exc.value.status == 400


def test_other_sip_versions_get_505() -> None:
    with pytest.raises(SipParseError) as exc:
        parse(invite().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert exc.value.status == 505


def test_raw_head_keeps_enough_of_a_broken_message_to_answer_400() -> None:
    broken = invite("Max-Forwards: lots")
    with pytest.raises(SipParseError):
        parse(broken)
    head = raw_head(broken)
    assert head.method == "INVITE"
    assert head.headers.get("Call-ID") == "3848276298220188511@192.0.2.10"
    assert head.headers.get("Via") is not None
    assert raw_head(b"\xff\xfe garbage").method is None


# --- Content-Length: datagram vs stream -------------------------------------------------


def test_datagram_content_length_shorter_than_the_data_cuts_the_body() -> None:
    msg = parse(invite(body="v=0\r\n") + b"trailing junk")
    assert msg.body == b"v=0\r\n"


def test_datagram_without_content_length_takes_the_rest() -> None:
    msg = parse(invite(length=False, body="v=0\r\n"))
    assert msg.body == b"v=0\r\n"


def test_datagram_content_length_larger_than_the_data_is_refused() -> None:
    data = invite(body="v=0\r\n").replace(b"Content-Length: 5", b"Content-Length: 500")
    with pytest.raises(SipParseError, match="larger than the body"):
        parse(data)


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1.5", b"99999999999", b"\xb2", b""])
def test_bad_content_length_values_are_refused(value: bytes) -> None:
    data = invite().replace(b"Content-Length: 0", b"Content-Length: " + value)
    with pytest.raises(SipParseError):
        parse(data)
    with pytest.raises(SipParseError):
        frame_length(data, 65536)


def test_repeated_content_lengths_are_refused() -> None:
    with pytest.raises(SipParseError, match="conflicting"):
        parse(invite("Content-Length: 3", body=""))
    with pytest.raises(SipParseError, match="more than one Content-Length"):
        parse(invite("l: 0"))


def test_stream_requires_content_length() -> None:
    data = invite(length=False)
    assert parse(data).body == b""  # fine in a datagram
    with pytest.raises(SipParseError, match="required"):
        parse(data, stream=True)
    with pytest.raises(SipParseError, match="required"):
        frame_length(data, 65536)


def test_frame_length_waits_for_the_whole_message_then_cuts_it() -> None:
    first = invite("Content-Type: application/sdp", body="v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
    second = invite()
    stream = b"\r\n\r\n" + first + second
    assert frame_length(stream, 65536) == 4 + len(first)
    for cut in range(4 + len(first)):
        assert frame_length(stream[:cut], 65536) is None
    # the framed message parses, and the rest is the next message
    n = frame_length(stream, 65536)
    assert n is not None
    assert parse(stream[:n], stream=True).body.startswith(b"v=0")
    assert frame_length(stream[n:], 65536) == len(second)


def test_frame_length_bounds_message_size() -> None:
    with pytest.raises(SipParseError) as headers_too_large:
        frame_length(b"INVITE sip:a@b SIP/2.0\r\nX: " + b"a" * 5000, 4096)
    assert headers_too_large.value.status == 513
    huge = invite().replace(b"Content-Length: 0", b"Content-Length: 99999999")
    with pytest.raises(SipParseError) as body_too_large:
        frame_length(huge, 65536)
    assert body_too_large.value.status == 513


# --- headers ---------------------------------------------------------------------------


TAG1 = (("tag", "1"),)


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"Alice Liddell" <sip:a@example.com>;tag=1', "Alice Liddell", "sip:a@example.com", TAG1),
        ('"Say \\"hi\\"" <sip:a@b>', 'Say "hi"', "sip:a@b", ()),
        ('""<sip:a@b>', None, "sip:a@b", ()),
        ("Bob   Smith <sip:bob@example.com>", "Bob Smith", "sip:bob@example.com", ()),
        ("<sip:b@example.com;transport=tcp>;expires=1", None, "sip:b@example.com;transport=tcp",
         (("expires", "1"),)),
        ("sip:carol@example.com;tag=abc", None, "sip:carol@example.com", (("tag", "abc"),)),
        ("sip:carol@example.com", None, "sip:carol@example.com", ()),
        ("<tel:+15551234567>", None, "tel:+15551234567", ()),
        ('<sip:a@b>;x="quo;ted";tag=1', None, "sip:a@b", (("x", '"quo;ted"'), *TAG1)),
    ],
)  # fmt: skip
def test_name_addr_forms(
    text: str, display: str | None, uri: str, params: tuple[object, ...]
) -> None:
    addr = NameAddr.parse(text)
    assert addr.display_name == display
    assert str(addr.uri) == uri
    assert addr.params == params
    assert NameAddr.parse(str(addr)) == addr


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<sip:a@b",
        "<sip:a@b> junk",
        "Bad, Name <sip:a@b>",
        "sip:a@b?subject=x",  # headers need <>
        "sip:a b@c",
        "<>",
        "<sip:a@b:99999>",
        '"unterminated <sip:a@b>',
    ],
)
def test_bad_name_addrs_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_name_addr_helpers() -> None:
    addr = NameAddr.parse("<sip:%2B1555@example.com>")
    assert addr.user == "+1555"
    assert addr.with_tag("t1").tag == "t1"
    assert addr.with_tag("t1").with_tag("t2").params == (("tag", "t2"),)
    assert NameAddr.parse("<tel:+15551234567;phone-context=x>").user == "+15551234567"
    with pytest.raises(SipParseError):
        _ = NameAddr.parse("<tel:+1>").sip_uri


def test_sip_uri_parts_params_and_headers() -> None:
    uri = SipUri.parse(
        "SIPS:alice:secret@[2001:DB8::1]:5061;transport=TLS;lr?subject=hi&priority=urgent"
    )
    assert uri.scheme == "sips"
    assert (uri.user, uri.password) == ("alice", "secret")
    assert (uri.host, uri.port) == ("[2001:db8::1]", 5061)
    assert uri.params == (("transport", "TLS"), ("lr", None))
    assert uri.param("lr") == ""
    assert uri.param("maddr") is None
    assert uri.headers == "subject=hi&priority=urgent"
    assert uri.host_port == "[2001:db8::1]:5061"
    assert (
        str(uri)
        == "sips:alice:secret@[2001:db8::1]:5061;transport=TLS;lr?subject=hi&priority=urgent"
    )
    assert SipUri.parse("sip:%75se%72@h").user_decoded == "user"
    assert SipUri.parse("sip:h").user is None
    assert SipUri.parse("sip:u@h").with_param("transport", "tcp").param("transport") == "tcp"


@pytest.mark.parametrize(
    "text",
    [
        "http://example.com",
        "sip:",
        "sip:u@",
        "sip:u@h:70000",
        "sip:u@h:x",
        "sip:<u>@h",
        "sip:u@[::1",
    ],
)
def test_bad_sip_uris_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        SipUri.parse(text)


def test_uri_params_parse() -> None:
    assert parse_params(";a=1;b; C = x ") == (("a", "1"), ("b", None), ("c", "x"))
    with pytest.raises(SipParseError):
        parse_params(";a b=1")


def test_via_with_received_rport_and_branch() -> None:
    via = Via.parse(
        "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;received=203.0.113.5;rport=40000"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5062)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.param("received") == "203.0.113.5"
    assert via.param("rport") == "40000"
    asked = Via.parse("SIP/2.0/UDP 192.0.2.10;rport;branch=z9hG4bK1")
    assert asked.param("rport") == ""  # present without a value: the client asks for it
    filled = asked.with_param("received", "203.0.113.5").with_param("rport", "40000")
    assert str(filled) == "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1;received=203.0.113.5;rport=40000"
    assert Via.parse(str(filled)) == filled
    assert Via.parse("SIP/2.0/tls host.example.com").sent_by == ("host.example.com", 5061)
    assert Via.parse("SIP / 2.0 / tcp  [::1] : 5070 ; branch = z9hG4bK2").sent_by == ("[::1]", 5070)


@pytest.mark.parametrize(
    "text",
    ["SIP/2.0/UDP", "SIP/3.0/UDP h", "HTTP/2.0/UDP h", "SIP/2.0/UDP h:99999", "SIP/2.0 h", ""],
)
def test_bad_vias_are_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("314159 INVITE") == CSeq(314159, "INVITE")
    assert CSeq.parse(" 0009\t ACK ") == CSeq(9, "ACK")
    assert str(CSeq(2, "BYE")) == "2 BYE"
    for bad in ("", "1", "INVITE", "1 INVITE extra", "-1 INVITE", "2147483648 INVITE", "1 IN(VITE"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


def test_split_commas_respects_quotes_and_angle_brackets() -> None:
    assert split_commas('a, "b, c", <d,e>, f') == ["a", '"b, c"', "<d,e>", "f"]
    assert split_commas(" ,, ") == []
    with pytest.raises(SipParseError):
        split_commas('"open, quote')


def test_headers_container() -> None:
    h = Headers([("v", "SIP/2.0/UDP a"), ("X-A", "1")])
    h.add("x-a", "2")
    assert list(h) == [("Via", "SIP/2.0/UDP a"), ("X-A", "1"), ("X-A", "2")]
    h.set("X-A", "3")
    assert h.get_all("X-A") == ["3"]
    copy = h.copy()
    copy.remove("Via")
    assert h.get("Via") == "SIP/2.0/UDP a"
    assert copy.get("Via") is None


# --- response_to ------------------------------------------------------------------------


def _inbound_invite() -> Request:
    msg = parse(
        invite(
            "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p1",
            "Record-Route: <sip:proxy.example.com;lr>",
            "Timestamp: 54.7",
            "Contact: <sip:alice@192.0.2.10>",
        )
    )
    assert isinstance(msg, Request)
    return msg


def test_response_to_copies_via_from_to_call_id_cseq() -> None:
    req = _inbound_invite()
    resp = response_to(req, 180, to_tag="srv1")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.headers.get("From") == req.headers.get("From")
    assert resp.to.tag == "srv1"
    assert resp.headers.get("Call-ID") == req.headers.get("Call-ID")
    assert resp.headers.get("CSeq") == "1 INVITE"
    assert resp.headers.get_all("Record-Route") == ["<sip:proxy.example.com;lr>"]
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert resp.headers.get("Contact") is None
    again = parse(resp.serialize())
    assert isinstance(again, Response)
    assert again.to.tag == "srv1"


def test_response_to_100_trying_has_no_to_tag_but_echoes_timestamp() -> None:
    trying = response_to(_inbound_invite(), 100, to_tag="srv1")
    assert trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54.7"
    assert trying.headers.get("Record-Route") is None


def test_response_to_keeps_an_existing_to_tag_and_adds_extra_headers() -> None:
    req = parse(
        invite().replace(b"To: <sip:+31850835037@flireo.example.com>", b"To: <sip:x@y>;tag=old")
    )
    assert isinstance(req, Request)
    resp = response_to(
        req, 200, to_tag="new", headers=[("Contact", "<sip:bot@h>")], body=b"v=0\r\n"
    )
    assert resp.to.tag == "old"
    assert resp.headers.get("Contact") == "<sip:bot@h>"
    assert resp.serialize().endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")
    err = response_to(req, 488)
    assert err.reason == "Not Acceptable Here"
    assert err.headers.get("Record-Route") is None
    assert response_to(req, 499).reason == "Unknown"


# --- SDP -------------------------------------------------------------------------------

OFFER = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def test_sdp_offer_parses() -> None:
    media = sdp.parse_audio(OFFER)
    assert (media.host, media.port) == ("192.0.2.10", 49170)
    assert media.payload_types == (0, 8, 101)
    assert media.codec_name(0) == "PCMU"
    assert media.codec_name(101) == "TELEPHONE-EVENT"
    assert media.telephone_event_pt == 101
    assert media.fmtp == {101: "0-16"}
    assert (media.ptime, media.direction) == (20, "sendrecv")


def test_sdp_negotiation_takes_the_offerers_first_supported_codec() -> None:
    neg = sdp.negotiate(sdp.parse_audio(OFFER))
    assert (neg.codec, neg.codec_pt, neg.dtmf_pt) == ("PCMU", 0, 101)
    assert (neg.remote_host, neg.remote_port, neg.direction) == ("192.0.2.10", 49170, "sendrecv")
    pcma_first = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 8 0 101")
    assert sdp.negotiate(sdp.parse_audio(pcma_first)).codec == "PCMA"
    assert sdp.negotiate(sdp.parse_audio(OFFER), preferred=(sdp.PCMA,)).codec == "PCMA"


def test_sdp_static_payload_types_need_no_rtpmap_and_media_c_line_wins() -> None:
    body = (
        b"v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 8\r\n"
        b"c=IN IP4 192.0.2.99\r\na=sendonly\r\n"
    )
    neg = sdp.negotiate(sdp.parse_audio(body))
    assert (neg.codec, neg.dtmf_pt, neg.remote_host) == ("PCMA", None, "192.0.2.99")
    assert neg.direction == "recvonly"


@pytest.mark.parametrize(
    "body",
    [
        OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18 101"),  # G.729 only
        OFFER.replace(b"m=audio 49170", b"m=audio 0"),  # stream disabled
        OFFER.replace(
            b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000",
            b"a=rtpmap:0 PCMU/16000\r\na=rtpmap:8 PCMA/16000",
        ),
    ],
)
def test_sdp_without_a_usable_codec_cannot_be_negotiated(body: bytes) -> None:
    with pytest.raises(sdp.SdpNegotiationError):
        sdp.negotiate(sdp.parse_audio(body))


@pytest.mark.parametrize(
    "body",
    [
        b"v=0\r\nm=video 4000 RTP/AVP 31\r\n",  # no audio
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n",  # no connection address
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        b"v=0\r\nc=IN\r\nm=audio 4000 RTP/AVP 0\r\n",
        b"\xff\xfe",
    ],
)
def test_bad_sdp_is_refused(body: bytes) -> None:
    with pytest.raises(SipParseError):
        sdp.parse_audio(body)


def test_sdp_build_round_trips_through_parse_and_accept_answer() -> None:
    offer = sdp.build(
        host="198.51.100.1", port=40000, session_id=7, version=1, codecs=(0, 8), dtmf_pt=101
    )
    assert offer.endswith(b"\r\n")
    media = sdp.parse_audio(offer)
    assert media.payload_types == (0, 8, 101)
    assert media.rtpmap == {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
    answer_body = sdp.build(
        host="192.0.2.10", port=30000, session_id=1, version=1, codecs=(8,), dtmf_pt=96
    )
    agreed = sdp.accept_answer((0, 8), sdp.parse_audio(answer_body))
    assert (agreed.codec, agreed.dtmf_pt, agreed.remote_port) == ("PCMA", 96, 30000)
    v6 = sdp.build(
        host="2001:db8::1", port=4000, session_id=1, version=1, codecs=(0,), dtmf_pt=None
    )
    assert b"c=IN IP6 2001:db8::1\r\n" in v6
    assert b"telephone-event" not in v6


# --- digest ----------------------------------------------------------------------------


def test_digest_response_matches_rfc_2617_with_qop_auth() -> None:
    # RFC 2617 §3.5
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_digest_response_matches_rfc_2069_without_qop() -> None:
    # RFC 2069 §2.4 (as corrected by its errata): the form RFC 3261 §22.4 keeps for
    # challenges without qop
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="CircleOfLife",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop=None,
            nc="",
            cnonce="",
        )
        == "1949323746fe6a43ef61f9606e7febea"
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_digest_response_matches_rfc_7616(algorithm: str, expected: str) -> None:
    # RFC 7616 §3.9.1
    assert (
        digest_response(
            algorithm=algorithm,
            username="Mufasa",
            realm="http-auth@example.org",
            password="Circle of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop="auth",
            nc="00000001",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        == expected
    )


def test_authorize_answers_a_trunk_challenge() -> None:
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ("auth", "auth-int")
    header = authorize(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle Of Life", cnonce="0a4f113b",
    )  # fmt: skip
    scheme, p = parse_auth_params(header)
    assert scheme == "Digest"
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert (p["qop"], p["nc"], p["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert p["username"] == "Mufasa"
    assert p["uri"] == "/dir/index.html"


def test_authorize_without_qop_and_unsupported_challenges() -> None:
    plain = authorize(
        Challenge(realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"),
        method="GET", uri="/dir/index.html", username="Mufasa", password="CircleOfLife",
    )  # fmt: skip
    _, p = parse_auth_params(plain)
    assert p["response"] == "1949323746fe6a43ef61f9606e7febea"
    assert "qop" not in p
    assert "cnonce" not in p
    with pytest.raises(DigestError):
        authorize(
            Challenge("r", "n", qop=("auth-int",)),
            method="INVITE",
            uri="sip:x",
            username="u",
            password="p",
        )
    with pytest.raises(DigestError):
        authorize(
            Challenge("r", "n", algorithm="SHA-512-256"),
            method="INVITE",
            uri="sip:x",
            username="u",
            password="p",
        )
    with pytest.raises(DigestError):
        Challenge.parse('Basic realm="x"')
    with pytest.raises(SipParseError):
        Challenge.parse('Digest realm="x"')


def test_challenge_header_round_trip() -> None:
    ch = Challenge(realm="flireo", nonce="n1", qop=("auth",), opaque="o", stale=True)
    assert Challenge.parse(ch.header()) == ch


def _answer(
    challenger: DigestChallenger, now: float, *, password: str = "s3cret", method: str = "INVITE"
) -> str:
    challenge = Challenge.parse(challenger.challenge(now).header())
    return authorize(
        challenge, method=method, uri="sip:bot@flireo", username="alice", password=password
    )


def test_digest_challenger_accepts_the_right_password_only() -> None:
    challenger = DigestChallenger("flireo", {"alice": "s3cret"}, nonce_ttl_s=300)
    challenge = challenger.challenge(1000.0)
    assert challenge.qop == ("auth",)
    assert challenge.realm == "flireo"
    assert challenger.verify(_answer(challenger, 1000.0), method="INVITE", now=1010.0).ok
    wrong = challenger.verify(
        _answer(challenger, 1000.0, password="guess"), method="INVITE", now=1010.0
    )
    assert (wrong.ok, wrong.stale, wrong.reason) == (False, False, "wrong password")
    other_method = challenger.verify(
        _answer(challenger, 1000.0, method="BYE"), method="INVITE", now=1010.0
    )
    assert not other_method.ok


def test_digest_challenger_marks_expired_nonces_stale() -> None:
    challenger = DigestChallenger("flireo", {"alice": "s3cret"}, nonce_ttl_s=300)
    answer = _answer(challenger, 1000.0)
    assert challenger.verify(answer, method="INVITE", now=1299.0).ok
    late = challenger.verify(answer, method="INVITE", now=1301.0)
    assert (late.ok, late.stale) == (False, True)
    # stale only tells a client with the right password to retry; a wrong one is just wrong
    wrong_and_late = challenger.verify(
        _answer(challenger, 1000.0, password="x"), method="INVITE", now=1301.0
    )
    assert (wrong_and_late.ok, wrong_and_late.stale) == (False, False)
    assert challenger.challenge(1301.0, stale=True).header().endswith("stale=TRUE")


def test_digest_challenger_refuses_forged_foreign_and_malformed_answers() -> None:
    challenger = DigestChallenger("flireo", {"alice": "s3cret"}, secret=b"k" * 32)
    other = DigestChallenger("flireo", {"alice": "s3cret"}, secret=b"j" * 32)
    assert (
        challenger.verify(_answer(other, 1000.0), method="INVITE", now=1000.0).reason
        == "unknown nonce"
    )
    answer = _answer(challenger, 1000.0)
    forged = answer.replace('nonce="1000.000.', 'nonce="9000.000.')
    assert challenger.verify(forged, method="INVITE", now=9000.0).reason == "unknown nonce"
    realm = answer.replace('realm="flireo"', 'realm="elsewhere"')
    assert challenger.verify(realm, method="INVITE", now=1000.0).reason == "unknown user"
    nobody = answer.replace('username="alice"', 'username="mallory"')
    assert challenger.verify(nobody, method="INVITE", now=1000.0).reason == "unknown user"
    assert challenger.verify("Basic realm=x", method="INVITE", now=1000.0).reason == "not digest"
    assert not challenger.verify("Basic YWxpY2U6czNjcmV0", method="INVITE", now=1000.0).ok
    assert not challenger.verify('Digest nonce="unterminated', method="INVITE", now=1000.0).ok
    assert not challenger.verify("", method="INVITE", now=1000.0).ok
