"""INVITE test cases in the mutation classes of the PROTOS c07-sip suite (University
of Oulu; no Debian or PyPI package ships its cases, so they are generated here).

Each case is one whole datagram: a well-formed INVITE with SDP in which exactly
one element is broken, in the classes PROTOS used:

- ``overflow``: each header value (and the Request-URI user, the method, the
  SDP fields) replaced by 128 B .. 60 kB of one character, of ``%``, of ``\\xff``;
- ``format``: C format strings (``%s%s%s``, ``%n``, ``%x``...) in each of them;
- ``integer``: CSeq, Content-Length, Max-Forwards, Expires, the SDP port and
  payload types set to signed/unsigned 8/16/32/64-bit edges, negatives,
  floats, numbers with hundreds of digits;
- ``sip-uri``: malformed Request-URIs (no scheme, no host, bad ports, broken
  IPv6 brackets, escapes, parameters without names...);
- ``missing`` / ``duplicate``: each mandatory header left out, or given twice
  with different values;
- ``sdp``: broken bodies (no m= line, bad c=, unknown protos, RTP/SAVP with
  garbage ``a=crypto``, hundreds of media lines, a body shorter or longer than
  Content-Length);
- ``bytes``: NUL, other C0 controls, bytes ≥ 0x80 and invalid UTF-8 in each
  header, the request line and the body;
- ``crlf``: CR/LF injected into header values (header smuggling), bare LF or
  bare CR line ends, folded continuation lines, a second message after the body.

:func:`cases` returns ``(class, name, datagram)`` tuples, the same on every call.
"""

from __future__ import annotations

from collections.abc import Iterator

HEADERS = (
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Type",
    "Subject",
    "Expires",
    "Allow",
    "Supported",
    "Accept",
    "Route",
    "Authorization",
)
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Content-Length")
OVERFLOW_SIZES = (128, 1_024, 8_192, 60_000)
OVERFLOW_CHARS = ("a", "%", "\udcff", "<", "@", ";", "0")  # \udcff: the raw byte 0xff
FORMATS = ("%s%s%s%s%s", "%n%n%n%n", "%x%x%x%x", "%d" * 16, "%.1024d", "%99999999s", "%@", "%p%p")
INTEGERS = (
    "-1",
    "0",
    "127",
    "128",
    "255",
    "256",
    "32767",
    "32768",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "9" * 400,
    "-" + "9" * 400,
    "1.5",
    "1e9",
    "0x10",
    "+1",
    " 1 2",
    "",
    "one",
)
BAD_URIS = (
    "sip:",
    "sip:@",
    "sip:user@",
    "sip:@127.0.0.1",
    "user@127.0.0.1",
    "127.0.0.1",
    "sips:",
    "tel:",
    "tel:+",
    "sip:user@127.0.0.1:",
    "sip:user@127.0.0.1:0",
    "sip:user@127.0.0.1:65536",
    "sip:user@127.0.0.1:-1",
    "sip:user@127.0.0.1:99999999999999999999",
    "sip:user@[::1",
    "sip:user@::1]",
    "sip:user@[]",
    "sip:user@@127.0.0.1",
    "sip:user:pass:more@127.0.0.1",
    "sip:%00@127.0.0.1",
    "sip:%zz@127.0.0.1",
    "sip:user@127.0.0.1;=",
    "sip:user@127.0.0.1;;;;",
    "sip:user@127.0.0.1;transport=",
    "sip:user@127.0.0.1;lr=" + "x" * 5000,
    "sip:user@127.0.0.1?",
    "sip:user@127.0.0.1?&&==",
    "sip:user@127.0.0.1 extra",
    "sip:user@" + "a." * 2000 + "com",
    "sip:" + "u" * 60_000 + "@127.0.0.1",
    "sip:user@256.256.256.256",
    "sip:user@127.0.0.1.",
    "sip:user@-host-",
    "SIP:USER@127.0.0.1",
    "sip:user@127.0.0.1:5060:5060",
    "<sip:user@127.0.0.1>",
    "sip:+" + "1" * 300 + "@127.0.0.1",
)
BAD_SDP = (
    "",
    "v=0\r\n",
    "garbage",
    "\x00" * 64,
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",  # no c=
    "v=0\r\nc=IN IP4\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 not-an-address\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP6 [::1\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 99999 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio -1 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000/2 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 999 -1 x 128\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n",  # no crypto
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 5000 + "\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n"
    "a=crypto:99999999999999999999 AES_CM_128_HMAC_SHA1_80 inline:"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n"
    + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^99|1:999\r\n" * 200,
    "v=0\r\nc=IN IP4 127.0.0.1\r\n" + "m=audio 4000 RTP/AVP 0\r\n" * 500,
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n" + "a=rtpmap:0 PCMU/8000\r\n" * 1000,
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/" + "9" * 300 + "\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:" + "9" * 300 + "\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=" + "x" * 60_000 + "\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n",  # no audio
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n\xff\xfe\x00bad utf-8\r\n",
    "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 0\n",  # bare LF
    "v=0\rc=IN IP4 127.0.0.1\rm=audio 4000 RTP/AVP 0\r",  # bare CR
)


