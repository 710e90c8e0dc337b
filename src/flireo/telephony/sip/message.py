"""SIP messages as data (RFC 3261 §7): parse bytes into a :class:`Request` or
:class:`Response`, serialize them back.

Headers keep their order and multiplicity; compact forms (``v``, ``i``, ``f``...)
become full names, folded lines are unfolded, comma lists of the list-valued
headers (Via, Contact, Route...) split into separate values. ``parse`` raises
only :class:`SipParseError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import CSeq, NameAddr, Via, split_commas
from flireo.telephony.sip.uri import SipUri, is_absolute_uri

_COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        *_COMPACT.values(),
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authorization",
        "Call-Info",
        "CSeq",
        "Date",
        "Error-Info",
        "Expires",
        "Max-Forwards",
        "Min-Expires",
        "MIME-Version",
        "Organization",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Subscription-State",
        "Timestamp",
        "Unsupported",
        "User-Agent",
        "Warning",
        "WWW-Authenticate",
        "P-Asserted-Identity",
    )
}
# Headers whose comma-separated values are separate entries (RFC 3261 §7.3.1).
_LIST_HEADERS = frozenset(
    h.lower()
    for h in (
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "P-Asserted-Identity",
    )
)
_SINGLE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards")
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(r"\r?\n")

REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def canonical_name(name: str) -> str:
    low = name.lower()
    if low in _COMPACT:
        return _COMPACT[low]
    return _CANONICAL.get(low) or "-".join(p.capitalize() for p in name.split("-"))


class Headers:
    """Ordered multi-valued headers, names case-insensitive."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def get(self, name: str) -> str | None:
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h


@dataclass(eq=False)
class _Message:
    headers: Headers
    body: bytes

    # typed views of the mandatory headers (validated by ``parse``)
    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self.headers.get_all("Via")[0])

    @property
    def contact(self) -> NameAddr | None:
        values = self.headers.get_all("Contact")
        if not values or values[0].strip() == "*":
            return None
        return NameAddr.parse(values[0])

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=False)
class Request(_Message):
    method: str = ""
    uri: str = ""

    def serialize(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} SIP/2.0")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id}>"


@dataclass(eq=False)
class Response(_Message):
    status: int = 0
    reason: str = ""

    def serialize(self) -> bytes:
        return self._serialize(f"SIP/2.0 {self.status} {self.reason}")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id}>"


Message = Request | Response


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    return Request(Headers(headers), body, method, uri)


def response_to(
    req: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
) -> Response:
    """A response echoing Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6.2).

    ``to_tag`` is added when the request's To has none (not to 100 Trying).
    """
    h = Headers()
    for v in req.headers.get_all("Via"):
        h.add("Via", v)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = req.headers.get(name)
        if value is not None:
            if name == "To" and to_tag and status != 100 and ";tag=" not in value.replace(" ", ""):
                value = f"{value};tag={to_tag}"
            h.add(name, value)
    if 100 < status < 300:
        for rr in req.headers.get_all("Record-Route"):
            h.add("Record-Route", rr)
    if status == 100 and req.headers.get("Timestamp"):
        h.add("Timestamp", req.headers.get("Timestamp") or "")
    for name, value in headers:
        h.add(name, value)
    return Response(h, body, status, reason or REASONS.get(status, "Unknown"))


@dataclass(frozen=True, slots=True)
class RawHead:
    """The part of a malformed message that did parse: enough to answer 400."""

    headers: Headers = field(default_factory=Headers)
    method: str | None = None


def parse(data: bytes, *, stream: bool = False) -> Message:
    """Parse one SIP message.

    With ``stream=False`` (a datagram) a missing Content-Length means "the rest
    of the datagram" and extra bytes after the body are ignored. With
    ``stream=True`` (already framed by :func:`frame_length`) Content-Length is
    required.
    """
    try:
        return _parse(data, stream)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError) as exc:  # defensive: never leak others
        raise SipParseError(f"malformed message: {exc}") from exc


def _parse(data: bytes, stream: bool) -> Message:
    data = data.lstrip(b"\r\n")  # keepalive CRLFs before a message are allowed
    m = _BLANK_LINE.search(data)
    if m is None:
        raise SipParseError("no end of headers")
    head_bytes, rest = data[: m.start()], data[m.end() :]
    head = head_bytes.decode("utf-8", "surrogateescape")
    lines = _LINE.split(head)
    start = lines[0]
    headers = _parse_headers(lines[1:])
    body = _take_body(headers, rest, stream)

    msg: Message
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError(f"bad status line {start!r}")
        _check_version(parts[0])
        code = parts[1]
        if len(code) != 3 or not _is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code!r}")
        msg = Response(headers, body, int(code), parts[2] if len(parts) > 2 else "")
    else:
        parts = start.split(" ")
        if len(parts) != 3:
            raise SipParseError(f"bad request line {start!r}")
        method, uri, version = parts
        if not _TOKEN.match(method):
            raise SipParseError(f"bad method {method!r}")
        if not is_absolute_uri(uri):
            raise SipParseError(f"bad Request-URI {uri!r}")
        _check_version(version)
        # headers are not allowed in a Request-URI (RFC 3261 §19.1.1, Table 1;
        # RFC 4475 §3.1.2.11 lets us answer 400)
        if uri.lower().startswith(("sip:", "sips:")) and SipUri.parse(uri).headers:
            raise SipParseError(f"headers in the Request-URI {uri!r}")
        msg = Request(headers, body, method, uri)
    _validate(msg)
    return msg


