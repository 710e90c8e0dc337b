"""Property tests over the SIP parser: whatever the bytes, ``parse`` returns a
message or raises :class:`SipParseError`, and whatever it accepts serializes to
bytes it accepts again, identically. The same for ``frame_length``, SDP and
digest parsing with their own error types.

Inputs: random bytes; mutations of real messages (the RFC 4475 corpus and a
typical call's messages): byte flips, truncation, spliced-in separators,
NULs, non-UTF-8, weird digits, duplicated header lines, absurd
Content-Lengths; and messages generated from the grammar.

CI runs a fixed, derandomized budget (a few seconds); ``bench/sip_fuzz.py``
runs the same properties with random seeds and many more examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flireo.telephony.sip import sdp
from flireo.telephony.sip.digest import (
    Challenge,
    DigestChallenger,
    DigestError,
    Verdict,
    authorize,
)
from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import (
    CSeq,
    NameAddr,
    Via,
    parse_auth_params,
    split_commas,
)
from flireo.telephony.sip.message import (
    Message,
    Request,
    frame_length,
    parse,
    request,
    response_to,
)
from flireo.telephony.sip.uri import SipUri, parse_params

TORTURE = Path(__file__).parent / "torture"
MAX_SIZE = 65536

CI = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- seeds ---------------------------------------------------------------------

_SDP_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def _typical_messages() -> list[bytes]:
    invite = request(
        "INVITE",
        "sip:+31850835037@flireo.example.com",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport"),
            ("Max-Forwards", "70"),
            ("From", '"Caller" <sip:alice@example.com>;tag=a1'),
            ("To", "<sip:+31850835037@flireo.example.com>"),
            ("Call-ID", "c1@192.0.2.10"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:alice@192.0.2.10:5060>"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY"),
            ("User-Agent", "sipp"),
            ("Content-Type", "application/sdp"),
        ],
        _SDP_OFFER,
    )
    ok = response_to(
        invite,
        200,
        to_tag="f1",
        headers=[
            ("Contact", "<sip:flireo@198.51.100.1:5060>"),
            ("Content-Type", "application/sdp"),
        ],
        body=_SDP_OFFER,
    )
    unauthorized = response_to(
        invite,
        401,
        to_tag="f2",
        headers=[("WWW-Authenticate", 'Digest realm="r", nonce="1.abc", qop="auth"')],
    )
    bye = request(
        "BYE",
        "sip:alice@192.0.2.10:5060",
        [
            ("v", "SIP/2.0/TCP 198.51.100.1;branch=z9hG4bK-2"),
            ("f", "<sip:+31850835037@flireo.example.com>;tag=f1"),
            ("t", "<sip:alice@example.com>;tag=a1"),
            ("i", "c1@192.0.2.10"),
            ("CSeq", "2 BYE"),
            (
                "Authorization",
                'Digest username="u", realm="r", nonce="n", uri="sip:x", response="0"',
            ),
        ],
    )
    refer = request(
        "REFER",
        "sip:alice@192.0.2.10",
        [
            ("Via", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK-3"),
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:c@d>;tag=2"),
            ("Call-ID", "r1"),
            ("CSeq", "3 REFER"),
            ("Refer-To", "<sip:+15551234567@carrier.example.net?Replaces=x%3By>"),
        ],
    )
    return [m.serialize() for m in (invite, ok, unauthorized, bye, refer)]


SEEDS: list[bytes] = [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))] + _typical_messages()

# byte strings that break parsers: separators, escapes, odd digits, odd encodings
INTERESTING = [
    b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\r\n ", b"\t", b" ", b":", b";",
    b",", b"=", b"<", b">", b'"', b"\\", b"%", b"%00", b"?", b"@", b"/", b"[", b"]",
    b"\xb2", b"\xc2\xb2", b"\xd9\xa3", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf",
    b"-1", b"0", b"255", b"256", b"65536", b"2147483648", b"4294967301", b"9" * 12,
    b"9" * 5000, b"SIP/2.0", b"SIP/7.0", b"sip:", b"sips:", b"tel:", b"Via: ", b"l: ",
    b"Content-Length: ", b"CSeq: 1 ", b"\xe2\x80\xa8", b"\x85",
]  # fmt: skip


# numbers as peers (and attackers) write them: str.isdigit() accepts some of these
weird_number = st.one_of(
    st.integers(-10, 2**40).map(str),
    st.sampled_from(["²", "¹", "٣", "１", "0x10", "1e3", "", " 1", "9" * 12, "9" * 5000]),
)
# header text as the parser hands it over: non-UTF-8 bytes become lone surrogates
wire_text = st.text(alphabet=st.characters(blacklist_categories=[]), max_size=40)


# --- mutation strategies ---------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 7))
        pos = draw(st.integers(0, len(data)))
        if kind == 0:  # flip a byte
            if data:
                i = min(pos, len(data) - 1)
                data[i] ^= draw(st.integers(1, 255))
        elif kind == 1:  # truncate
            del data[pos:]
        elif kind == 2:  # splice in something nasty
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
        elif kind == 3:  # replace a run with something nasty
            data[pos : pos + draw(st.integers(1, 12))] = draw(st.sampled_from(INTERESTING))
        elif kind == 4:  # duplicate a header line, possibly many times
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                i = draw(st.integers(1, len(lines) - 1))
                lines[i:i] = [lines[i]] * draw(st.sampled_from([1, 2, 50]))
                data = bytearray(b"\r\n".join(lines))
        elif kind == 5:  # an absurd Content-Length
            value = draw(
                st.sampled_from([b"-1", b"99999999999", b"9" * 5000, b"\xb2", b"", b"1e3"])
            )
            data = bytearray(
                re.sub(
                    rb"(?im)^(content-length|l)[ \t]*:[^\r\n]*", b"Content-Length: " + value, data
                )
            )
        elif kind == 6:  # random bytes
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:  # delete a range
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


# --- grammar-based generation ------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
token = st.text(alphabet=_ALNUM + "-.!%*_+`'~", min_size=1, max_size=12)
hostname = st.builds(
    lambda labels: ".".join(labels),
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
        min_size=1,
        max_size=3,
    ),
).filter(lambda h: not h[0].isdigit() or h.replace(".", "").isdigit())
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
host = st.one_of(hostname, ipv4, st.just("[2001:db8::1]"))
port = st.one_of(st.none(), st.integers(1, 65535))
user = st.text(alphabet=_ALNUM + "-_.!~*'()&=+$,;?/%", min_size=1, max_size=16).filter(
    lambda u: "%" not in u or re.fullmatch(r"(?:[^%]|%[0-9A-Fa-f]{2})*", u) is not None
)
params = st.lists(st.tuples(token.map(str.lower), st.one_of(st.none(), token)), max_size=3).map(
    tuple
)


@st.composite
def sip_uri(draw: st.DrawFn) -> SipUri:
    return SipUri(
        host=draw(host).lower(),
        user=draw(st.one_of(st.none(), user)),
        port=draw(port),
        scheme=draw(st.sampled_from(["sip", "sips"])),
        params=draw(params),
    )


display = st.one_of(st.none(), st.text(alphabet=_ALNUM + " ,;:<>@\"\\'é", min_size=1, max_size=16))


@st.composite
def name_addr(draw: st.DrawFn) -> NameAddr:
    shown = draw(display)
    return NameAddr(draw(sip_uri()), shown.strip() or None if shown else None, draw(params))


@st.composite
def via(draw: st.DrawFn) -> Via:
    extra = draw(params)
    branch = "z9hG4bK" + draw(token)
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "WS"])),
        draw(host).lower(),
        draw(port),
        (("branch", branch), *((k, v) for k, v in extra if k != "branch")),
    )


header_value = st.text(
    alphabet=st.characters(
        blacklist_categories=["Cs", "Cc"], blacklist_characters="\r\n\x85\u2028\u2029"
    ),
    max_size=40,
).map(str.strip)
extension_header = st.tuples(token.filter(lambda n: n.lower() not in _SPECIAL_NAMES), header_value)
_SPECIAL_NAMES = {
    "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "content-length", "l",
    "max-forwards", "contact", "m", "route", "record-route", "allow", "supported", "k",
    "require", "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
    "allow-events", "u", "p-asserted-identity",
}  # fmt: skip


@st.composite
def valid_message(draw: st.DrawFn) -> Message:
    """A syntactically valid request or response (compact names sometimes)."""
    method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]), token))
    compact = draw(st.booleans())
    vias = draw(st.lists(via(), min_size=1, max_size=3))
    headers: list[tuple[str, str]] = [("v" if compact else "Via", str(v)) for v in vias]
    headers += [
        ("f" if compact else "From", str(draw(name_addr()).with_tag(draw(token)))),
        ("t" if compact else "To", str(draw(name_addr()))),
        ("i" if compact else "Call-ID", draw(token) + "@" + draw(hostname)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    for _ in range(draw(st.integers(0, 2))):
        headers.append(("m" if compact else "Contact", str(draw(name_addr()))))
    headers += draw(st.lists(extension_header, max_size=4))
    headers = draw(st.permutations(headers))
    body = draw(st.binary(max_size=200))
    req = request(method, str(draw(sip_uri())), headers, body)
    if draw(st.booleans()):
        return req
    return response_to(
        req,
        draw(st.integers(100, 699)),
        draw(st.one_of(st.none(), header_value)),
        to_tag=draw(token),
        body=body,
    )


# --- the checks (shared with bench/sip_fuzz.py) ------------------------------------


def _shape(msg: Message) -> tuple[object, ...]:
    start = (msg.method, msg.uri) if isinstance(msg, Request) else (msg.status, msg.reason)
    headers = [(n, v) for n, v in msg.headers if n != "Content-Length"]
    return (type(msg).__name__, start, headers, msg.body)


def check_parse(data: bytes) -> str:
    """``parse`` either refuses with SipParseError or accepts something that
    serializes to an identical message; returns "parsed" or "refused"."""
    outcome = "refused"
    for stream in (False, True):
        try:
            msg = parse(data, stream=stream)
        except SipParseError as exc:
            refusal: SipParseError = exc
            assert isinstance(refusal, ValueError)
            assert refusal.status in (400, 505)
            continue
        outcome = "parsed"
        # validated views never raise on an accepted message
        _ = (msg.from_, msg.to, msg.cseq, msg.vias, msg.top_via, msg.contact, msg.content_type)
        if isinstance(msg, Request) and msg.uri.lower().startswith(("sip:", "sips:")):
            SipUri.parse(msg.uri)
        wire = msg.serialize()
        again = parse(wire, stream=True)
        assert _shape(again) == _shape(msg)
        assert again.serialize() == wire
    return outcome


def check_frame(data: bytes) -> str:
    """``frame_length`` returns None, a length within the buffer, or raises SipParseError."""
    try:
        n = frame_length(data, MAX_SIZE)
    except SipParseError as exc:
        refusal: SipParseError = exc
        assert refusal.status in (400, 513)
        return "refused"
    if n is None:
        return "incomplete"
    assert 0 < n <= len(data)
    try:
        parse(data[:n], stream=True)
    except SipParseError:
        return "framed-refused"
    return "framed"


def check_sdp(body: bytes) -> str:
    try:
        offer = sdp.parse_audio(body)
    except SipParseError:
        return "refused"
    assert 0 <= offer.port <= 65535
    try:
        neg = sdp.negotiate(offer)
    except sdp.SdpNegotiationError:
        return "no-common-codec"
    assert neg.codec in ("PCMU", "PCMA")
    assert 0 < neg.remote_port <= 65535
    answer = sdp.build(
        host="198.51.100.1",
        port=40002,
        session_id=1,
        version=1,
        codecs=(neg.codec_pt,),
        dtmf_pt=neg.dtmf_pt,
        direction=neg.direction,
    )
    assert sdp.accept_answer((0, 8), sdp.parse_audio(answer)).codec_pt == neg.codec_pt
    return "negotiated"


CHALLENGER = DigestChallenger("flireo", {"alice": "s3cret", "bob": "pw"}, secret=b"k" * 32)


def check_digest(header: str) -> str:
    """Parsing a challenge raises only its own errors; verifying any header
    returns a verdict and never accepts it."""
    try:
        Challenge.parse(header)
        outcome = "challenge"
    except (SipParseError, DigestError):
        outcome = "refused"
    verdict = CHALLENGER.verify(header, method="INVITE", now=1000.0)
    assert isinstance(verdict, Verdict)
    assert not verdict.ok
    return outcome


# --- CI properties -------------------------------------------------------------------


@CI
@given(st.binary(max_size=1500))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    check_parse(data)
    check_frame(data)


@CI
@given(mutated())
def test_mutated_messages_are_parsed_or_refused(data: bytes) -> None:
    check_parse(data)
    check_frame(data)
    check_frame(b"\r\n\r\n" + data + data)


def test_every_seed_is_accepted_and_round_trips() -> None:
    refused = {"badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri",
               "lwsruri", "lwsstart", "trws", "escruri", "regbadct", "baddn", "badvers",
               "mismatch01", "mismatch02", "bigcode", "insuf", "multi01", "mcl01"}  # fmt: skip
    parsed = {p.stem for p in TORTURE.glob("*.dat") if check_parse(p.read_bytes()) == "parsed"}
    assert parsed == {p.stem for p in TORTURE.glob("*.dat")} - refused
    for data in _typical_messages():
        assert check_parse(data) == "parsed"


@CI
@given(valid_message())
def test_generated_valid_messages_round_trip(msg: Message) -> None:
    wire = msg.serialize()
    got = parse(wire, stream=True)
    assert _shape(got) == _shape(msg)
    assert parse(wire, stream=False).body == msg.body
    assert got.serialize() == wire
    # framing: after keepalives, followed by another message, byte by byte
    stream = b"\r\n\r\n" + wire + wire
    assert frame_length(stream, MAX_SIZE) == 4 + len(wire)
    for cut in range(4, 4 + len(wire), max(1, len(wire) // 17)):
        assert frame_length(stream[:cut], MAX_SIZE) is None


@CI
@given(sip_uri())
def test_sip_uris_round_trip(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri


@CI
@given(name_addr())
def test_name_addrs_round_trip(addr: NameAddr) -> None:
    assert NameAddr.parse(str(addr)) == addr


@CI
@given(via())
def test_vias_round_trip(v: Via) -> None:
    assert Via.parse(str(v)) == v


header_like = st.one_of(
    st.text(max_size=120),
    wire_text,
    st.builds(lambda n, m: f"{n} {m}", weird_number, token),  # CSeq
    st.builds(lambda h, n: f"sip:u@{h}:{n}", host, weird_number),  # URI port
    st.builds(lambda h, n: f"SIP/2.0/UDP {h}:{n};branch=z9hG4bK1", host, weird_number),
    st.builds(lambda a, b: f"<{a}>{b}", wire_text, wire_text),
)


@CI
@given(header_like)
def test_header_value_parsers_raise_only_sip_parse_errors(text: str) -> None:
    for parser in (
        NameAddr.parse,
        Via.parse,
        CSeq.parse,
        SipUri.parse,
        parse_params,
        split_commas,
        parse_auth_params,
    ):
        try:
            parser(text)
        except SipParseError:
            pass


_SDP_SEEDS = [_SDP_OFFER] + [
    p.read_bytes().partition(b"\r\n\r\n")[2] for p in sorted(TORTURE.glob("*.dat"))
]


@st.composite
def mutated_sdp(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SDP_SEEDS)))
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[pos : pos + draw(st.integers(0, 8))] = draw(st.sampled_from(INTERESTING))
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@st.composite
def generated_sdp(draw: st.DrawFn) -> bytes:
    """An SDP whose numeric fields hold whatever peers might send."""
    n = weird_number
    codec = draw(st.sampled_from(["PCMU", "PCMA", "telephone-event", "opus"]))
    direction = draw(st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive", "x"]))
    lines = [
        "v=0",
        f"o=- {draw(n)} {draw(n)} IN IP4 192.0.2.1",
        f"c=IN IP4 {draw(ipv4)}",
        f"m=audio {draw(n)}{draw(st.sampled_from(['', '/2']))} RTP/AVP {draw(n)} {draw(n)} 0",
        f"a=rtpmap:{draw(n)} {codec}/{draw(n)}",
        f"a=fmtp:{draw(n)} 0-16",
        f"a=ptime:{draw(n)}",
        f"a={direction}",
    ]
    if draw(st.booleans()):
        lines = draw(st.permutations(lines))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


sdp_body = st.one_of(mutated_sdp(), generated_sdp(), st.binary(max_size=400))


@CI
@given(sdp_body)
def test_sdp_is_negotiated_or_refused_with_its_own_errors(body: bytes) -> None:
    check_sdp(body)


_AUTH_PARAMS = ["realm", "nonce", "qop", "algorithm", "opaque", "stale", "username", "uri"]
_AUTH_PARAMS += ["response", "nc", "cnonce"]
digest_header = st.one_of(
    st.text(max_size=200),
    # our own nonce shape, "<stamp>.<signature>", with a forged signature
    st.builds(
        lambda stamp, sig, resp: (
            f'Digest username="alice", realm="flireo", '
            f'nonce="{stamp}.{sig}", uri="sip:x", response="{resp}"'
        ),
        st.sampled_from(["1000.000", "0", "x"]),
        wire_text,
        wire_text,
    ),
    st.builds(
        lambda parts: "Digest " + ", ".join(parts),
        st.lists(
            st.builds(
                lambda n, v: f'{n}="{v}"' if v[:1] != "!" else f"{n}={v[1:]}",
                st.sampled_from(_AUTH_PARAMS),
                st.text(max_size=30),
            ),
            max_size=8,
        ),
    ),
)


@CI
@given(digest_header)
def test_digest_headers_never_crash_and_never_authenticate(header: str) -> None:
    check_digest(header)


secretish = st.text(alphabet=st.characters(blacklist_categories=["Cc"]), min_size=1, max_size=20)


@CI
@given(secretish, secretish, secretish, st.floats(0, 1e9))
def test_digest_round_trip_accepts_exactly_the_right_password(
    username: str, password: str, wrong: str, now: float
) -> None:
    challenger = DigestChallenger("flireo", {username: password})
    challenge = Challenge.parse(challenger.challenge(now).header())
    good = authorize(
        challenge, method="INVITE", uri="sip:x@y", username=username, password=password
    )
    assert challenger.verify(good, method="INVITE", now=now + 1) == Verdict(True)
    bad = authorize(
        challenge, method="INVITE", uri="sip:x@y", username=username, password=password + wrong
    )
    assert not challenger.verify(bad, method="INVITE", now=now + 1).ok


# --- what fuzzing found: each of these raised something other than the module's error


def _msg_with(header: bytes) -> bytes:
    return (
        b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 1 OPTIONS\r\n" + header + b"\r\n\r\n"
    )


@pytest.mark.parametrize("value", [b"9" * 5000, b"\xb2", b"\xb9"])
def test_found_absurd_content_lengths_are_refused(value: bytes) -> None:
    # int() of 5000 digits raises ValueError; latin-1 0xB2 is '²', which isdigit() accepts
    data = _msg_with(b"Content-Length: " + value)
    assert check_frame(data) == "refused"
    assert check_parse(data) == "refused"


@pytest.mark.parametrize(
    ("text", "parser"),
    [
        ("² INVITE", CSeq.parse),
        ("9" * 5000 + " INVITE", CSeq.parse),
        ("sip:u@h:²", SipUri.parse),
        ("sip:u@h:٣", SipUri.parse),
        ("SIP/2.0/UDP h:¹;branch=z9hG4bK1", Via.parse),
    ],
)
def test_found_odd_digits_in_headers_are_refused(
    text: str, parser: Callable[[str], object]
) -> None:
    with pytest.raises(SipParseError):
        parser(text)


@pytest.mark.parametrize(
    ("port", "pt", "attr", "outcome"),
    [
        ("²", "0", "", "refused"),
        ("99999999999", "0", "", "refused"),
        ("4000", "²", "", "no-common-codec"),
        ("4000", "9" * 5000, "", "no-common-codec"),
        ("4000", "0", "a=rtpmap:² PCMU/8000\r\n", "negotiated"),
        ("4000", "0", "a=rtpmap:0 PCMU/²\r\n", "negotiated"),
        ("4000", "0", "a=ptime:²\r\n", "negotiated"),
    ],
)
def test_found_sdp_numbers_are_refused_or_ignored(
    port: str, pt: str, attr: str, outcome: str
) -> None:
    body = f"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio {port} RTP/AVP {pt}\r\n{attr}"
    assert check_sdp(body.encode()) == outcome


@pytest.mark.parametrize(
    "nonce",
    [
        "1000.000.é",  # hmac.compare_digest raised TypeError on non-ASCII str
        "1000.000." + chr(0xDCFF),  # a non-UTF-8 byte, as the parser decodes it
        chr(0xDCFF) + ".x",
        "1000.000." + chr(0xDD00),  # a surrogate no wire byte decodes to
        chr(0xD800) + ".x",
    ],
)
def test_found_digest_nonces_are_unknown_not_crashes(nonce: str) -> None:
    header = f'Digest username="alice", realm="flireo", nonce="{nonce}", response="é"'
    assert CHALLENGER.verify(header, method="INVITE", now=1000.0).reason == "unknown nonce"


def test_found_digest_of_non_utf8_username_hashes_its_wire_bytes() -> None:
    challenge = Challenge(realm="r", nonce="n")
    header = authorize(challenge, method="INVITE", uri="sip:a", username="\udcff", password="p")
    assert parse_auth_params(header)[1]["username"] == "\udcff"
    # a surrogate that no wire byte decodes to is hashed too, not raised on
    other = authorize(challenge, method="INVITE", uri="sip:a", username="\udd00", password="p")
    assert parse_auth_params(other)[1]["response"] != parse_auth_params(header)[1]["response"]