def _sdp(host: str = "127.0.0.1", port: str = "40000") -> str:
    return (
        "v=0\r\n"
        f"o=protos 1 1 IN IP4 {host}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=sendrecv\r\n"
    )


def invite(
    n: int,
    *,
    user: str,
    host: str,
    port: int,
    source_port: int,
    override: dict[str, str | None] | None = None,
    extra: list[tuple[str, str]] | None = None,
    request_line: str | None = None,
    body: str | bytes | None = None,
    content_length: str | None = None,
    line_end: str = "\r\n",
) -> bytes:
    """The base INVITE (``n`` makes Call-ID, tag and branch unique), with
    ``override`` replacing header values (None: leave the header out)."""
    headers: dict[str, str | None] = {
        "Via": f"SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bK-protos-{n};rport",
        "From": f'"PROTOS" <sip:protos@127.0.0.1:{source_port}>;tag=protos-{n}',
        "To": f"<sip:{user}@{host}:{port}>",
        "Call-ID": f"protos-{n}@127.0.0.1",
        "CSeq": f"{n % 100000 + 1} INVITE",
        "Contact": f"<sip:protos@127.0.0.1:{source_port}>",
        "Max-Forwards": "70",
        "Content-Type": "application/sdp",
        "Subject": "PROTOS c07-sip style case",
        "Expires": "120",
        "Allow": "INVITE, ACK, BYE, CANCEL, OPTIONS",
        "Supported": "timer",
        "Accept": "application/sdp",
        "Route": None,
        "Authorization": None,
        "User-Agent": "Flireo-protos",
    }
    headers.update(override or {})
    payload = body if body is not None else _sdp()
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    start = request_line or f"INVITE sip:{user}@{host}:{port} SIP/2.0"
    lines = [start]
    lines += [f"{name}: {value}" for name, value in headers.items() if value is not None]
    lines += [f"{name}: {value}" for name, value in extra or []]
    if "Content-Length" not in (override or {}):  # an override says it, or leaves it out
        length = content_length if content_length is not None else str(len(data))
        lines.append(f"Content-Length: {length}")
    head = line_end.join(lines) + line_end + line_end
    return head.encode("utf-8", "surrogateescape") + data


