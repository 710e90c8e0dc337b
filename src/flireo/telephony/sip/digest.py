"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 §22), both
directions: :func:`authorize` answers a trunk's 401/407 challenge, and
:class:`DigestChallenger` challenges a UAC and checks its answer."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import format_auth_params, parse_auth_params

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestError(ValueError):
    """A challenge we cannot answer (unknown algorithm or qop)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, p = parse_auth_params(header)
        if scheme.lower() != "digest":
            raise DigestError(f"unsupported auth scheme {scheme}")
        if "nonce" not in p:
            raise SipParseError("challenge without nonce")
        return cls(
            realm=p.get("realm", ""),
            nonce=p["nonce"],
            algorithm=p.get("algorithm", "MD5").upper(),
            qop=tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()),
            opaque=p.get("opaque"),
            stale=p.get("stale", "").lower() == "true",
        )

    def header(self) -> str:
        params = [("realm", self.realm, True), ("nonce", self.nonce, True)]
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        params.append(("algorithm", self.algorithm, False))
        if self.qop:
            params.append(("qop", ",".join(self.qop), True))
        if self.stale:
            params.append(("stale", "TRUE", False))
        return format_auth_params("Digest", params)


def _h(algorithm: str, text: str) -> str:
    base = algorithm.removesuffix("-SESS")
    if base not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {algorithm}")
    return _HASHES[base](_wire_bytes(text)).hexdigest()


def _wire_bytes(text: str) -> bytes:
    """Header text back to the bytes it was decoded from (surrogateescape); any
    other lone surrogate is encoded as is rather than raising."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def authorize(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``."""
    if challenge.qop and "auth" not in challenge.qop:
        raise DigestError(f"unsupported qop {','.join(challenge.qop)}")
    qop = "auth" if challenge.qop else None
    cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
    )
    params = [
        ("username", username, True),
        ("realm", challenge.realm, True),
        ("nonce", challenge.nonce, True),
        ("uri", uri, True),
        ("response", response, True),
        ("algorithm", challenge.algorithm, False),
    ]
    if challenge.opaque is not None:
        params.append(("opaque", challenge.opaque, True))
    if qop:
        params += [("qop", qop, False), ("nc", nc_text, False), ("cnonce", cnonce, True)]
    return format_auth_params("Digest", params)


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of attacker-supplied text (``hmac.compare_digest``
    raises TypeError on non-ASCII ``str``)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    stale: bool = False
    reason: str = ""


class DigestChallenger:
    """Server side: stateless nonces (time + HMAC), so they expire and can be
    checked without storing them; an expired nonce with a right password is
    answered with ``stale=true`` (RFC 2617 §3.2.1)."""

    def __init__(
        self,
        realm: str,
        credentials: dict[str, str],
        *,
        secret: bytes | None = None,
        nonce_ttl_s: float = 300.0,
    ) -> None:
        self.realm = realm
        self._credentials = credentials
        self._secret = secret or secrets.token_bytes(32)
        self._ttl = nonce_ttl_s

    def _sign(self, stamp: str) -> str:
        return hmac.new(
            self._secret, stamp.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()[:32]

    def challenge(self, now: float, *, stale: bool = False) -> Challenge:
        stamp = f"{now:.3f}"
        return Challenge(
            realm=self.realm,
            nonce=f"{stamp}.{self._sign(stamp)}",
            qop=("auth",),
            stale=stale,
        )

    def verify(self, header: str, *, method: str, now: float) -> Verdict:
        try:
            scheme, p = parse_auth_params(header)
        except SipParseError as exc:
            return Verdict(False, reason=str(exc))
        if scheme.lower() != "digest":
            return Verdict(False, reason="not digest")
        stamp, _, sig = p.get("nonce", "").rpartition(".")
        if not stamp or not _same(sig, self._sign(stamp)):
            return Verdict(False, reason="unknown nonce")
        password = self._credentials.get(p.get("username", ""))
        if password is None or p.get("realm") != self.realm:
            return Verdict(False, reason="unknown user")
        try:
            expected = digest_response(
                algorithm=p.get("algorithm", "MD5").upper(),
                username=p["username"],
                realm=self.realm,
                password=password,
                method=method,
                uri=p.get("uri", ""),
                nonce=p["nonce"],
                qop=p.get("qop"),
                nc=p.get("nc", ""),
                cnonce=p.get("cnonce", ""),
            )
        except DigestError as exc:
            return Verdict(False, reason=str(exc))
        if not _same(expected, p.get("response", "")):
            return Verdict(False, reason="wrong password")
        try:
            age = now - float(stamp)
        except ValueError:
            return Verdict(False, reason="unknown nonce")
        if age > self._ttl or age < -1.0:
            return Verdict(False, stale=True, reason="stale nonce")
        return Verdict(True)