def _check_version(version: str) -> None:
    if not version.upper().startswith("SIP/"):
        raise SipParseError(f"not SIP: {version!r}")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported version {version!r}", status=505)


def _parse_headers(lines: list[str]) -> Headers:
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipParseError("continuation line before any header")
            unfolded[-1] += " " + line.strip()
        elif line:
            unfolded.append(line)
    headers = Headers()
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN.match(name):
            raise SipParseError(f"bad header line {line[:80]!r}")
        value = value.strip()
        canonical = canonical_name(name)
        if canonical.lower() in _LIST_HEADERS:
            for item in split_commas(value):
                headers.add(canonical, item)
        else:
            headers.add(canonical, value)
    return headers


def _take_body(headers: Headers, rest: bytes, stream: bool) -> bytes:
    lengths = {v.strip() for v in headers.get_all("Content-Length")}
    if not lengths:
        if stream:
            raise SipParseError("Content-Length is required on a stream transport")
        return rest
    if len(lengths) > 1:
        raise SipParseError("conflicting Content-Length headers")
    value = lengths.pop()
    if not _is_digits(value) or len(value) > 9:
        raise SipParseError(f"bad Content-Length {value!r}")
    length = int(value)
    if length > len(rest):
        raise SipParseError(f"Content-Length {length} larger than the body ({len(rest)})")
    return rest[:length]


def _validate(msg: Message) -> None:
    for name in ("Via", *_SINGLE_HEADERS[:4]):
        if msg.headers.get(name) is None:
            raise SipParseError(f"missing {name} header")
    for name in _SINGLE_HEADERS:
        if len(msg.headers.get_all(name)) > 1:
            raise SipParseError(f"more than one {name} header")
    if not msg.call_id or " " in msg.call_id:
        raise SipParseError("bad Call-ID")
    cseq = msg.cseq
    msg.from_  # noqa: B018 - parse to validate
    msg.to  # noqa: B018
    msg.vias  # noqa: B018
    for value in msg.headers.get_all("Contact"):
        if value.strip() != "*":
            NameAddr.parse(value)
    mf = msg.headers.get("Max-Forwards")
    if mf is not None and (not _is_digits(mf) or len(mf) > 9 or int(mf) > 255):
        raise SipParseError(f"bad Max-Forwards {mf!r}")
    if isinstance(msg, Request) and cseq.method != msg.method:
        raise SipParseError(f"CSeq method {cseq.method} differs from {msg.method}")


def _is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' (latin-1 0xB2), which
    ``int`` rejects."""
    return text.isascii() and text.isdigit()


def raw_head(data: bytes) -> RawHead:
    """Best effort for a message ``parse`` rejected: its headers, to answer 400."""
    try:
        text = data.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
        lines = _LINE.split(text)
        method = lines[0].split(" ", 1)[0]
        headers = Headers()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon and _TOKEN.match(name.strip()):
                headers.add(name.strip(), value.strip())
        return RawHead(headers, method if _TOKEN.match(method) else None)
    except (ValueError, IndexError):
        return RawHead()


def frame_length(buffer: bytes | bytearray, max_size: int) -> int | None:
    """On a stream: bytes of the first whole message in ``buffer`` (after any
    leading CRLF keepalives), or None if more data is needed.

    Raises :class:`SipParseError` for a message larger than ``max_size`` or
    without a usable Content-Length.
    """
    start = 0
    while buffer[start : start + 2] == b"\r\n":
        start += 2
    m = _BLANK_LINE.search(buffer, start)
    if m is None:
        if len(buffer) - start > max_size:
            raise SipParseError("headers too large", status=513)
        return None
    head = bytes(buffer[start : m.start()]).decode("latin-1")
    length = None
    for line in _LINE.split(head)[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in ("content-length", "l"):
            value = value.strip()
            if not _is_digits(value) or len(value) > 9:
                raise SipParseError("bad Content-Length")
            length = int(value)
    if length is None:
        raise SipParseError("Content-Length is required on a stream transport")
    total = m.end() + length
    if total - start > max_size:
        raise SipParseError("message too large", status=513)
    return total if len(buffer) >= total else None
