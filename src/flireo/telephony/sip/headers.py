"""Typed SIP header values: name-addr (From/To/Contact/Route), Via, CSeq, and the
auth-param lists of WWW-Authenticate/Authorization (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.uri import (
    Params,
    SipUri,
    format_params,
    is_absolute_uri,
    param,
    parse_params,
    split_host_port,
    with_param,
)

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_METHOD = _TOKEN
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"$', re.S)
_DISPLAY_TOKENS = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~\s]+$")


def split_commas(value: str) -> list[str]:
    """Split a header value on top-level commas (not inside quotes or ``<>``)."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    angle = 0
    for ch in value:
        if quoted:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch == "<":
            angle += 1
        elif ch == ">":
            angle = max(0, angle - 1)
        elif ch == "," and angle == 0:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if quoted:
        raise SipParseError("unterminated quoted string")
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def unquote_string(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``"Display" <uri>;params`` as in From, To, Contact, Route, Refer-To.

    ``uri`` is a :class:`SipUri` for sip/sips, else the raw absolute URI (tel:...).
    """

    uri: SipUri | str
    display_name: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return param(self.params, "tag")

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise SipParseError(f"not a SIP URI: {self.uri}")
        return self.uri

    @property
    def user(self) -> str | None:
        if isinstance(self.uri, SipUri):
            return self.uri.user_decoded
        scheme, _, rest = self.uri.partition(":")
        return rest.split(";")[0] if scheme.lower() == "tel" else None

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=with_param(self.params, "tag", tag))

    def __str__(self) -> str:
        name = f"{quote_string(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if not text:
            raise SipParseError("empty address")
        display: str | None = None
        lt = _find_unquoted(text, "<")
        if lt >= 0:
            display_text = text[:lt].strip()
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"unterminated <uri> in {text!r}")
            uri_text = text[lt + 1 : gt].strip()
            rest = text[gt + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"junk after address: {text!r}")
            if display_text:
                quoted = _QUOTED.match(display_text)
                if quoted:
                    display = re.sub(r"\\(.)", r"\1", quoted.group(1))
                elif _DISPLAY_TOKENS.match(display_text):
                    display = " ".join(display_text.split())
                else:
                    raise SipParseError(f"bad display name {display_text!r}")
        else:
            uri_text, _, rest = text.partition(";")
            rest = ";" + rest if rest else ""
            if " " in uri_text.strip() or "," in uri_text or "?" in uri_text:
                raise SipParseError(f"bad addr-spec {text!r}")
        params = parse_params(rest) if rest else ()
        return cls(parse_any_uri(uri_text), display or None, params)


def parse_any_uri(text: str) -> SipUri | str:
    text = text.strip()
    if text[:4].lower() == "sip:" or text[:5].lower() == "sips:":
        return SipUri.parse(text)
    if not is_absolute_uri(text):
        raise SipParseError(f"bad URI {text!r}")
    return text


def _find_unquoted(text: str, ch: str) -> int:
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            return i
        i += 1
    return -1


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # UDP / TCP / TLS...
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return param(self.params, "branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        default = 5061 if self.transport == "TLS" else 5060
        return self.host, self.port if self.port is not None else default

    def param(self, name: str) -> str | None:
        return param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=with_param(self.params, name, value))

    def __str__(self) -> str:
        hp = f"{self.host}:{self.port}" if self.port is not None else self.host
        return f"SIP/2.0/{self.transport} {hp}{format_params(self.params)}"

    @classmethod
    def parse(cls, text: str) -> Via:
        m = re.match(r"^\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([A-Za-z0-9\-]+)\s+(.*)$", text, re.S)
        if not m:
            raise SipParseError(f"bad Via {text!r}")
        name, version, transport, rest = m.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError(f"bad Via protocol {text!r}")
        hostport, semi, params_text = rest.partition(";")
        # "host : port" with spaces is legal LWS
        host, port = split_host_port(re.sub(r"\s*:\s*", ":", hostport.strip()))
        params = parse_params(params_text) if semi else ()
        return cls(transport.upper(), host, port, params)


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if (
            len(parts) != 2
            or not (parts[0].isascii() and parts[0].isdigit() and len(parts[0]) <= 10)
            or not _METHOD.match(parts[1])
        ):
            raise SipParseError(f"bad CSeq {text!r}")
        seq = int(parts[0])
        if seq >= 2**31:
            raise SipParseError(f"CSeq number out of range: {text!r}")
        return cls(seq, parts[1])


def parse_auth_params(text: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y", qop="auth"`` → ("Digest", {"realm": "x", ...})."""
    text = text.strip()
    scheme, _, rest = text.partition(" ")
    if not _TOKEN.match(scheme):
        raise SipParseError(f"bad auth scheme in {text!r}")
    params: dict[str, str] = {}
    for item in split_commas(rest):
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq or not _TOKEN.match(name):
            raise SipParseError(f"bad auth parameter {item!r}")
        params[name] = unquote_string(value)
    return scheme, params


def format_auth_params(scheme: str, params: list[tuple[str, str, bool]]) -> str:
    """(name, value, quoted) triples → ``Digest a="b", c=d``."""
    items = [f"{n}={quote_string(v)}" if q else f"{n}={v}" for n, v, q in params]
    return f"{scheme} " + ", ".join(items)
