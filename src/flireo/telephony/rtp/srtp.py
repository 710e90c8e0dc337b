"""SRTP (RFC 3711) with SDES keys (RFC 4568) for one call, on libsrtp (``pylibsrtp``).

The SDP carries one ``a=crypto`` line per suite offered::

    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 of 16-byte key + 14-byte salt>

Each side sends with its *own* key and decrypts with the key the *other* side
put in its SDP. :func:`offer_lines` makes our offer's lines (one fresh key per
suite), :func:`answer` picks the first offered suite we support and makes a
fresh key for it, :func:`accept` reads the answer to our offer. The result is
an :class:`SrtpKeys` from which :meth:`SrtpKeys.context` builds the per-call
:class:`SrtpContext` that :class:`~flireo.telephony.rtp.session.RtpSession`
runs each datagram through (protect after serialising, unprotect before parsing).

Lines we cannot use are skipped, not fatal: unknown suites, MKIs (we never
rekey), key lifetimes other than the default, session parameters
(``UNENCRYPTED_SRTP`` and friends would weaken the stream).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import pylibsrtp

#: suite name → (libsrtp profile, master key + salt length)
SUITES: Final[dict[str, tuple[int, int]]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
}
#: our preference, best first (what we offer, in this order)
PREFERRED: Final = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
#: SDP transport protocols that mean SRTP (RFC 3711 §12, RFC 5124)
SECURE_PROTOS: Final = frozenset({"RTP/SAVP", "RTP/SAVPF"})

_LINE = re.compile(r"^(\d{1,9})\s+([A-Za-z0-9_]{1,64})\s+(\S{1,512})(?:\s+(.*))?$")
_LIFETIME = re.compile(r"^(2\^\d{1,2}|\d{1,15})$")


class SrtpError(ValueError):
    """No usable crypto attribute (the call must be refused with 488)."""


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` line we can use: its tag, suite and master key + salt."""

    tag: int
    suite: str
    key: bytes

    def line(self) -> str:
        """The attribute value (what follows ``a=crypto:``)."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"

    @classmethod
    def fresh(cls, tag: int, suite: str) -> CryptoAttribute:
        return cls(tag, suite, secrets.token_bytes(SUITES[suite][1]))


def parse_crypto(value: str) -> CryptoAttribute | None:
    """An ``a=crypto`` value (after the colon), or None when we cannot use it."""
    match = _LINE.match(value.strip())
    if match is None:
        return None
    tag_text, suite, key_params, session_params = match.groups()
    suite = suite.upper()
    if suite not in SUITES or session_params:
        return None
    # several key-params (';'-separated) only come with MKIs: we use single keys
    if ";" in key_params or not key_params.lower().startswith("inline:"):
        return None
    key_text, *extra = key_params[7:].split("|")
    for part in extra:
        if ":" in part:  # an MKI: value:length
            return None
        if _LIFETIME.match(part) is None:  # a key lifetime: calls end long before
            return None
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(key) != SUITES[suite][1]:
        return None
    return CryptoAttribute(int(tag_text), suite, key)


def offer_lines(suites: Sequence[str] = PREFERRED) -> tuple[CryptoAttribute, ...]:
    """Our offer: one fresh key per suite, tags 1, 2, ..."""
    return tuple(CryptoAttribute.fresh(i, suite) for i, suite in enumerate(suites, 1))


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """The negotiated suite, our key (we send with it) and the peer's (we decrypt)."""

    suite: str
    local_key: bytes
    remote_key: bytes

    def context(self) -> SrtpContext:
        return SrtpContext(self.suite, self.local_key, self.remote_key)


def answer(offered: Iterable[CryptoAttribute]) -> tuple[CryptoAttribute, SrtpKeys]:
    """Our answer's line (the offer's tag and suite, our key) and the keys.
    :class:`SrtpError` when no offered line is usable."""
    by_suite: dict[str, CryptoAttribute] = {}
    for attribute in offered:
        by_suite.setdefault(attribute.suite, attribute)
    for suite in PREFERRED:
        remote = by_suite.get(suite)
        if remote is not None:
            ours = CryptoAttribute.fresh(remote.tag, suite)
            return ours, SrtpKeys(suite, ours.key, remote.key)
    raise SrtpError("no supported SRTP crypto suite offered")


def accept(ours: Sequence[CryptoAttribute], answered: Iterable[CryptoAttribute]) -> SrtpKeys:
    """The keys from the answer to our offer: its line must repeat one of our
    tags with the same suite (RFC 4568 §7.1.3)."""
    by_tag = {attribute.tag: attribute for attribute in ours}
    for attribute in answered:
        mine = by_tag.get(attribute.tag)
        if mine is not None and mine.suite == attribute.suite:
            return SrtpKeys(mine.suite, mine.key, attribute.key)
    raise SrtpError("the answer accepted none of the SRTP suites offered")


class SrtpContext:
    """One call's two SRTP streams: ours (outbound) and the peer's (inbound)."""

    __slots__ = ("_rx", "_tx", "auth_failures", "suite")

    def __init__(self, suite: str, local_key: bytes, remote_key: bytes) -> None:
        profile, length = SUITES[suite]
        if len(local_key) != length or len(remote_key) != length:
            raise SrtpError(f"{suite} needs {length}-byte keys")
        self.suite = suite
        self._tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )
        #: packets refused: authentication failed, replayed, or not SRTP at all
        self.auth_failures = 0

    def protect(self, rtp: bytes) -> bytes:
        """An RTP packet encrypted and authenticated."""
        return bytes(self._tx.protect(rtp))

    def unprotect(self, srtp: bytes) -> bytes | None:
        """The RTP packet inside, or None (counted) when it does not authenticate."""
        if len(srtp) < 12:
            self.auth_failures += 1
            return None
        try:
            return bytes(self._rx.unprotect(srtp))
        except pylibsrtp.Error:
            self.auth_failures += 1
            return None


__all__ = [
    "PREFERRED",
    "SECURE_PROTOS",
    "SUITES",
    "CryptoAttribute",
    "SrtpContext",
    "SrtpError",
    "SrtpKeys",
    "accept",
    "answer",
    "offer_lines",
    "parse_crypto",
]
