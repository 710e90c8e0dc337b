"""Phone numbers and SIP trunks (resources.md §3, §7)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, Field, model_validator

from flireo.domain.common import E164, OutModel, Timestamp, Token, WireModel


class NumberCreate(WireModel):
    #: the quick start posts ``number``; the reference ``phone_number`` — both accepted
    phone_number: E164 = Field(validation_alias=AliasChoices("phone_number", "number"))
    name: str | None = Field(default=None, max_length=200)
    agent_id: str | None = None
    #: the number's SIP trunk: used for outbound calls and for transfers
    transfer_trunk_id: str | None = None


class NumberUpdate(WireModel):
    name: str | None = Field(default=None, max_length=200)
    agent_id: str | None = None
    transfer_trunk_id: str | None = None


class NumberOut(OutModel):
    id: str
    phone_number: str
    name: str | None
    agent_id: str | None
    transfer_trunk_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


def _ip_or_network(v: str) -> str:
    try:
        return str(ipaddress.ip_network(v, strict=False))
    except ValueError as exc:
        raise ValueError(f"{v!r} is not an IP address or network") from exc


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_NET = rf"{_OCTET}(\.{_OCTET}){{3}}(/(3[0-2]|[12]?[0-9]))?"
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        rf"({_H}:){{7}}{_H}",
        rf"({_H}:){{1,7}}:",
        rf"({_H}:){{1,6}}:{_H}",
        *(rf"({_H}:){{1,{5 - i}}}(:{_H}){{1,{2 + i}}}" for i in range(4)),
        rf"{_H}:(:{_H}){{1,6}}",
        rf":((:{_H}){{1,7}}|:)",
    ]
)
_IPV6_NET = rf"({_IPV6})(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?"

#: an IPv4/IPv6 address or CIDR network, normalised (``10.0.0.1`` → ``10.0.0.1/32``)
IpOrNetwork = Annotated[
    str,
    Field(pattern=rf"^({_IPV4_NET}|{_IPV6_NET})$", max_length=49),
    AfterValidator(_ip_or_network),
]


class SipTrunkCreate(WireModel):
    name: str = Field(min_length=1, max_length=200)
    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    port: int = Field(
        default=5060, ge=1, le=65535, description="5060 by default; 5061 with transport tls"
    )
    transport: Literal["udp", "tcp", "tls"] = "udp"
    #: SRTP towards the trunk (SDES, RFC 4568): ``mandatory`` offers only
    #: RTP/SAVP and refuses a plain answer; ``optional`` offers plain RTP;
    #: ``off`` never encrypts media
    srtp: Literal["off", "optional", "mandatory"] = Field(
        default="optional",
        description=(
            "SRTP on calls through this trunk: 'mandatory' offers RTP/SAVP with SDES keys "
            "only (use with transport tls: the keys travel in the signalling); 'optional' "
            "offers plain RTP; 'off' never encrypts media"
        ),
    )
    username: Token | None = Field(default=None, max_length=200)
    password: Token | None = Field(default=None, max_length=200)
    #: only these sources may send INVITEs for numbers using this trunk (empty = any)
    allowed_ips: list[IpOrNetwork] = Field(
        default_factory=list,
        max_length=100,
        validation_alias=AliasChoices("allowed_ips", "allowedIps", "inbound_ips"),
    )
    max_concurrent_calls: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("transport") == "tls" and "port" not in data:
            return {**data, "port": 5061}  # SIP over TLS's well-known port (RFC 3261 §26.2)
        return data


class SipTrunkOut(OutModel):
    id: str
    name: str
    host: str
    port: int
    transport: str
    srtp: str
    username: str | None
    #: whether a password is stored (it is never returned)
    has_password: bool
    allowed_ips: list[str]
    max_concurrent_calls: int | None
    created_at: Timestamp