def cases(*, user: str, host: str, port: int, source_port: int) -> Iterator[tuple[str, str, bytes]]:
    """Every case: (mutation class, name, datagram)."""
    n = 0

    def make(**kwargs: object) -> bytes:
        nonlocal n
        n += 1
        return invite(n, user=user, host=host, port=port, source_port=source_port, **kwargs)  # type: ignore[arg-type]

    base_ruri = f"sip:{user}@{host}:{port}"
    # --- overflow and format strings: each header, the R-URI user, the method
    for size in OVERFLOW_SIZES:
        for char in OVERFLOW_CHARS:
            blob = char * size
            for name in HEADERS:
                yield "overflow", f"{name}:{char!r}x{size}", make(override={name: blob})
            yield (
                "overflow",
                f"ruri-user:{char!r}x{size}",
                make(request_line=f"INVITE sip:{blob}@{host}:{port} SIP/2.0"),
            )
            yield (
                "overflow",
                f"method:{char!r}x{size}",
                make(request_line=f"{blob} {base_ruri} SIP/2.0"),
            )
            yield (
                "overflow",
                f"sdp-origin:{char!r}x{size}",
                make(body=_sdp().replace("protos", blob)),
            )
    for fmt in FORMATS:
        for name in HEADERS:
            yield "format", f"{name}:{fmt[:12]}", make(override={name: fmt})
        yield (
            "format",
            f"ruri-user:{fmt[:12]}",
            make(request_line=f"INVITE sip:{fmt}@{host}:{port} SIP/2.0"),
        )
        yield (
            "format",
            f"from-display:{fmt[:12]}",
            make(override={"From": f'"{fmt}" <sip:protos@127.0.0.1>;tag=f{n}'}),
        )
        yield "format", f"sdp-session:{fmt[:12]}", make(body=_sdp().replace("s=-", f"s={fmt}"))
    # --- integers
    for value in INTEGERS:
        yield "integer", f"CSeq:{value[:20]}", make(override={"CSeq": f"{value} INVITE"})
        yield "integer", f"Max-Forwards:{value[:20]}", make(override={"Max-Forwards": value})
        yield "integer", f"Expires:{value[:20]}", make(override={"Expires": value})
        yield "integer", f"Content-Length:{value[:20]}", make(content_length=value)
        yield (
            "integer",
            f"Via-rport:{value[:20]}",
            make(
                override={
                    "Via": f"SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bK-i{n};rport={value}"
                }
            ),
        )
        yield (
            "integer",
            f"Via-port:{value[:20]}",
            make(override={"Via": f"SIP/2.0/UDP 127.0.0.1:{value};branch=z9hG4bK-p{n}"}),
        )
        yield "integer", f"sdp-port:{value[:20]}", make(body=_sdp(port=value))
        yield (
            "integer",
            f"sdp-pt:{value[:20]}",
            make(body=_sdp().replace("RTP/AVP 0 8 101", f"RTP/AVP {value}")),
        )
    yield "integer", "CSeq:method-mismatch", make(override={"CSeq": "1 BYE"})
    yield "integer", "Content-Length:shorter", make(content_length="10")
    yield "integer", "Content-Length:longer", make(content_length="5000")
    # --- malformed SIP URIs: Request-URI, To, From, Contact
    for uri in BAD_URIS:
        short = uri[:40]
        yield "sip-uri", f"ruri:{short}", make(request_line=f"INVITE {uri} SIP/2.0")
        yield "sip-uri", f"to:{short}", make(override={"To": f"<{uri}>"})
        yield "sip-uri", f"from:{short}", make(override={"From": f"<{uri}>;tag=u{n}"})
        yield "sip-uri", f"contact:{short}", make(override={"Contact": f"<{uri}>"})
        yield "sip-uri", f"route:{short}", make(override={"Route": f"<{uri};lr>"})
    for line in (
        f"INVITE {base_ruri}",
        f"INVITE {base_ruri} SIP/3.0",
        f"INVITE {base_ruri} SIP/2.0 extra",
        f"INVITE  {base_ruri}  SIP/2.0",
        f"INVITE {base_ruri} sip/2.0",
        f"INVITE {base_ruri} SIP/",
        "INVITE",
        " ",
        "",
        f"invite {base_ruri} SIP/2.0",
        f"INV\x00ITE {base_ruri} SIP/2.0",
        f"SIP/2.0 200 OK {base_ruri}",
        "SIP/2.0 999999999999 Big",
        "SIP/2.0 -1 Negative",
    ):
        yield "sip-uri", f"request-line:{line[:40]!r}", make(request_line=line)
    # --- missing and duplicated headers
    for name in MANDATORY:
        if name == "Content-Length":
            yield "missing", name, make(override={"Content-Length": None})
        else:
            yield "missing", name, make(override={name: None})
    duplicates = {
        "Via": f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-dup{n}",
        "From": "<sip:other@127.0.0.1>;tag=other",
        "To": "<sip:other@127.0.0.1>",
        "Call-ID": "another-call-id",
        "CSeq": "99 INVITE",
        "Max-Forwards": "1",
        "Contact": "<sip:other@10.0.0.1>",
        "Content-Length": "0",
        "Content-Type": "text/plain",
    }
    for name, value in duplicates.items():
        yield "duplicate", name, make(extra=[(name, value)])
    yield (
        "duplicate",
        "every-header-x50",
        make(extra=list(duplicates.items()) * 50),
    )
    yield (
        "duplicate",
        "via-x500",
        make(
            extra=[
                ("Via", f"SIP/2.0/UDP 10.0.0.{i % 250}:5060;branch=z9hG4bK-{i}") for i in range(500)
            ]
        ),
    )
    # --- bodies
    for i, body in enumerate(BAD_SDP):
        yield "sdp", f"body-{i}", make(body=body)
    yield "sdp", "content-type-unknown", make(override={"Content-Type": "application/x-protos"})
    yield (
        "sdp",
        "multipart-garbage",
        make(override={"Content-Type": "multipart/mixed;boundary=zz"}, body="--zz\r\n\r\n--zz--"),
    )
    # --- NUL, controls, non-ASCII, invalid UTF-8
    for label, blob in (
        ("nul", "\x00"),
        ("nuls", "\x00" * 64),
        ("c0", "".join(chr(c) for c in range(1, 32) if c not in (10, 13))),
        ("del", "\x7f"),
        ("latin1", "\xe9\xe8\xff"),
        ("utf8", "é中文😀"),
        ("bad-utf8", "\udcff\udcfe\udc80"),  # raw bytes 0xff 0xfe 0x80
        ("bidi", "\u202e\u2066"),
    ):
        for name in HEADERS:
            yield "bytes", f"{name}:{label}", make(override={name: f"x{blob}y"})
        yield (
            "bytes",
            f"ruri-user:{label}",
            make(request_line=f"INVITE sip:a{blob}b@{host}:{port} SIP/2.0"),
        )
        yield "bytes", f"to-user:{label}", make(override={"To": f"<sip:{user}{blob}@{host}>"})
        yield "bytes", f"sdp:{label}", make(body=_sdp().replace("s=-", f"s={blob}"))
        yield "bytes", f"header-name:{label}", make(extra=[(f"X{blob}Y", "v")])
    # --- CR/LF injection, line ends, folding, smuggling
    for name in HEADERS:
        yield (
            "crlf",
            f"{name}:inject-header",
            make(override={name: "x\r\nVia: SIP/2.0/UDP 6.6.6.6"}),
        )
        yield "crlf", f"{name}:inject-body", make(override={name: "x\r\n\r\nv=0"})
        yield "crlf", f"{name}:bare-lf", make(override={name: "x\nInjected: y"})
        yield "crlf", f"{name}:bare-cr", make(override={name: "x\rInjected: y"})
        yield "crlf", f"{name}:folded", make(override={name: "x\r\n continued\r\n\tagain"})
    yield "crlf", "line-ends:lf", make(line_end="\n")
    yield "crlf", "line-ends:cr", make(line_end="\r")
    yield "crlf", "no-blank-line", make(body="", content_length="0")[:-2]
    second = make()
    yield "crlf", "two-messages", make(body=_sdp() + second.decode("utf-8", "surrogateescape"))
    yield (
        "crlf",
        "header-without-colon",
        make(extra=[("NoColon", "x")]).replace(b"NoColon: x", b"NoColonHere"),
    )
    yield "crlf", "empty-header-name", make(extra=[("", "value")])
    yield "crlf", "leading-whitespace", b"\r\n\r\n  " + make()
