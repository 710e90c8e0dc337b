"""SIP URIs (RFC 3261 §19.1): ``sip:user:password@host:port;params?headers``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from flireo.telephony.sip.errors import SipParseError

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-_]*[A-Za-z0-9])?\.?)$")
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")

Params = tuple[tuple[str, str | None], ...]


def parse_params(text: str) -> Params:
    """``;a=1;b;c=x`` (leading ``;`` optional) → ``(("a", "1"), ("b", None), ...)``."""
    out: list[tuple[str, str | None]] = []
    for part in split_unquoted(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip()
        if not _TOKEN.match(name):
            raise SipParseError(f"bad parameter name {name!r}")
        out.append((name.lower(), value.strip() if eq else None))
    return tuple(out)


def split_unquoted(text: str, sep: str) -> list[str]:
    """``text.split(sep)``, except inside double quotes (with ``\\`` escapes)."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def param(params: Params, name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v if v is not None else ""
    return None


def has_param(params: Params, name: str) -> bool:
    return any(k == name for k, _ in params)


def with_param(params: Params, name: str, value: str | None) -> Params:
    kept = tuple((k, v) for k, v in params if k != name)
    return (*kept, (name, value))


@dataclass(frozen=True, slots=True)
class SipUri:
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: Params = ()
    headers: str = ""  # the raw ``?h=v&...`` part without the ``?``

    @property
    def user_decoded(self) -> str | None:
        return unquote(self.user) if self.user is not None else None

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    def param(self, name: str) -> str | None:
        return param(self.params, name)

    def with_param(self, name: str, value: str | None) -> SipUri:
        return replace(self, params=with_param(self.params, name, value))

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        tail = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host_port}{format_params(self.params)}{tail}"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text!r}")
        userhost, _, headers = rest.partition("?")
        if "@" not in userhost and "@" in headers:
            # '?' is legal in the user part (RFC 3261 §25.1, RFC 4475 §3.1.1.2)
            user_part, _, after = rest.partition("@")
            host_part, _, headers = after.partition("?")
            userhost = f"{user_part}@{host_part}"
        rest = userhost
        user = password = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
            if not user or any(c in user for c in ' <>"\t'):
                raise SipParseError(f"bad user part in {text!r}")
        hostport, semi, params_text = rest.partition(";")
        params = parse_params(params_text) if semi else ()
        host, port = split_host_port(hostport)
        return cls(host, user, password, port, scheme, params, headers)


def split_host_port(hostport: str) -> tuple[str, int | None]:
    """``host``, ``host:5060``, ``[::1]:5060`` → (host, port); validates both."""
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"bad IPv6 host {hostport!r}")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise SipParseError(f"bad host {hostport!r}")
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
    if not _HOST.match(host):
        raise SipParseError(f"bad host {host!r}")
    port: int | None = None
    if port_text is not None:
        if not _is_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
            raise SipParseError(f"bad port in {hostport!r}")
        port = int(port_text)
    return host.lower(), port


def _is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and '٣', which ``int`` rejects
    or reads as numbers no SIP peer meant."""
    return text.isascii() and text.isdigit()


def is_absolute_uri(text: str) -> bool:
    scheme, colon, rest = text.partition(":")
    return bool(colon) and bool(rest) and _SCHEME.match(scheme) is not None and " " not in text
