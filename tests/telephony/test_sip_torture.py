"""RFC 4475 torture messages through the SIP parser.

§3.1.1 (valid syntax) must parse with the values the RFC describes; §3.1.2
(invalid syntax) must raise :class:`SipParseError`, or, where the RFC allows an
element to be liberal, parse as documented in ``LENIENT``; §3.2–3.4 are valid
syntax whose torture lies above the parser: they parse, except where the
parser itself enforces the rule (``REJECTED_ABOVE_SYNTAX``). Nothing may raise
anything else, on either framing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flireo.telephony.sip import message
from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.message import Request, Response, frame_length, parse
from flireo.telephony.sip.uri import SipUri
from tests.telephony.torture.rfc4475 import build

TORTURE = Path(__file__).parent / "torture"

VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq",
    "dblreq", "semiuri", "transports", "mpart01", "unreason", "noreason",
]  # fmt: skip
INVALID = [
    "badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri",
    "lwsruri", "lwsstart", "trws", "escruri", "regbadct", "baddn", "badvers",
    "mismatch01", "mismatch02", "bigcode",
]  # fmt: skip
# §3.1.2 messages the RFC lets a liberal element accept, and that we accept:
LENIENT = {
    "baddate": "the Date header is never interpreted (§3.1.2.12: may be ignored)",
    "badaspec": "spaces inside <...> are trimmed (§3.1.2.14: may be ignored)",
}
# §3.2-3.4: syntactically fine
ABOVE_SYNTAX = [
    "badbranch", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01",
    "bcast", "zeromf", "cparam01", "cparam02", "regescrt", "sdp01", "inv2543",
]  # fmt: skip
# ... but these break a rule the parser enforces, so they get the 400 the RFC asks for
REJECTED_ABOVE_SYNTAX = ["insuf", "multi01", "mcl01"]


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def test_the_corpus_is_complete_and_matches_its_source() -> None:
    names = {p.stem for p in TORTURE.glob("*.dat")}
    listed = {*VALID, *INVALID, *LENIENT, *ABOVE_SYNTAX, *REJECTED_ABOVE_SYNTAX}
    assert names == listed
    assert len(names) == 49  # every message of RFC 4475 §3
    assert build() == {n: load(n) for n in names}


def _parse_both(data: bytes) -> list[message.Message | SipParseError]:
    """Parse as a datagram and as a stream; any other exception fails the test."""
    out: list[message.Message | SipParseError] = []
    for stream in (False, True):
        try:
            msg = parse(data, stream=stream)
        except SipParseError as exc:
            out.append(exc)
            continue
        # the typed views must not blow up either
        _ = (msg.from_, msg.to, msg.cseq, msg.vias, msg.contact, msg.content_type)
        out.append(msg)
    return out


@pytest.mark.parametrize("name", VALID)
def test_valid_messages_parse(name: str) -> None:
    udp, tcp = _parse_both(load(name))
    assert not isinstance(udp, SipParseError), udp
    assert not isinstance(tcp, SipParseError), tcp
    # what we parsed serializes to a message that parses back the same
    again = parse(udp.serialize(), stream=True)
    assert _without_length(again) == _without_length(udp)
    assert again.body == udp.body
    assert again.headers.get_all("Content-Length") == [str(len(udp.body))]


def _without_length(msg: message.Message) -> list[tuple[str, str]]:
    return [(n, v) for n, v in msg.headers if n != "Content-Length"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_messages_are_refused(name: str) -> None:
    for outcome in _parse_both(load(name)):
        assert isinstance(outcome, SipParseError), f"{name} parsed: {outcome!r}"
        assert outcome.status in (400, 505)


@pytest.mark.parametrize("name", list(LENIENT))
def test_lenient_invalid_messages_parse_as_documented(name: str) -> None:
    for outcome in _parse_both(load(name)):
        assert isinstance(outcome, message.Request), outcome


@pytest.mark.parametrize("name", ABOVE_SYNTAX)
def test_application_layer_tortures_parse(name: str) -> None:
    udp, tcp = _parse_both(load(name))
    assert isinstance(udp, message.Request | message.Response), udp
    if name == "inv2543":  # no Content-Length: fine in a datagram only
        assert isinstance(tcp, SipParseError)
    else:
        assert not isinstance(tcp, SipParseError), tcp


@pytest.mark.parametrize("name", REJECTED_ABOVE_SYNTAX)
def test_missing_or_doubled_single_headers_get_400(name: str) -> None:
    for outcome in _parse_both(load(name)):
        assert isinstance(outcome, SipParseError)
        assert outcome.status == 400


# --- the values the RFC spells out -------------------------------------------


def test_wsinv_folding_escapes_compact_forms_and_lws() -> None:
    msg = parse(load("wsinv"))
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert SipUri.parse(msg.uri).params == (("unknownparam", None),)
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.headers.get("Max-Forwards") == "0068"
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.contact is not None
    assert msg.contact.display_name == 'Quoted string ""'
    assert msg.contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(msg.headers.get_all("Route")) == 1
    assert len(msg.body) == 150


def test_intmeth_unusual_characters_everywhere() -> None:
    msg = parse(load("intmeth"))
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = SipUri.parse(msg.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.to.sip_uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.headers.get("Max-Forwards") == "255"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_escapes_are_kept_raw_and_decoded_on_demand() -> None:
    esc01 = parse(load("esc01"))
    assert isinstance(esc01, Request)
    assert SipUri.parse(esc01.uri).user_decoded == "sips:user@example.com"
    assert esc01.to.sip_uri.user_decoded == "user"
    assert esc01.from_.sip_uri.user_decoded == "I have spaces"
    assert esc01.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact i:
    assert esc01.content_type == "application/sdp"  # compact C:
    escnull = parse(load("escnull"))
    assert [c.split("@")[0] for c in escnull.headers.get_all("Contact")] == [
        "<sip:%00",
        "<sip:%00%00",
    ]
    assert escnull.to.sip_uri.user_decoded == "null-\x00-null"


def test_esc02_percent_is_not_an_escape_in_methods_and_header_names() -> None:
    msg = parse(load("esc02"))
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R"  # an unknown method, not REGISTER
    assert msg.to.display_name == "%Z%45"
    # C%6Fntact is an unknown header, not a Contact
    assert msg.headers.get_all("Contact") == [
        "<sip:alias1@host1.example.com>",
        "<sip:alias3@host3.example.com>",
    ]


def test_lwsdisp_and_longreq() -> None:
    lws = parse(load("lwsdisp"))
    assert lws.from_.display_name == "caller"
    long = parse(load("longreq"))
    assert len(long.vias) == 34
    assert long.vias[-1].param("received") == "192.0.2.5"
    assert long.vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert long.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    assert long.to.sip_uri.port == 6000
    assert long.from_.tag == "12" + "982" * 50 + "424"
    assert long.call_id == "longreq.one" + "really" * 20 + "longcallid"


def test_dblreq_only_the_first_message_counts() -> None:
    data = load("dblreq")
    msg = parse(data)
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.body == b""
    # a stream framer cuts after the first message too
    first = frame_length(data, 65536)
    assert first is not None
    assert data[:first].endswith(b"Content-Length: 0\r\n\r\n")


def test_semiuri_transports_and_multipart() -> None:
    semi = parse(load("semiuri"))
    assert isinstance(semi, Request)
    assert SipUri.parse(semi.uri).user == "user;par=u%40example.net"
    assert SipUri.parse(semi.uri).params == ()
    assert len(semi.headers.get_all("Accept")) == 6
    transports = parse(load("transports"))
    assert [v.transport for v in transports.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mpart = parse(load("mpart01"))
    assert mpart.content_type == "multipart/mixed"
    assert len(mpart.body) == 553
    assert b"\x00" in mpart.body
    assert mpart.body.endswith(b"--7a9cbec02ceef655--\r\n")


def test_reason_phrases() -> None:
    unreason = parse(load("unreason"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 но сто девяносто девять")
    noreason = parse(load("noreason"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_refusals_carry_the_right_status() -> None:
    with pytest.raises(SipParseError) as version:
        parse(load("badvers"))
    assert version.value.status == 505
    with pytest.raises(SipParseError, match="Content-Length"):
        parse(load("clerr"))
    with pytest.raises(SipParseError, match="Content-Length"):
        parse(load("ncl"))
    with pytest.raises(SipParseError, match="CSeq"):
        parse(load("scalar02"))
    with pytest.raises(SipParseError, match="CSeq method"):
        parse(load("mismatch01"))
    with pytest.raises(SipParseError, match="headers in the Request-URI"):
        parse(load("escruri"))


def test_application_layer_values() -> None:
    unksm2 = parse(load("unksm2"))
    assert str(unksm2.to.uri) == "isbn:2983792873"
    assert unksm2.contact is not None
    assert unksm2.contact.uri == "name:John_Smith"
    cparam01 = parse(load("cparam01"))
    assert cparam01.contact is not None
    assert cparam01.contact.params == (("unknownparam", None),)  # a header param
    cparam02 = parse(load("cparam02"))
    assert cparam02.contact is not None
    assert cparam02.contact.sip_uri.params == (("unknownparam", None),)  # a URI param
    regescrt = parse(load("regescrt"))
    assert regescrt.contact is not None
    assert regescrt.contact.sip_uri.headers == "Route=%3Csip:sip.example.com%3E"
    zeromf = parse(load("zeromf"))
    assert zeromf.headers.get("Max-Forwards") == "0"
    inv2543 = parse(load("inv2543"))
    assert inv2543.top_via.branch is None
    assert inv2543.to.params == (("user", "phone"),)
    assert inv2543.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")


def test_raw_head_of_every_refused_message_is_usable() -> None:
    """A refused message still yields what is needed to answer 400 (or nothing)."""
    for name in [*INVALID, *REJECTED_ABOVE_SYNTAX]:
        head = message.raw_head(load(name))
        if name not in ("bigcode", "scalarlg"):  # responses: nothing to answer
            assert head.method is not None, name
            assert head.headers.get("Via") is not None or name == "insuf", name
