"""SDP offer/answer for one audio stream: PCMU/PCMA + telephone-event (RFC 4566,
RFC 3264, RFC 4733), plain RTP or SRTP with SDES keys (RTP/SAVP, RFC 4568).

SRTP policy (``off`` / ``optional`` / ``mandatory``) when answering: an offer
of RTP/SAVP(F) is answered with SRTP (a usable ``a=crypto`` line is required,
else 488) unless the policy is ``off``; an RTP/AVP offer carrying crypto lines
(best-effort SRTP) is answered with SRTP too; a plain offer is refused when the
policy is ``mandatory``. When offering, ``mandatory`` offers RTP/SAVP with our
crypto lines; the others offer plain RTP/AVP."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from flireo.telephony.rtp import srtp as sdes
from flireo.telephony.rtp.srtp import CryptoAttribute, SrtpError, SrtpKeys
from flireo.telephony.sip.errors import SipParseError

PCMU, PCMA = 0, 8
CODEC_NAMES = {PCMU: "PCMU", PCMA: "PCMA"}
_STATIC = {"PCMU": PCMU, "PCMA": PCMA}
DEFAULT_DTMF_PT = 101
SRTP_POLICIES = ("off", "optional", "mandatory")
#: crypto lines read from one media section (offers carry 1-4)
_MAX_CRYPTO = 16


class SdpNegotiationError(ValueError):
    """No common codec: the call must be refused with 488."""


@dataclass(frozen=True, slots=True)
class AudioMedia:
    host: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt → "PCMU/8000"
    fmtp: dict[int, str] = field(default_factory=dict)
    ptime: int | None = None
    direction: str = "sendrecv"
    proto: str = "RTP/AVP"
    #: the usable ``a=crypto`` lines, in offer order
    crypto: tuple[CryptoAttribute, ...] = ()

    @property
    def secure(self) -> bool:
        """The stream's profile is SRTP (RTP/SAVP or RTP/SAVPF)."""
        return self.proto.upper() in sdes.SECURE_PROTOS

    def codec_name(self, pt: int) -> str | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt].split("/")[0].upper()
        return CODEC_NAMES.get(pt)

    def clock_rate(self, pt: int) -> int:
        if pt in self.rtpmap:
            parts = self.rtpmap[pt].split("/")
            if len(parts) > 1 and _is_number(parts[1]):
                return int(parts[1])
        return 8000

    @property
    def telephone_event_pt(self) -> int | None:
        for pt in self.payload_types:
            if self.codec_name(pt) == "TELEPHONE-EVENT" and self.clock_rate(pt) == 8000:
                return pt
        return None


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both sides agreed: the codec, the DTMF payload type, where to send."""

    codec_pt: int  # PCMU (0) or PCMA (8)
    dtmf_pt: int | None
    remote_host: str
    remote_port: int
    ptime: int = 20
    direction: str = "sendrecv"
    #: SRTP keys when the stream is encrypted
    srtp: SrtpKeys | None = None
    #: our answer's crypto line (answers only) and the profile to answer with
    crypto: CryptoAttribute | None = None
    proto: str = "RTP/AVP"

    @property
    def codec(self) -> str:
        return CODEC_NAMES[self.codec_pt]


def _is_number(text: str) -> bool:
    """Up to 9 ASCII digits (``str.isdigit`` accepts '²', which ``int`` rejects)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def parse_audio(body: bytes) -> AudioMedia:
    """The first audio stream of an SDP body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("SDP is not UTF-8") from exc
    session_host: str | None = None
    media: dict[str, object] | None = None
    found: AudioMedia | None = None
    session_direction = "sendrecv"

    def finish() -> None:
        nonlocal found
        if media is not None and found is None and media["kind"] == "audio":
            host = media.get("host") or session_host
            if not host:
                raise SipParseError("SDP without connection address")
            found = AudioMedia(
                host=str(host),
                port=int(str(media["port"])),
                payload_types=tuple(media["pts"]),  # type: ignore[arg-type]
                rtpmap=dict(media["rtpmap"]),  # type: ignore[call-overload]
                fmtp=dict(media["fmtp"]),  # type: ignore[call-overload]
                ptime=media.get("ptime"),  # type: ignore[arg-type]
                direction=str(media.get("direction") or session_direction),
                proto=str(media["proto"]),
                crypto=tuple(media["crypto"]),  # type: ignore[arg-type]
            )

    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            finish()
            parts = value.split()
            port_text = parts[1].split("/")[0] if len(parts) > 1 else ""
            if len(parts) < 4 or not _is_number(port_text) or int(port_text) > 65535:
                raise SipParseError(f"bad m= line {line[:80]!r}")
            pts = tuple(int(p) for p in parts[3:] if _is_number(p) and int(p) < 128)
            media = {
                "kind": parts[0],
                "port": int(port_text),
                "proto": parts[2][:32],
                "pts": pts,
                "rtpmap": {},
                "fmtp": {},
                "crypto": [],
            }
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3:
                raise SipParseError(f"bad c= line {line!r}")
            host = parts[2].split("/")[0]
            if media is None:
                session_host = host
            else:
                media["host"] = host
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if media is None:
                    session_direction = name
                else:
                    media["direction"] = name
            elif media is not None and name in ("rtpmap", "fmtp"):
                pt_text, _, rest = arg.partition(" ")
                if _is_number(pt_text):
                    media[name][int(pt_text)] = rest.strip()  # type: ignore[index]
            elif media is not None and name == "ptime" and _is_number(arg.strip()):
                media["ptime"] = int(arg.strip())
            elif media is not None and name == "crypto":
                crypto: list[CryptoAttribute] = media["crypto"]  # type: ignore[assignment]
                attribute = sdes.parse_crypto(arg)
                if attribute is not None and len(crypto) < _MAX_CRYPTO:
                    crypto.append(attribute)
    finish()
    if found is None:
        raise SipParseError("SDP has no audio stream")
    return found


def negotiate(
    offer: AudioMedia, preferred: tuple[int, ...] = (PCMU, PCMA), *, srtp: str = "optional"
) -> Negotiated:
    """Answer an offer: the offerer's first codec we support (RFC 3264 §6.1), and
    SRTP as the offer and ``srtp`` (the policy, see the module) say."""
    if offer.port == 0:
        raise SdpNegotiationError("audio stream is disabled (port 0)")
    try:  # RTP goes to an address: a name would need a blocking lookup (RFC 4566 allows it)
        ipaddress.ip_address(offer.host)
    except ValueError:
        raise SdpNegotiationError(f"connection address {offer.host[:64]!r} is not an IP") from None
    codec = next(
        (
            pt
            for pt in offer.payload_types
            if offer.codec_name(pt) in ("PCMU", "PCMA")
            and _STATIC[offer.codec_name(pt) or ""] in preferred
            and offer.clock_rate(pt) == 8000
        ),
        None,
    )
    if codec is None:
        raise SdpNegotiationError("no common codec (we speak PCMU and PCMA)")
    keys: SrtpKeys | None = None
    line: CryptoAttribute | None = None
    if srtp not in SRTP_POLICIES:
        raise ValueError(f"unknown SRTP policy {srtp!r}")
    if srtp == "off":
        if offer.secure:
            raise SdpNegotiationError("SRTP (RTP/SAVP) offered but SRTP is off here")
    elif offer.secure or offer.crypto:
        try:
            line, keys = sdes.answer(offer.crypto)
        except SrtpError as exc:
            if offer.secure or srtp == "mandatory":
                raise SdpNegotiationError(str(exc)) from None
    if keys is None and srtp == "mandatory":
        raise SdpNegotiationError("SRTP is mandatory here and the offer is plain RTP")
    return Negotiated(
        codec_pt=_STATIC[offer.codec_name(codec) or ""],
        dtmf_pt=offer.telephone_event_pt,
        remote_host=offer.host,
        remote_port=offer.port,
        ptime=20,
        direction=_ANSWER_DIRECTION.get(offer.direction, "sendrecv"),
        srtp=keys,
        crypto=line,
        proto=offer.proto if offer.secure else "RTP/AVP",
    )


def accept_answer(
    offered: tuple[int, ...],
    answer: AudioMedia,
    crypto_offered: tuple[CryptoAttribute, ...] = (),
) -> Negotiated:
    """Read the answer to our own offer (``crypto_offered``: our offer's crypto
    lines, when we offered SRTP: the answer must accept one of them)."""
    neg = negotiate(answer, offered, srtp="off" if not crypto_offered else "optional")
    keys: SrtpKeys | None = None
    if crypto_offered:
        try:
            keys = sdes.accept(crypto_offered, answer.crypto)
        except SrtpError as exc:
            raise SdpNegotiationError(str(exc)) from None
    return Negotiated(
        neg.codec_pt,
        neg.dtmf_pt,
        neg.remote_host,
        neg.remote_port,
        neg.ptime,
        answer.direction,
        srtp=keys,
        proto=answer.proto,
    )


_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def build(
    *,
    host: str,
    port: int,
    session_id: int,
    version: int,
    codecs: tuple[int, ...],
    dtmf_pt: int | None,
    direction: str = "sendrecv",
    ptime: int = 20,
    proto: str = "RTP/AVP",
    crypto: tuple[CryptoAttribute, ...] = (),
) -> bytes:
    """Our SDP (an offer with several codecs, or an answer with the one chosen);
    ``proto`` RTP/SAVP and ``crypto`` lines for SRTP."""
    ip = "IP6" if ":" in host else "IP4"
    pts = [*codecs, *([dtmf_pt] if dtmf_pt is not None else [])]
    lines = [
        "v=0",
        f"o=flireo {session_id} {version} IN {ip} {host}",
        "s=flireo",
        f"c=IN {ip} {host}",
        "t=0 0",
        f"m=audio {port} {proto} {' '.join(str(p) for p in pts)}",
    ]
    lines += [f"a=crypto:{attribute.line()}" for attribute in crypto]
    lines += [f"a=rtpmap:{pt} {CODEC_NAMES[pt]}/8000" for pt in codecs]
    if dtmf_pt is not None:
        lines += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-16"]
    lines += [f"a=ptime:{ptime}", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()
